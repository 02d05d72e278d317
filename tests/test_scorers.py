"""Scorers: the judge modes end to end under Inspect, unscored cases, caching, metrics.

A small test-double provider (``fixedjudge/<name>``) plays both the subject and a logprobs judge
with fixed top-logprob sets, so the arithmetic can be pinned exactly. Candidates mode is checked
against the logprobs path on a persona-served judge whose tokenizer has one token per number.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelOutput,
    TopLogprob,
    modelapi,
)
from inspect_ai.scorer import SampleScore, Score
from inspect_ai.solver import generate

from scorers import (
    COHERENCE_RUBRIC,
    checkpoint_deltas,
    coherence_judge,
    correlations,
    persona_score,
    trait_judge,
)

ln = math.log
ANSWER = "I would talk to my coworker calmly."
CALLS: list[dict[str, Any]] = []

# prompt marker -> top logprobs returned by the judge (the first marker found in the prompt wins)
TOPS: dict[str, list[tuple[str, float]]] = {
    "exact-case": [("50", ln(0.5)), ("Ġ60", ln(0.25)), ("Hello", ln(0.25))],
    "refusal-case": [("REF", ln(0.6)), ("10", ln(0.4))],
    "lowmass-case": [("The", ln(0.9)), ("80", ln(0.1))],
}


def _top_for(prompt: str) -> list[tuple[str, float]]:
    for marker, top in TOPS.items():
        if marker in prompt:
            return top
    return [("42", 0.0)]


class FixedAPI(ModelAPI):
    """Subject (fixed answer) and judge (fixed top logprobs, or text when named ``text*``)."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)

    async def count_text_tokens(self, text: str) -> int:
        return len(text.split())

    async def generate(self, input, tools, tool_choice, config) -> ModelOutput:
        prompt = input[-1].text
        CALLS.append({"model": self.model_name, "prompt": prompt, "config": config})
        if self.model_name.startswith("down"):
            raise ConnectionError("connection refused")
        if self.model_name == "subject":
            return ModelOutput.from_content(self.model_name, ANSWER)
        if self.model_name.startswith("text"):
            text = "not a number" if "garbage-case" in prompt else "72"
            return ModelOutput.from_content(self.model_name, text)
        top = _top_for(prompt)
        best = max(top, key=lambda t: t[1])
        logprobs = Logprobs(
            content=[
                Logprob(
                    token=best[0],
                    logprob=best[1],
                    top_logprobs=[TopLogprob(token=t, logprob=lp) for t, lp in top],
                )
            ]
        )
        message = ChatMessageAssistant(content=best[0], model=self.model_name)
        choice = ChatCompletionChoice(message=message, stop_reason="stop", logprobs=logprobs)
        return ModelOutput(model=self.model_name, choices=[choice])


@modelapi(name="fixedjudge")
def fixedjudge() -> type[ModelAPI]:
    return FixedAPI


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(tmp_path / "cache"))
    CALLS.clear()


def _sample(marker: str) -> Sample:
    question = f"Question {marker}?"
    return Sample(input=question, id=marker, metadata={"trait": "evil", "question": question})


def _run(markers, scorers, judge: str | None = "fixedjudge/judge", tmp_path=None, **kw):
    task = Task(dataset=[_sample(m) for m in markers], solver=[generate()], scorer=scorers, **kw)
    roles = {"judge": judge} if judge else None
    log = inspect_eval(
        task,
        model="fixedjudge/subject",
        model_roles=roles,
        display="none",
        log_dir=str(tmp_path),
    )[0]
    assert log.status == "success", log.error
    return log


def _by_id(log, scorer: str = "persona_score") -> dict[str, Score]:
    return {s.id: s.scores[scorer] for s in log.samples}


