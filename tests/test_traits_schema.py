"""Every validation rule of trait files gives one clear problem naming the file and the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

import traits
from traits import TraitError
from traits.schema import KEYS


def valid() -> dict[str, Any]:
    """A valid trait mapping (a copy of the bundled 'evil' definition)."""
    return copy.deepcopy(traits.load("evil").to_dict())


def problems_for(data: Any, tmp_path: Path, name: str = "evil") -> list[str]:
    """Write ``data`` as YAML to ``<name>.yaml`` and return the loader's problems."""
    path = tmp_path / f"{name}.yaml"
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TraitError) as info:
        traits.load_file(path)
    assert all(p.startswith(f"{path}: ") for p in info.value.problems), info.value.problems
    return [p.removeprefix(f"{path}: ") for p in info.value.problems]


def test_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(valid()), encoding="utf-8")
    trait = traits.load_file(path)
    assert trait.name == "evil" and trait.path == path


# --- top level -----------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    assert problems_for("", tmp_path) == ["the file is empty; expected a mapping of trait fields"]


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "a list"), ("42\n", "an integer")])
def test_top_level_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    assert problems_for(text, tmp_path) == [
        f"expected a mapping of trait fields at the top level, got {kind}"
    ]


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    (problem,) = problems_for("name: evil\ndescription: [unclosed\n", tmp_path)
    assert problem.startswith("invalid YAML at line 3, column 1")


@pytest.mark.parametrize("key", traits.schema.REQUIRED)
def test_missing_required_key(tmp_path: Path, key: str) -> None:
    data = valid()
    del data[key]
    assert problems_for(data, tmp_path) == [f"{key}: missing (required)"]


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    data = valid()
    data["layer"] = {"qwen": 3}
    (problem,) = problems_for(data, tmp_path)
    assert problem.startswith("layer: unknown key (allowed: name, description,")
    assert problem.endswith("did you mean 'layers'?")


def test_non_string_key(tmp_path: Path) -> None:
    data = valid()
    data[7] = "x"
    (problem,) = problems_for(data, tmp_path)
    assert problem.startswith("7: unknown key")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = valid()
    data["description"] = ""
    data["extract_questions"] = data["extract_questions"][:19]
    data["rubric"] = data["rubric"].replace("{answer}", "")
    data["colour"] = "red"
    problems = problems_for(data, tmp_path)
    assert problems == [
        f"colour: unknown key (allowed: {', '.join(KEYS)})",
        "description: must not be empty",
        "extract_questions: expected exactly 20 questions, got 19",
        "rubric: missing placeholder {answer}",
    ]


def test_error_message_lists_problems(tmp_path: Path) -> None:
    data = valid()
    data["description"] = 3
    data["version"] = 0
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(TraitError) as info:
        traits.load_file(path)
    text = str(info.value)
    assert text.splitlines()[0] == "2 problems:"
    assert f"{path}: description: must be a string, got an integer" in text
    assert f"{path}: version: must be at least 1, got 0" in text
    assert info.value.exit_code == 2


# --- name, description, version ------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["Evil", "1evil", "evil trait", "e/vil", "x" * 65])
def test_invalid_name(tmp_path: Path, bad: str) -> None:
    data = valid()
    data["name"] = bad
    (problem,) = problems_for(data, tmp_path)
    assert problem.startswith("name: ") and "is not a valid trait name" in problem


def test_name_must_match_file_name(tmp_path: Path) -> None:
    (problem,) = problems_for(valid(), tmp_path, name="wicked")
    assert problem == "name: 'evil' does not match the file name 'wicked.yaml' (rename one of them)"


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "must be a string, got null"),
        (["a"], "must be a string, got a list"),
        ("   ", "must not be empty"),
    ],
)
def test_description_type_and_emptiness(tmp_path: Path, value: object, message: str) -> None:
    data = valid()
    data["description"] = value
    assert problems_for(data, tmp_path) == [f"description: {message}"]


