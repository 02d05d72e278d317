"""``persona traits new``: the generator's validation-and-retry loop, driven by a test double.

The double is a tiny Inspect ModelAPI that returns canned replies in order and records every
conversation it was sent (``mockllm`` needs tiktoken data, which is not available offline).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageUser,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    modelapi,
)

import traits
from persona.app.cli import main
from traits import TraitError
from traits.generate import build_prompt, extract_json, generate_trait, parse_reply
from traits.schema import quote

REPLIES: list[str] = []
CALLS: list[list[ChatMessage]] = []


class CannedAPI(ModelAPI):
    """Returns the next string of ``REPLIES``; records each input in ``CALLS``."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)

    async def generate(self, input, tools, tool_choice, config):  # type: ignore[no-untyped-def]
        CALLS.append(list(input))
        return ModelOutput.from_content(model=self.model_name, content=REPLIES.pop(0))

    async def count_text_tokens(self, text: str) -> int:
        return len(text.split())  # the default needs tiktoken data (a download)


@modelapi(name="traitgen_test")
def traitgen_test() -> type[ModelAPI]:
    return CannedAPI


MODEL = "traitgen_test/canned"


@pytest.fixture(autouse=True)
def _reset(monkeypatch: pytest.MonkeyPatch) -> None:
    REPLIES.clear()
    CALLS.clear()
    monkeypatch.delenv(traits.loader.ENV_VAR, raising=False)


def good_reply(**changes: Any) -> dict[str, Any]:
    """A valid generator reply, built from the bundled 'evil' definition."""
    trait = traits.load("evil")
    data: dict[str, Any] = {
        "instructions": [{"pos": p.pos, "neg": p.neg} for p in trait.instructions],
        "questions": [*trait.extract_questions, *trait.eval_questions],
        "rubric": trait.rubric.replace("trait: evil", "trait: spiteful"),
    }
    data.update(changes)
    return data


def bad_reply() -> dict[str, Any]:
    data = good_reply()
    data["questions"] = data["questions"][:39]
    data["rubric"] = data["rubric"].replace("{answer}", "the answer")
    return data


def generate(**kwargs: Any) -> Any:
    kwargs.setdefault("generator", MODEL)
    return asyncio.run(generate_trait("spiteful", "Wants bad things for people.", **kwargs))


# --- the retry loop ------------------------------------------------------------------------------


def test_invalid_then_valid_reply() -> None:
    REPLIES[:] = [json.dumps(bad_reply()), json.dumps(good_reply())]
    logged: list[str] = []
    result = generate(log=logged.append)
    assert result.attempts == 2 and len(CALLS) == 2 and not REPLIES
    trait = result.trait
    assert trait.name == "spiteful" and trait.description == "Wants bad things for people."
    assert trait.extract_questions == traits.load("evil").extract_questions
    assert trait.eval_questions == traits.load("evil").eval_questions
    # First call: just the request. Second: request, the rejected reply, then the problems.
    (first,) = CALLS[0]
    assert isinstance(first, ChatMessageUser) and "Trait: spiteful" in first.text
    request, rejected, feedback = CALLS[1]
    assert request.text == first.text
    assert isinstance(rejected, ChatMessageAssistant)
    assert rejected.text == json.dumps(bad_reply())
    assert isinstance(feedback, ChatMessageUser)
    assert "- questions: expected exactly 40 questions, got 39" in feedback.text
    assert "- rubric: missing placeholder {answer}" in feedback.text
    assert "extract_questions" not in feedback.text and "eval_questions" not in feedback.text
    assert logged[0] == "attempt 1/3 rejected, 2 problem(s):"


def test_gives_up_after_max_attempts() -> None:
    REPLIES[:] = [json.dumps(bad_reply())] * 3
    with pytest.raises(TraitError) as info:
        generate(max_attempts=3)
    assert len(CALLS) == 3 and [len(c) for c in CALLS] == [1, 3, 5]
    error = info.value
    assert str(error).startswith(f"{MODEL} produced no valid trait in 3 attempt(s); last problems:")
    assert error.problems == [
        f"{MODEL} reply 3: questions: expected exactly 40 questions, got 39",
        f"{MODEL} reply 3: rubric: missing placeholder {{answer}}",
    ]


def test_single_attempt() -> None:
    REPLIES[:] = ["not json at all", json.dumps(good_reply())]
    with pytest.raises(TraitError, match="no JSON object found in the reply"):
        generate(max_attempts=1)
    assert len(CALLS) == 1


def test_feedback_for_unparseable_and_empty_replies() -> None:
    REPLIES[:] = ["I'd be glad to help!", "", '{"questions": [1,}', json.dumps(good_reply())]
    result = generate(max_attempts=4)
    assert result.attempts == 4
    feedbacks = [call[-1].text for call in CALLS[1:]]
    assert "- no JSON object found in the reply" in feedbacks[0]
    assert "- the reply was empty" in feedbacks[1]
    assert "- the JSON could not be parsed: Expecting value at line 1" in feedbacks[2]