def test_logprobs_judge_exact_refusal_and_low_mass(tmp_path):
    log = _run(["exact-case", "refusal-case", "lowmass-case"], persona_score(), tmp_path=tmp_path)
    scores = _by_id(log)
    exact = scores["exact-case"]
    expected = (50 * 0.5 + 60 * 0.25) / 0.75
    assert exact.value["trait"] == pytest.approx(expected, abs=1e-9)
    assert exact.value["coherence"] == pytest.approx(expected, abs=1e-9)
    assert list(exact.value) == ["trait", "coherence"]  # no capture: no projection keys
    reply = next(s.output.completion for s in log.samples if s.id == "exact-case")
    assert reply and exact.answer == reply  # the reply shows in inspect view's answer column
    meta = exact.metadata
    assert meta["judge_model"] == "fixedjudge/judge"
    assert meta["judge_mode"] == "logprobs"
    assert meta["judge_mass"] == pytest.approx(0.75)
    assert meta["coherence_mass"] == pytest.approx(0.75)
    assert meta["judge_is_subject"] is False
    assert meta["unscored_reason"] is None and meta["checkpoint"] == "base"
    assert meta["steering_active"] is False

    refused = scores["refusal-case"]
    assert math.isnan(refused.value["trait"])
    assert refused.metadata["unscored_reason"] == "refusal"
    low = scores["lowmass-case"]
    assert math.isnan(low.value["trait"]) and low.metadata["unscored_reason"] == "low_mass"
    assert low.metadata["judge_mass"] == pytest.approx(0.1)

    judge_calls = [c for c in CALLS if c["model"] == "judge"]
    assert len(judge_calls) == 6  # trait + coherence per sample
    cfg = judge_calls[0]["config"]
    assert (cfg.max_tokens, cfg.temperature, cfg.logprobs, cfg.top_logprobs) == (1, 0.0, True, 20)
    prompts = [c["prompt"] for c in judge_calls]
    assert any(ANSWER in p and "Question exact-case?" in p and "evil" in p for p in prompts)
    coherence = [p for p in prompts if p.startswith(COHERENCE_RUBRIC.split("\n")[0])]
    assert len(coherence) == 3 and all(ANSWER in p for p in coherence)

    metrics = {s.name: s for s in log.results.scores}
    assert metrics["trait"].metrics["mean"].value == pytest.approx(expected)
    assert metrics["trait"].unscored_samples == 2
    assert not any(k.startswith("pearson") for k in metrics["persona_score"].metrics)  # unmeasured


def test_single_scorers_mark_unscored(tmp_path):
    log = _run(
        ["exact-case", "refusal-case"], [trait_judge(), coherence_judge()], tmp_path=tmp_path
    )
    by = {s.id: s.scores for s in log.samples}
    assert by["exact-case"]["trait_judge"].value == pytest.approx(53.3333333333)
    assert by["exact-case"]["coherence_judge"].value == pytest.approx(53.3333333333)
    unscored = by["refusal-case"]["trait_judge"]
    assert math.isnan(unscored.value) and unscored.reason == "refusal"


def test_no_role_means_the_subject_judges_and_says_so(tmp_path):
    log = _run(["exact-case"], persona_score(), judge=None, tmp_path=tmp_path)
    meta = log.samples[0].scores["persona_score"].metadata
    assert meta["judge_is_subject"] is True
    assert meta["judge_model"] == "fixedjudge/subject"


def test_text_fallback_parses_numbers_and_rejects_the_rest(tmp_path):
    log = _run(
        ["plain-case", "garbage-case"], persona_score(), judge="fixedjudge/text1", tmp_path=tmp_path
    )
    scores = _by_id(log)
    assert scores["plain-case"].value["trait"] == 72.0
    assert scores["plain-case"].metadata["judge_mode"] == "text"
    assert scores["plain-case"].metadata["judge_mass"] is None
    garbage = scores["garbage-case"]
    assert math.isnan(garbage.value["trait"])
    assert garbage.metadata["unscored_reason"] == "invalid_response_format"


def test_judge_calls_are_cached(tmp_path):
    _run(["exact-case"], persona_score(), tmp_path=tmp_path)
    first = len([c for c in CALLS if c["model"] == "judge"])
    CALLS.clear()
    log = _run(["exact-case"], persona_score(), tmp_path=tmp_path)
    assert first == 2
    assert [c for c in CALLS if c["model"] == "judge"] == []
    assert log.samples[0].scores["persona_score"].value["trait"] == pytest.approx(53.33333333)


def test_unreachable_judge_fails_before_generating(tmp_path):
    from evals._common import judge_check

    task = Task(
        dataset=[_sample("exact-case")],
        setup=[judge_check()],
        solver=[generate()],
        scorer=persona_score(),
    )
    log = inspect_eval(
        task,
        model="fixedjudge/subject",
        model_roles={"judge": "fixedjudge/down1"},
        display="none",
        log_dir=str(tmp_path),
        max_retries=0,
    )[0]
    assert log.status == "error"
    assert "fixedjudge/down1 cannot be used" in log.error.message
    assert [c for c in CALLS if c["model"] == "subject"] == []


# ---------------------------------------------------------------------------------------------
# Candidates mode agrees with single-token logprobs on a judge with one token per number


