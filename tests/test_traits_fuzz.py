"""Fuzzing: no input to the loader, the importer or the reply parser produces a traceback.

Every outcome is either a valid Trait or a TraitError whose problems are non-empty lines.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import traits
from traits import Trait, TraitError
from traits.generate import parse_reply
from traits.interop import import_reference

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments that steer random text toward YAML's tricky corners.
YAML_BITS = [
    "name: evil\n",
    "description: x\n",
    "rubric: |\n  {question} {answer}\n",
    "instructions:\n",
    "- pos: a\n  neg: b\n",
    "extract_questions: [a, b]\n",
    "eval_questions:\n- a\n",
    "layers: ",
    "assistant_names: {pos: x}\n",
    "version: ",
    "? [a, b]\n: c\n",
    "&a [1]\n",
    "*a\n",
    "*b\n",
    "!!binary aGk=\n",
    "!!timestamp 2020-13-45\n",
    "!!python/object:os.system\n",
    "!!set {a}\n",
    "!!float nan\n",
    "{",
    "}",
    "[",
    "]",
    ":",
    "- ",
    "  ",
    "\t",
    "\n",
    "'",
    '"',
    "#",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "|",
    ">",
    "~",
    "null",
    "true",
    "0x1F",
    "1e309",
    "\x00",
    "\ufeff",
    "é",
]
yamlish = st.lists(st.sampled_from(YAML_BITS) | st.text(max_size=8), max_size=30).map("".join)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.binary(max_size=5)
)
data = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(st.text(max_size=10) | st.integers(), inner, max_size=6)
    ),
    max_leaves=30,
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_data = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=30,
)
# Objects with the reference keys, so that fuzzing reaches the deeper checks.
reference_like = st.fixed_dictionaries(
    {"instruction": json_data, "questions": json_data, "eval_prompt": json_data},
    optional={"persona_evals": json_data, "instructions": json_data, "rubric": json_data},
)
json_text = (json_data | reference_like).map(json.dumps)
FIELDS = [
    "name", "description", "instructions", "extract_questions", "eval_questions", "rubric",
    "assistant_names", "layers", "version", "graded_prompts", "monitor_exemplars",
    "monitor_questions", "unknown",
]  # fmt: skip


def check_outcome(call: Any) -> Trait | None:
    try:
        return call()
    except TraitError as e:
        assert e.problems and all(isinstance(p, str) and p.strip() for p in e.problems)
        assert str(e)
        return None


@FUZZ
@given(text=st.text(max_size=300) | yamlish)
def test_loads_never_crashes(text: str) -> None:
    check_outcome(lambda: traits.loads(text, "fuzz.yaml"))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_load_file_never_crashes_on_bytes(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evil.yaml"
        path.write_bytes(raw)
        check_outcome(lambda: traits.load_file(path))


@FUZZ
@given(value=data)
def test_from_dict_never_crashes(value: object) -> None:
    check_outcome(lambda: traits.from_dict(value))


@FUZZ
@given(field=st.sampled_from(FIELDS), value=data, index=st.integers(0, 25))
def test_mutated_valid_trait_never_crashes(field: str, value: object, index: int) -> None:
    base = traits.load("evil").to_dict()
    mutated = copy.deepcopy(base)
    target = mutated.get(field)
    if isinstance(target, list) and index < len(target) and index % 2:
        target[index] = value  # corrupt one entry
    else:
        mutated[field] = value  # corrupt the whole field
    trait = check_outcome(lambda: traits.from_dict(mutated, "fuzz"))
    if trait is not None:
        assert trait.name and len(trait.extract_questions) == 20


@FUZZ
@given(
    description=st.text(min_size=1, max_size=60).filter(str.strip),
    question=st.text(min_size=1, max_size=60).filter(str.strip),
)
def test_yaml_round_trip_of_arbitrary_text(description: str, question: str) -> None:
    data = traits.load("evil").to_dict()
    data["description"] = description
    data["eval_questions"][0] = question
    trait = check_outcome(lambda: traits.from_dict(data))
    if trait is not None:
        assert traits.loads(traits.to_yaml(trait)) == trait


@FUZZ
@given(content=st.text(max_size=200) | json_text)
def test_import_never_crashes(content: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.json"
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
        check_outcome(lambda: import_reference(path))


@FUZZ
@given(reply=st.text(max_size=200) | json_text)
def test_parse_reply_never_crashes(reply: str) -> None:
    trait, problems = parse_reply(reply, "fuzzed", "A description.")
    assert (trait is None) == bool(problems)


def test_yaml_bits_are_valid_fragments() -> None:
    # Sanity check of the corpus: at least some fragments parse on their own.
    parsed = 0
    for bit in YAML_BITS:
        try:
            yaml.safe_load(bit)
            parsed += 1
        except Exception:  # noqa: BLE001 - many fragments are invalid on purpose
            pass
    assert parsed > len(YAML_BITS) // 3
