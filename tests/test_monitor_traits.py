"""The trait fields of the monitor task: ``graded_prompts``, ``monitor_exemplars`` and
``monitor_questions``."""

from __future__ import annotations

import yaml

import traits
from traits.interop import META_KEY, to_reference
from traits.schema import check, quote


def _evil_data() -> dict:
    return yaml.safe_load(traits.load("evil").path.read_text())


def _problems(data: dict) -> list[str]:
    trait, problems = check(data, expected_name="evil")
    assert trait is None
    return [f"{p.field}: {p.message}" for p in problems]


def test_bundled_traits_have_monitoring_fields():
    for name in traits.available():
        t = traits.load(name)
        assert len(t.graded_prompts) == 8 and len(t.monitor_exemplars) >= 8, name
        assert t.to_dict()["graded_prompts"] == list(t.graded_prompts)


def test_graded_prompts_validation():
    data = _evil_data()
    data["graded_prompts"] = data["graded_prompts"][:7]
    assert _problems(data) == ["graded_prompts: expected a list of exactly 8 system prompts, got 7"]
    data = _evil_data()
    data["graded_prompts"][3] = data["graded_prompts"][2]
    assert _problems(data) == ["graded_prompts[3]: duplicate of graded_prompts[2]"]
    data = _evil_data()
    data["graded_prompts"][7] = "Be bold. " + data["instructions"][2]["pos"]
    assert "repeats a sentence of the extraction prompts" in _problems(data)[0]


def test_exemplar_validation():
    data = _evil_data()
    data["monitor_exemplars"][0]["user"] = data["eval_questions"][4]
    assert _problems(data) == [
        "monitor_exemplars[0].user: is one of the trait's questions; use another"
    ]
    data = _evil_data()
    data["monitor_exemplars"] = data["monitor_exemplars"][:5]
    assert "at least 8 turns, got 5" in _problems(data)[0]
    data = _evil_data()
    data["monitor_exemplars"][2] = {"user": "Hi?", "reply": "no"}
    problems = _problems(data)
    assert any("unknown key" in p for p in problems)
    assert any("monitor_exemplars[2].assistant: must be a string" in p for p in problems)


def test_monitoring_fields_survive_the_reference_layout():
    evil = traits.load("evil")
    meta = to_reference(evil)[0][META_KEY]
    assert meta["graded_prompts"] == list(evil.graded_prompts)
    assert meta["monitor_exemplars"][0] == {
        "user": evil.monitor_exemplars[0].user,
        "assistant": evil.monitor_exemplars[0].assistant,
    }


def test_monitor_questions_validation():
    data = _evil_data()
    data["monitor_questions"] = ["A new question?", data["eval_questions"][3].upper()]
    assert _problems(data) == [
        "monitor_questions[1]: same as eval_questions[3]: "
        f"{quote(data['eval_questions'][3].upper())}; write a new question"
    ]
    data = _evil_data()
    data["monitor_questions"] = [data["monitor_exemplars"][1]["user"], "Q?", " q? "]
    problems = _problems(data)
    assert problems[0].startswith("monitor_questions[0]: same as monitor_exemplars[1].user")
    assert problems[1].startswith("monitor_questions[2]: same as monitor_questions[1]")
    data = _evil_data()
    data["monitor_questions"] = [data["extract_questions"][0]]
    assert _problems(data)[0].startswith("monitor_questions[0]: same as extract_questions[0]")
    for bad, got in (([], "an empty list"), ("Why?", "a string")):
        data = _evil_data()
        data["monitor_questions"] = bad
        assert _problems(data) == [f"monitor_questions: expected a list of questions, got {got}"]


def test_monitor_questions_are_optional_and_round_trip():
    data = _evil_data()
    data.pop("monitor_questions", None)
    trait, problems = check(data, expected_name="evil")
    assert trait is not None and not problems and trait.monitor_questions == ()
    assert "monitor_questions" not in trait.to_dict()
    data["monitor_questions"] = ["What would you do with a stranger's lost phone?"]
    trait, _ = check(data, expected_name="evil")
    assert trait is not None and trait.monitor_questions == tuple(data["monitor_questions"])
    assert trait.to_dict()["monitor_questions"] == data["monitor_questions"]
    assert to_reference(trait)[0][META_KEY]["monitor_questions"] == data["monitor_questions"]
    # not in the hash: adding monitoring questions keeps vectors valid
    assert trait.hash == traits.load("evil").hash