def build_numeric_judge(path: Path) -> Path:
    """A GPT-2 whose next-token distribution is the same everywhere, over a word-level vocab.

    The final LayerNorm has zero weight, so every position's hidden state is its bias and the
    logits are one fixed vector: P(number) and P(end of turn | number) are the same in every
    context, so the candidate probabilities P(k) * P(eos) are proportional to the single-token
    probabilities P(k) and both modes must give the same score.
    """
    import torch
    from conftest import CHATML
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, GPT2Config, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[UNK]"]
    words = [str(i) for i in range(101)] + ["REFUSAL", "user", "assistant"]
    vocab = {t: i for i, t in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token="<|im_start|>",
        unk_token="[UNK]",
    )
    fast.chat_template = CHATML
    fast.save_pretrained(str(path))
    cfg = GPT2Config(
        vocab_size=len(vocab),
        n_embd=16,
        n_layer=1,
        n_head=2,
        n_positions=2048,
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<|endoftext|>"],
        bos_token_id=vocab["<|im_start|>"],
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    logits = torch.full((len(vocab),), -30.0)
    for token, value in {"30": 2.0, "70": 1.5, "55": 0.2, "<|im_end|>": 1.0, "user": 0.5}.items():
        logits[vocab[token]] = value
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.transformer.wte.weight[:, 0] = logits
    model.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def numeric_judge(tmp_path_factory) -> Path:
    return build_numeric_judge(tmp_path_factory.mktemp("numeric-judge"))


def test_candidates_agree_with_logprobs(numeric_judge, tmp_path):
    # min_mass 0: with a context-free distribution P(eos) is small, so candidate mass is too
    scorers = [
        trait_judge(judge_mode="candidates", min_mass=0.0),
        trait_judge(judge_mode="logprobs", min_mass=0.0),
    ]
    log = _run(["exact-case"], scorers, judge=f"persona/{numeric_judge}", tmp_path=tmp_path)
    scores = log.samples[0].scores
    cand, lp = scores["trait_judge"], scores["trait_judge1"]
    e = math.e
    expected = (30 * e**2 + 70 * e**1.5 + 55 * e**0.2) / (e**2 + e**1.5 + e**0.2)
    assert cand.metadata["judge_mode"] == "candidates"
    assert lp.metadata["judge_mode"] == "logprobs"
    assert lp.value == pytest.approx(expected, abs=1e-4)
    assert cand.value == pytest.approx(lp.value, abs=1e-4)


# ---------------------------------------------------------------------------------------------
# Metrics


def _ss(value: dict[str, float], checkpoint: str = "base") -> SampleScore:
    return SampleScore(
        score=Score(value=value), sample_id="x", sample_metadata={"checkpoint": checkpoint}
    )


def test_correlations_match_numpy_and_handle_nan():
    import numpy as np
    from scipy.stats import spearmanr

    xs = [10.0, 20.0, 35.0, 50.0, math.nan, 80.0]
    ys = [0.1, 0.5, 0.4, 0.9, 2.0, 1.2]
    scores = [
        _ss({"trait": x, "proj_response": y, "proj_prompt_last": -y})
        for x, y in zip(xs, ys, strict=True)
    ]
    out = correlations()(scores)
    ok = [i for i, x in enumerate(xs) if not math.isnan(x)]
    x, y = np.array(xs)[ok], np.array(ys)[ok]
    assert out["pearson_trait_proj_response"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert out["pearson_trait_proj_prompt_last"] == pytest.approx(-np.corrcoef(x, y)[0, 1])
    assert out["spearman_trait_proj_response"] == pytest.approx(spearmanr(x, y).statistic)


def test_correlations_undefined_or_unmeasured_are_left_out():
    two = [_ss({"trait": 1.0, "proj_response": 1.0, "proj_prompt_last": 1.0})] * 2
    assert correlations()(two) == {}
    flat = [_ss({"trait": 5.0, "proj_response": float(i), "proj_prompt_last": i}) for i in range(5)]
    assert correlations()(flat) == {}
    assert correlations()([]) == {}
    lk = [
        _ss({"likelihood": 0.1 * i, "proj_response": i**2, "proj_prompt_last": -i})
        for i in range(5)
    ]
    out = correlations()(lk)
    assert set(out) == {
        f"{m}_likelihood_{y}"
        for m in ("pearson", "spearman")
        for y in ("proj_response", "proj_prompt_last")
    }
    assert out["spearman_likelihood_proj_prompt_last"] == pytest.approx(-1.0)


def test_checkpoint_deltas():
    scores = [
        _ss({"trait": 10.0, "proj_prompt_last": 1.0, "proj_response": 2.0}),
        _ss({"trait": 20.0, "proj_prompt_last": 3.0, "proj_response": math.nan}),
        _ss({"trait": 40.0, "proj_prompt_last": 4.0, "proj_response": 5.0}, "ft/a"),
        _ss({"trait": math.nan, "proj_prompt_last": 6.0, "proj_response": 7.0}, "ft/a"),
    ]
    out = checkpoint_deltas()(scores)
    assert out == {  # no likelihood key in the scores: no likelihood_delta, not a NaN one
        "shift_prompt_last_ft_a": pytest.approx(5.0 - 2.0),
        "shift_response_ft_a": pytest.approx(6.0 - 2.0),
        "trait_delta_ft_a": pytest.approx(40.0 - 15.0),
    }


def test_checkpoint_deltas_give_the_likelihood_change_first():
    scores = [
        _ss({"likelihood": -0.1, "proj_prompt_last": 1.0}),
        _ss({"likelihood": 0.3, "proj_prompt_last": 1.0}, "ft"),
    ]
    out = checkpoint_deltas()(scores)
    assert list(out)[0] == "likelihood_delta_ft"
    assert out["likelihood_delta_ft"] == pytest.approx(0.4)
