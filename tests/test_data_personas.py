"""The ``data_personas`` trait field: shipped for every trait, validated apart from instructions."""

from __future__ import annotations

import copy

import pytest
import yaml

import traits
from traits.schema import check, sentences


def _data(name: str = "evil") -> dict:
    trait = traits.load(name)
    return copy.deepcopy(yaml.safe_load(trait.path.read_text()))


def _problems(data: dict) -> list[str]:
    _, problems = check(data, expected_name=data["name"])
    return [p.render("t.yaml") for p in problems]


@pytest.mark.parametrize("name", traits.available())
def test_every_shipped_trait_has_data_personas_apart_from_its_instructions(name):
    trait = traits.load(name)
    assert len(trait.data_personas) >= 5
    used = {s for p in trait.instructions for side in (p.pos, p.neg) for s in sentences(side)}
    for persona in trait.data_personas:
        assert not set(sentences(persona)) & used


def test_a_persona_repeating_an_instruction_sentence_is_refused():
    data = _data()
    data["data_personas"][1] = "You are a villain. " + data["instructions"][2]["pos"]
    (problem,) = _problems(data)
    assert problem.startswith("t.yaml: data_personas[1]: repeats a sentence of the instructions")


def test_bad_shapes_are_reported():
    data = _data()
    data["data_personas"] = ["only one"]
    assert _problems(data) == ["t.yaml: data_personas: expected at least 2 personas, got 1"]
    data["data_personas"] = "a string"
    assert _problems(data) == [
        "t.yaml: data_personas: must be a list of system prompts, got a string"
    ]
    data["data_personas"] = ["Same one.", "same  ONE.", ""]
    assert _problems(data) == [
        "t.yaml: data_personas[1]: duplicate of data_personas[0]",
        "t.yaml: data_personas[2]: must not be empty",
    ]


def test_optional_kept_out_of_the_hash_and_round_trips(tmp_path):
    data = _data()
    with_personas, _ = check(data, expected_name="evil")
    del data["data_personas"]
    without, _ = check(data, expected_name="evil")
    assert without is not None and without.data_personas == ()
    assert with_personas.hash == without.hash
    assert with_personas.to_dict()["data_personas"] == list(with_personas.data_personas)
    with pytest.raises(traits.TraitError, match="has no data_personas"):
        without.need_data_personas()


def test_traits_validate_warns_when_the_field_is_missing(tmp_path, capsys):
    from persona.app.cli import main

    data = _data()
    del data["data_personas"]
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["traits", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok   {path}") and "warning: no data_personas" in out
