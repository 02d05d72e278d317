"""The ``judge_personas`` trait field: shipped for every trait, validated apart from the
extraction prompts and the data personas, optional (commands that need it name it)."""

from __future__ import annotations

import copy

import pytest
import yaml

import traits
from traits.interop import export_reference, import_reference
from traits.schema import check, sentences


def _data(name: str = "evil") -> dict:
    return copy.deepcopy(yaml.safe_load(traits.load(name).path.read_text()))


def _problems(data: dict) -> list[str]:
    _, problems = check(data, expected_name=data["name"])
    return [p.render("t.yaml") for p in problems]


@pytest.mark.parametrize("name", traits.available())
def test_every_shipped_trait_has_judge_personas_apart_from_other_prompts(name):
    trait = traits.load(name)
    assert len(trait.judge_personas) >= 5
    used = {
        s
        for i in range(len(trait.instructions))
        for side in ("pos", "neg")
        for s in sentences(trait.system_prompt(side, i))
    } | {s for p in trait.data_personas for s in sentences(p)}
    for pair in trait.judge_personas:
        assert pair.pos != pair.neg
        assert not (set(sentences(pair.pos)) | set(sentences(pair.neg))) & used


def test_a_judge_persona_repeating_an_instruction_sentence_is_refused():
    data = _data()
    data["judge_personas"][2]["neg"] = "You are calm. " + data["instructions"][3]["neg"]
    (problem,) = _problems(data)
    assert problem.startswith(
        "t.yaml: judge_personas[2].neg: repeats a sentence of instructions[3].neg"
    )


def test_the_extraction_lead_sentence_and_data_personas_are_refused_too():
    data = _data()
    data["judge_personas"][0]["pos"] = "You are an evil assistant. Be bad."
    data["judge_personas"][1]["pos"] = data["data_personas"][0]
    problems = _problems(data)
    assert problems[0].startswith("t.yaml: judge_personas[0].pos: repeats a sentence of instr")
    assert "'you are an evil assistant'" in problems[0]
    assert problems[1].startswith("t.yaml: judge_personas[1].pos: repeats a sentence of data_p")


def test_bad_shapes_are_reported():
    data = _data()
    data["judge_personas"] = [{"pos": "A.", "neg": "B."}]
    assert _problems(data) == [
        "t.yaml: judge_personas: expected at least 2 {pos, neg} pairs, got 1"
    ]
    data["judge_personas"] = "a string"
    assert _problems(data) == [
        "t.yaml: judge_personas: must be a list of {pos, neg} pairs, got a string"
    ]
    data["judge_personas"] = [{"pos": "Same.", "neg": "Other."}, {"pos": "same. ", "ngg": "x"}]
    assert _problems(data) == [
        "t.yaml: judge_personas[1].ngg: unknown key (allowed: pos, neg); did you mean 'neg'?",
        "t.yaml: judge_personas[1].pos: duplicate of judge_personas[0].pos",
        "t.yaml: judge_personas[1].neg: missing (required)",
    ]


def test_optional_out_of_the_hash_and_named_when_needed():
    data = _data()
    with_personas, _ = check(data, expected_name="evil")
    del data["judge_personas"]
    without, _ = check(data, expected_name="evil")
    assert with_personas is not None and without is not None
    assert without.judge_personas == () and without.hash == with_personas.hash
    with pytest.raises(traits.TraitError, match="trait 'evil' has no judge_personas"):
        without.need_judge_personas()
    assert with_personas.need_judge_personas() == with_personas.judge_personas


def test_reference_json_round_trip_keeps_them_and_plain_json_still_imports(tmp_path):
    trait = traits.load("evil")
    extract, _ = export_reference(trait, tmp_path / "full")
    assert import_reference(extract).judge_personas == trait.judge_personas
    extract, _ = export_reference(trait, tmp_path / "plain", plain=True)
    assert import_reference(extract).judge_personas == ()


def test_yaml_round_trip_keeps_them(tmp_path):
    trait = traits.load("humorous")
    again = traits.write_trait(trait, tmp_path)
    assert again.judge_personas == trait.judge_personas


def test_traits_validate_warns_when_the_field_is_missing(tmp_path, capsys):
    from persona.app.cli import main

    data = _data()
    del data["judge_personas"]
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["traits", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok   {path}") and "warning: no judge_personas" in out
    assert main(["traits", "validate", str(traits.load("evil").path)]) == 0
    assert "warning" not in capsys.readouterr().out