def test_code_fences_and_prose_are_tolerated() -> None:
    fenced = "Here you go:\n```json\n" + json.dumps(good_reply(), indent=2) + "\n```\nEnjoy!"
    REPLIES[:] = [fenced]
    assert generate().attempts == 1
    REPLIES[:] = ["Sure. " + json.dumps(good_reply()) + " Hope that helps."]
    assert generate().attempts == 1


def test_reference_style_keys_are_accepted() -> None:
    data = good_reply()
    reply = {"instruction": data["instructions"], "questions": data["questions"]}
    reply["eval_prompt"] = data["rubric"]
    REPLIES[:] = [json.dumps(reply)]
    assert generate().trait.rubric == data["rubric"]


def test_bad_request_calls_no_model() -> None:
    for name, description, attempts in [("Bad Name", "d", 3), ("ok", "  ", 3), ("ok", "d", 0)]:
        with pytest.raises(TraitError):
            asyncio.run(generate_trait(name, description, generator=MODEL, max_attempts=attempts))
    assert CALLS == []


# --- parsing and prompt --------------------------------------------------------------------------


def test_parse_reply_reports_problems_in_reply_terms() -> None:
    data = good_reply()
    data["questions"][25] = data["questions"][3]
    data["questions"][30] = 5
    data["instructions"][2] = {"pos": "x"}
    del data["rubric"]
    trait, problems = parse_reply(json.dumps(data), "spiteful", "d")
    assert trait is None
    assert [f"{p.field}: {p.message}" for p in problems] == [
        "rubric: missing (required)",
        "instructions[2].neg: missing (required)",
        "questions[30]: must be a string, got an integer",
        f"questions[25]: also in questions[3] (extraction and evaluation questions must be "
        f"disjoint): {quote(data['questions'][3])}",
    ]


@pytest.mark.parametrize(
    "questions, message",
    [
        ("forty", "questions: must be a list of 40 strings, got a string"),
        ([f"Question {i}?" for i in range(41)], "questions: expected exactly 40 questions, got 41"),
    ],
)
def test_parse_reply_counts_the_whole_list(questions: object, message: str) -> None:
    _, problems = parse_reply(json.dumps(good_reply(questions=questions)), "spiteful", "d")
    assert [f"{p.field}: {p.message}" for p in problems] == [message]


def test_extract_json() -> None:
    assert extract_json('```\n{"a": 1}\n```') == ({"a": 1}, None)
    assert extract_json('x {"a": {"b": 2}} y') == ({"a": {"b": 2}}, None)
    assert extract_json("[1, 2]") == (None, "expected a JSON object, got a list")


def test_prompt_asks_for_the_paper_artifacts() -> None:
    prompt = build_prompt("spiteful", "Wants  bad\nthings.", guidance="Use workplace settings.")
    assert "Trait: spiteful" in prompt and "Description: Wants bad things." in prompt
    assert "Five pairs" in prompt and "Forty different user questions" in prompt
    assert "{question}" in prompt and "{answer}" in prompt and "REFUSAL" in prompt
    assert "Never ask for the trait outright" in prompt
    assert "Additional guidance for the questions: Use workplace settings." in prompt
    assert "<" not in prompt.replace("<TRAIT>", "").replace("<DESCRIPTION OF THE TRAIT>", "")


# --- the CLI -------------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["traits", "new", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_new_writes_a_valid_trait(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    REPLIES[:] = [json.dumps(bad_reply()), json.dumps(good_reply())]
    args = ["spiteful", "--description", "Wants bad things.", "--generator", MODEL]
    code, out, err = run(capsys, *args, "--out-dir", str(tmp_path))
    assert code == 0, err
    trait = traits.load(tmp_path / "spiteful.yaml")
    assert trait.description == "Wants bad things."
    assert f"hash {trait.hash}) after 2 attempt(s)" in out
    assert "attempt 1/3 rejected, 2 problem(s):" in err
    # An existing file is refused before any model call.
    code, _, err = run(capsys, *args, "--out-dir", str(tmp_path))
    assert code == 2 and "already exists" in err and len(CALLS) == 2


def test_cli_new_failure_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    REPLIES[:] = ["nope", "still nope"]
    code, _, err = run(
        capsys,
        "spiteful",
        "--description",
        "d",
        "--generator",
        MODEL,
        "--max-attempts",
        "2",
        "--out-dir",
        str(tmp_path),
    )
    assert code == 2
    assert f"error: {MODEL} produced no valid trait in 2 attempt(s)" in err
    assert err.count("rejected") == 1  # the last attempt's problems are in the error itself
    assert list(tmp_path.iterdir()) == []


def test_cli_new_unknown_generator(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(
        capsys,
        "x",
        "--description",
        "d",
        "--generator",
        "nosuchprovider/m",
        "--out-dir",
        str(tmp_path),
    )
    assert code == 2
    assert err.startswith("error: cannot use generator model 'nosuchprovider/m'")