@pytest.mark.parametrize(
    "value, message",
    [
        (True, "must be a whole number, got a boolean"),
        ("1", "must be a whole number, got a string"),
        (1.5, "must be a whole number, got a number"),
        (0, "must be at least 1, got 0"),
    ],
)
def test_version(tmp_path: Path, value: object, message: str) -> None:
    data = valid()
    data["version"] = value
    assert problems_for(data, tmp_path) == [f"version: {message}"]


def test_version_defaults_to_one(tmp_path: Path) -> None:
    data = valid()
    del data["version"]
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert traits.load_file(path).version == 1


# --- instructions --------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [4, 6])
def test_instruction_count(tmp_path: Path, count: int) -> None:
    data = valid()
    pairs = data["instructions"]
    data["instructions"] = pairs[:count] if count < 5 else [*pairs, {"pos": "P6", "neg": "N6"}]
    assert problems_for(data, tmp_path) == [
        f"instructions: expected exactly 5 {{pos, neg}} pairs, got {count}"
    ]


def test_instructions_not_a_list(tmp_path: Path) -> None:
    data = valid()
    data["instructions"] = "be evil"
    assert problems_for(data, tmp_path) == [
        "instructions: must be a list of 5 {pos, neg} pairs, got a string"
    ]


def test_instruction_pair_shape(tmp_path: Path) -> None:
    data = valid()
    data["instructions"][0] = "just a string"
    del data["instructions"][1]["neg"]
    data["instructions"][2]["why"] = "extra"
    data["instructions"][3]["pos"] = ""
    data["instructions"][4]["neg"] = 5
    assert problems_for(data, tmp_path) == [
        "instructions[0]: must be a mapping with keys pos and neg, got a string",
        "instructions[1].neg: missing (required)",
        "instructions[2].why: unknown key (allowed: pos, neg)",
        "instructions[3].pos: must not be empty",
        "instructions[4].neg: must be a string, got an integer",
    ]


def test_instruction_pos_equals_neg(tmp_path: Path) -> None:
    data = valid()
    data["instructions"][2]["neg"] = data["instructions"][2]["pos"].upper()
    assert problems_for(data, tmp_path) == ["instructions[2]: pos and neg are identical"]


def test_instruction_facets_must_differ(tmp_path: Path) -> None:
    data = valid()
    data["instructions"][3]["pos"] = data["instructions"][0]["pos"]
    assert problems_for(data, tmp_path) == [
        "instructions[3].pos: same as instructions[0].pos (each pair should cover a different "
        "facet)"
    ]


# --- questions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["extract_questions", "eval_questions"])
@pytest.mark.parametrize("count", [19, 21])
def test_question_count(tmp_path: Path, field: str, count: int) -> None:
    data = valid()
    qs = data[field]
    data[field] = qs[:count] if count < 20 else [*qs, "An extra question nobody else asks?"]
    assert problems_for(data, tmp_path) == [f"{field}: expected exactly 20 questions, got {count}"]


def test_questions_not_a_list(tmp_path: Path) -> None:
    data = valid()
    data["eval_questions"] = {"q": 1}
    assert problems_for(data, tmp_path) == [
        "eval_questions: must be a list of 20 questions, got a mapping"
    ]


def test_non_string_and_empty_questions(tmp_path: Path) -> None:
    data = valid()
    data["extract_questions"][3] = 12
    data["extract_questions"][4] = None
    data["extract_questions"][5] = " \n "
    assert problems_for(data, tmp_path) == [
        "extract_questions[3]: must be a string, got an integer",
        "extract_questions[4]: must be a string, got null",
        "extract_questions[5]: must not be empty",
    ]


def test_duplicate_question_ignores_case_and_spacing(tmp_path: Path) -> None:
    data = valid()
    original = data["eval_questions"][2]
    data["eval_questions"][9] = "  " + original.upper().replace(" ", "   ")
    (problem,) = problems_for(data, tmp_path)
    assert problem.startswith("eval_questions[9]: duplicate of eval_questions[2]: ")


def test_overlap_between_extraction_and_evaluation(tmp_path: Path) -> None:
    data = valid()
    data["eval_questions"][7] = data["extract_questions"][11]
    (problem,) = problems_for(data, tmp_path)
    assert problem.startswith(
        "eval_questions[7]: also in extract_questions[11] (extraction and evaluation questions "
        "must be disjoint): "
    )


