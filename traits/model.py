"""The typed, immutable trait definition and its error type.

A :class:`Trait` is built by the loader after validation; its :attr:`Trait.hash` identifies the
definition in vector files and logs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from persona.errors import PersonaError

HASH_FORMAT = "persona-trait/1"
DEFAULT_NEG_NAME = "helpful"
_PLACEHOLDER = re.compile(r"\{(question|answer)\}")


class TraitError(PersonaError):
    """A trait definition is missing or invalid.

    ``problems`` holds one line per problem, each ``"<file>: <field>: <what is wrong>"``.
    """

    def __init__(
        self,
        problems: list[str] | str,
        summary: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if summary is None and len(self.problems) == 1:
            message = self.problems[0]
        else:
            head = summary or f"{len(self.problems)} problems"
            message = head + ":\n" + "\n".join(f"  {p}" for p in self.problems)
        super().__init__(message, exit_code)


@dataclass(frozen=True)
class Problem:
    """One validation problem before it is tied to a file: the field and what is wrong."""

    field: str
    message: str

    def render(self, source: str) -> str:
        """Format as ``"source: field: message"`` (the field is left out when empty)."""
        return (
            f"{source}: {self.field}: {self.message}" if self.field else f"{source}: {self.message}"
        )


@dataclass(frozen=True)
class InstructionPair:
    """One facet of the trait: an instruction that elicits it and one that avoids it."""

    pos: str
    neg: str


@dataclass(frozen=True)
class PersonaPair:
    """Two complete system prompts: one that expresses the trait and its opposite."""

    pos: str
    neg: str


@dataclass(frozen=True)
class Exemplar:
    """An earlier user/assistant turn of a many-shot monitor prompt; the reply shows the trait."""

    user: str
    assistant: str


@dataclass(frozen=True)
class AssistantNames:
    """Adjectives used in "You are a/an {name} assistant." for each polarity."""

    pos: str
    neg: str = DEFAULT_NEG_NAME


@dataclass(frozen=True)
class Trait:
    """A validated trait definition (see ``docs/traits.md``); build it with ``traits.load``."""

    name: str
    description: str
    instructions: tuple[InstructionPair, ...]
    extract_questions: tuple[str, ...]
    eval_questions: tuple[str, ...]
    rubric: str
    assistant_names: AssistantNames = None  # type: ignore[assignment]  # filled in __post_init__
    layers: Mapping[str, int] = field(default_factory=dict)
    version: int = 1
    path: Path | None = field(default=None, compare=False)
    # System prompts that make contaminated fine-tuning data (``persona data make``); written
    # apart from ``instructions`` so that the data is not made with the extraction prompts.
    # Not in the hash: they never change extraction or judging (see docs/traits.md).
    data_personas: tuple[str, ...] = ()
    # Persona pairs of the likelihood judge (``persona judge``); written apart from
    # ``instructions`` (no shared sentence, validated). Not in the hash, as data_personas.
    judge_personas: tuple[PersonaPair, ...] = ()
    # Monitoring (``evals/monitor.py``): eight system prompts graded from trait-suppressing (0) to
    # trait-promoting (7), and turns that show the trait for many-shot prompts. Not in the hash.
    graded_prompts: tuple[str, ...] = ()
    monitor_exemplars: tuple[Exemplar, ...] = ()
    # Held-out questions the monitor task may add after the eval questions (``-T questions=N``
    # beyond 20), written apart from every other question of the trait. Not in the hash.
    monitor_questions: tuple[str, ...] = ()
    # Why the offline behaviour measure (the likelihood judge) has no validated signal for this
    # trait on the embedded model ("" = it has: AUROC >= 0.85 on the held-out labelled set).
    # Tasks, reports, gates and ``persona traits validate`` warn with it. Not in the hash.
    offline_measure_unsupported: str = ""

    def __post_init__(self) -> None:
        # Freeze containers so that a Trait can be shared safely between tasks and threads.
        set_ = object.__setattr__
        set_(self, "instructions", tuple(self.instructions))
        set_(self, "extract_questions", tuple(self.extract_questions))
        set_(self, "eval_questions", tuple(self.eval_questions))
        if self.assistant_names is None:
            set_(self, "assistant_names", AssistantNames(self.name))
        set_(self, "layers", MappingProxyType(dict(self.layers)))
        set_(self, "data_personas", tuple(self.data_personas))
        set_(self, "judge_personas", tuple(self.judge_personas))
        set_(self, "graded_prompts", tuple(self.graded_prompts))
        set_(self, "monitor_exemplars", tuple(self.monitor_exemplars))
        set_(self, "monitor_questions", tuple(self.monitor_questions))

    def __hash__(self) -> int:
        return hash(self.hash)

    def canonical(self) -> dict[str, Any]:
        """The content the hash covers: everything that changes generated or judged text.

        The description, layer hints, version and path are documentation and do not count, so
        editing them keeps vectors valid; a definition exported to the reference JSON layout and
        re-imported keeps its hash.
        """
        return {
            "format": HASH_FORMAT,
            "name": self.name,
            "instructions": [[p.pos, p.neg] for p in self.instructions],
            "extract_questions": list(self.extract_questions),
            "eval_questions": list(self.eval_questions),
            "rubric": self.rubric,
            "assistant_names": {"pos": self.assistant_names.pos, "neg": self.assistant_names.neg},
        }

    @property
    def hash(self) -> str:
        """Stable content hash: first 16 hex digits of the sha256 of :meth:`canonical`."""
        text = json.dumps(
            self.canonical(), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def system_prompt(self, polarity: Literal["pos", "neg"], index: int) -> str:
        """The paper's system prompt: ``You are a/an {assistant name} assistant. {instruction}``."""
        if polarity not in ("pos", "neg"):
            raise ValueError(f"polarity must be 'pos' or 'neg', got {polarity!r}")
        if not 0 <= index < len(self.instructions):
            raise ValueError(
                f"instruction index must be 0..{len(self.instructions) - 1}, got {index}"
            )
        name = getattr(self.assistant_names, polarity)
        article = "an" if name[:1].lower() in "aeiou" else "a"
        instruction = getattr(self.instructions[index], polarity)
        return f"You are {article} {name} assistant. {instruction}"

    def need_data_personas(self) -> tuple[str, ...]:
        """The data personas, or a one-line error naming the missing field."""
        if not self.data_personas:
            where = f" in {self.path}" if self.path else ""
            raise TraitError(
                f"trait {self.name!r} has no data_personas{where}: add a list of system prompts "
                "that express the trait (see docs/traits.md)"
            )
        return self.data_personas

    def need_judge_personas(self) -> tuple[PersonaPair, ...]:
        """The likelihood judge's persona pairs, or a one-line error naming the missing field."""
        if not self.judge_personas:
            where = f" in {self.path}" if self.path else ""
            raise TraitError(
                f"trait {self.name!r} has no judge_personas{where}: add {{pos, neg}} pairs of "
                "system prompts for the likelihood judge (see docs/traits.md)"
            )
        return self.judge_personas

    def need_monitoring(self) -> tuple[tuple[str, ...], tuple[Exemplar, ...]]:
        """Graded prompts and many-shot exemplars, or a one-line error naming the missing field."""
        for field_name in ("graded_prompts", "monitor_exemplars"):
            if not getattr(self, field_name):
                where = f" in {self.path}" if self.path else ""
                raise TraitError(
                    f"trait {self.name!r} has no {field_name}{where}: the monitor task needs "
                    "graded_prompts and monitor_exemplars (see docs/traits.md)"
                )
        return self.graded_prompts, self.monitor_exemplars

    def offline_measure_warning(self) -> str | None:
        """The one-line warning every use of the trait prints when its offline behaviour
        measure is marked unsupported (docs/judges.md), else None."""
        if not self.offline_measure_unsupported:
            return None
        return (
            f"trait {self.name!r}: the likelihood judge is not a validated behaviour measure "
            f"for it ({self.offline_measure_unsupported}); its scores are not evidence of "
            "behaviour unless a capable judge model is bound (docs/judges.md)"
        )

    def judge_prompt(self, question: str, answer: str) -> str:
        """The rubric with the question and answer filled in, in one pass.

        Braces or placeholder text inside the question or answer are left untouched.
        """
        values = {"question": question, "answer": answer}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.rubric)

    def layer_hint(self, model_id: str) -> int | None:
        """Layer hint for a model: the longest key found (case-insensitively) in ``model_id``."""
        model = model_id.lower()
        matches = [(len(k), v) for k, v in self.layers.items() if k.lower() in model]
        return max(matches)[1] if matches else None

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain data in file order (defaults for assistant names left out)."""
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "description": self.description,
        }
        if self.assistant_names != AssistantNames(self.name):
            data["assistant_names"] = {
                "pos": self.assistant_names.pos,
                "neg": self.assistant_names.neg,
            }
        if self.layers:
            data["layers"] = dict(self.layers)
        data["instructions"] = [{"pos": p.pos, "neg": p.neg} for p in self.instructions]
        data["extract_questions"] = list(self.extract_questions)
        data["eval_questions"] = list(self.eval_questions)
        data["rubric"] = self.rubric
        if self.data_personas:
            data["data_personas"] = list(self.data_personas)
        if self.judge_personas:
            data["judge_personas"] = [{"pos": p.pos, "neg": p.neg} for p in self.judge_personas]
        if self.graded_prompts:
            data["graded_prompts"] = list(self.graded_prompts)
        if self.monitor_exemplars:
            data["monitor_exemplars"] = [
                {"user": e.user, "assistant": e.assistant} for e in self.monitor_exemplars
            ]
        if self.monitor_questions:
            data["monitor_questions"] = list(self.monitor_questions)
        if self.offline_measure_unsupported:
            data["offline_measure_unsupported"] = self.offline_measure_unsupported
        return data
