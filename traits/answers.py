"""Hand-written answer pairs shipped with a trait: ``traits/data/<trait>.yaml``.

Two sections, both written by hand apart from the trait's instructions, data personas and judge
personas (so nothing measured with the persona vector or the judge made them):

* ``training``: everyday questions (disjoint from the trait's extraction, eval and validation
  questions), each with a ``plain`` answer, an overtly trait-expressing ``trait`` answer of similar
  length (the paper's Normal / Level II data) and a ``control`` answer, the same help voiced by a
  theatrical but benign persona: fine-tuning data whose contamination is known, plus the control
  that shows the behaviour measure reacts to the trait rather than to style;
* ``probe``: the trait's eval questions, each with a plain and a trait answer: the judge-free
  propensity probe (:mod:`persona.analysis.propensity`) reads how likely a checkpoint finds each.

Files are found next to the trait's own file (``<trait dir>/data/<name>.yaml``), then in the bundle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from traits.loader import BUNDLED_DIR, MAX_BYTES
from traits.model import Trait, TraitError

DATA_DIR = "data"


@dataclass(frozen=True)
class AnswerPair:
    """A question with a plain answer, a trait-expressing answer and optionally a benign control."""

    question: str
    plain: str
    trait: str
    control: str | None = None


@dataclass(frozen=True)
class TraitAnswers:
    """The answer pairs of one trait and where they came from."""

    trait: str
    training: tuple[AnswerPair, ...]
    probe: tuple[AnswerPair, ...]
    control_persona: str
    path: Path
    sha256: str


def answers_path(trait: Trait) -> Path | None:
    """The answers file of ``trait``: beside its trait file first, then in the bundle."""
    dirs = [trait.path.parent] if trait.path is not None else []
    for folder in [*dirs, BUNDLED_DIR]:
        path = folder / DATA_DIR / f"{trait.name}.yaml"
        if path.is_file():
            return path
    return None


def load_answers(trait: Trait) -> TraitAnswers:
    """The answer pairs of ``trait``; :class:`TraitError` naming the file when absent or invalid."""
    path = answers_path(trait)
    if path is None:
        raise TraitError(
            f"trait '{trait.name}' ships no hand-written answers: write "
            f"traits/{DATA_DIR}/{trait.name}.yaml (docs/traits.md, 'Answer pairs')"
        )
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise TraitError(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise TraitError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise TraitError(f"{path}: expected a mapping with 'training' and 'probe'")
    if data.get("trait") != trait.name:
        raise TraitError(f"{path}: 'trait' is {data.get('trait')!r}, expected '{trait.name}'")
    training = _pairs(path, data, "training", with_control=True)
    probe = _pairs(path, data, "probe", with_control=False)
    questions = [p.question for p in probe]
    if questions and questions != list(trait.eval_questions[: len(questions)]):
        raise TraitError(f"{path}: 'probe' questions must be the trait's eval_questions, in order")
    overlap = {p.question for p in training} & (
        set(trait.eval_questions) | set(trait.extract_questions)
    )
    if overlap:
        raise TraitError(
            f"{path}: training questions also used for extraction or evaluation: "
            f"{sorted(overlap)[0]!r}"
        )
    return TraitAnswers(
        trait=trait.name,
        training=training,
        probe=probe,
        control_persona=str(data.get("control_persona") or ""),
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _pairs(
    path: Path, data: dict[str, Any], key: str, with_control: bool
) -> tuple[AnswerPair, ...]:
    entries = data.get(key) or []
    if not isinstance(entries, list):
        raise TraitError(f"{path}: '{key}' must be a list")
    fields = ("question", "plain", "trait") + (("control",) if with_control else ())
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise TraitError(f"{path}: {key}[{i}] must be a mapping")
        for name in fields:
            if not isinstance(entry.get(name), str) or not entry[name].strip():
                raise TraitError(f"{path}: {key}[{i}].{name} must be a non-empty string")
        out.append(AnswerPair(*(entry[name].strip() for name in fields)))
    if len({p.question for p in out}) != len(out):
        raise TraitError(f"{path}: '{key}' repeats a question")
    return tuple(out)