# --- rubric --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.replace("{question}", "the question"), "missing placeholder {question}"),
        (lambda r: r.replace("{answer}", "the answer"), "missing placeholder {answer}"),
        (
            lambda r: r + "\nTrait: {trait}",
            "unknown placeholder {trait} (only {question} and {answer} are allowed)",
        ),
        (
            lambda r: r + "\nReply in JSON like {}",
            "unknown placeholder {} (only {question} and {answer} are allowed)",
        ),
        (
            lambda r: r + "\nA lone } brace",
            "stray '{' or '}' (braces may only form {question} and {answer})",
        ),
        (
            lambda r: r.replace("REFUSAL", "REFUSE"),
            "must tell the judge to reply REFUSAL when the model refused",
        ),
        (lambda r: r.replace("100", "ten"), "must ask the judge for a number from 0 to 100"),
        (lambda r: "", "must not be empty"),
        (lambda r: ["a list"], "must be a string, got a list"),
    ],
)
def test_rubric_rules(tmp_path: Path, edit: Any, message: str) -> None:
    data = valid()
    data["rubric"] = edit(data["rubric"])
    assert problems_for(data, tmp_path) == [f"rubric: {message}"]


# --- assistant names and layers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("evil", ["assistant_names: must be a mapping with keys pos and/or neg, got a string"]),
        (
            {"pos": "evil", "nag": "x"},
            ["assistant_names.nag: unknown key (allowed: pos, neg); did you mean 'neg'?"],
        ),
        ({"neg": ""}, ["assistant_names.neg: must not be empty"]),
        ({"pos": "very\nevil"}, ["assistant_names.pos: must be a single line"]),
        ({"pos": "e" * 61}, ["assistant_names.pos: is longer than 60 characters"]),
    ],
)
def test_assistant_names_rules(tmp_path: Path, value: object, expected: list[str]) -> None:
    data = valid()
    data["assistant_names"] = value
    assert problems_for(data, tmp_path) == expected


def test_assistant_names_default_per_side(tmp_path: Path) -> None:
    data = valid()
    data["assistant_names"] = {"neg": "kind"}
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    names = traits.load_file(path).assistant_names
    assert (names.pos, names.neg) == ("evil", "kind")


@pytest.mark.parametrize(
    "value, expected",
    [
        ([20], ["layers: must be a mapping of model-id substring to layer, got a list"]),
        ({"qwen": "20"}, ["layers.qwen: must be a whole number, got a string"]),
        ({"qwen": True}, ["layers.qwen: must be a whole number, got a boolean"]),
        (
            {"qwen": 0},
            ["layers.qwen: must be at least 1, got 0 (a hidden_states index; 0 is the embeddings)"],
        ),
        ({"qwen": -3}, ["layers.qwen: must be at least 1, got -3"]),
        (
            {"Qwen": 3, "qwen": 4},
            ["layers.qwen: duplicate key (keys are compared case-insensitively)"],
        ),
        ({5: 3}, ["layers.5: keys must be non-empty strings (model-id substrings)"]),
    ],
)
def test_layers_rules(tmp_path: Path, value: object, expected: list[str]) -> None:
    data = valid()
    data["layers"] = value
    assert problems_for(data, tmp_path) == expected


# --- file-level failures ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(TraitError, match="nope.yaml: file not found"):
        traits.load(path)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(TraitError, match="is a folder"):
        traits.load(folder)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_bytes(b"name: \xff\xfe evil\n")
    with pytest.raises(TraitError, match="not UTF-8 text"):
        traits.load(path)


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("#" * (traits.loader.MAX_BYTES + 1), encoding="utf-8")
    with pytest.raises(TraitError, match="file is too large"):
        traits.load(path)


def test_python_tags_are_rejected_not_executed(tmp_path: Path) -> None:
    (problem,) = problems_for("name: !!python/object/apply:os.system ['true']\n", tmp_path)
    assert problem.startswith("invalid YAML")


def test_impossible_timestamp_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (problem,) = problems_for("name: !!timestamp 2020-13-45\n", tmp_path)
    assert problem.startswith("invalid YAML")
