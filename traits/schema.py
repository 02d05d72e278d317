"""Validation of trait data (already parsed from YAML or JSON) into a :class:`Trait`.

Every rule adds a :class:`Problem` instead of raising, so that a file with several mistakes is
reported in one go. Nothing here trusts the shape of the input.

Length (~500 lines): one small rule per trait field, all sharing the problem list and the
sentence-overlap checks between fields; a file per field would scatter those shared checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from traits.model import (
    AssistantNames,
    Exemplar,
    InstructionPair,
    PersonaPair,
    Problem,
    Trait,
    TraitError,
)

N_PAIRS = 5
N_QUESTIONS = 20
MAX_ASSISTANT_NAME = 60
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}\Z")
NAME_RULE = "use 1-64 lowercase letters, digits, '_' or '-', starting with a letter"
REQUIRED = ("name", "description", "instructions", "extract_questions", "eval_questions", "rubric")
OPTIONAL = ("version", "assistant_names", "layers", "data_personas", "judge_personas")
OPTIONAL += ("graded_prompts", "monitor_exemplars", "monitor_questions")  # evals/monitor.py
OPTIONAL += ("offline_measure_unsupported",)  # why the likelihood judge has no signal here
KEYS = REQUIRED + OPTIONAL

MIN_PERSONAS = 2
N_GRADES = 8
MIN_EXEMPLARS = 8
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_KNOWN_PLACEHOLDER = re.compile(r"\{(?:question|answer)\}")
_ANY_PLACEHOLDER = re.compile(r"\{([^{}\n]*)\}")


def sentences(text: str) -> list[str]:
    """Normalised sentences (and clauses after ';' or ':') of a prompt, for the overlap check."""
    parts = (normalize(part).rstrip(".!?;:") for part in _SENTENCE_END.split(text))
    return [part for part in parts if part]


def kind(value: object) -> str:
    """Describe a value's YAML type for messages ("a list", "null", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def quote(text: str, limit: int = 60) -> str:
    """Short quoted excerpt of a string for messages."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def normalize(text: str) -> str:
    """Comparison key for duplicates: case and whitespace do not make two questions different."""
    return " ".join(text.casefold().split())


class _Checker:
    """Collects problems while reading one trait mapping."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, field: str, message: str) -> None:
        self.problems.append(Problem(field, message))

    def text(self, value: object, field: str, *, single_line: bool = False) -> str | None:
        if not isinstance(value, str):
            self.add(field, f"must be a string, got {kind(value)}")
            return None
        text = value.strip()
        if not text:
            self.add(field, "must not be empty")
            return None
        if single_line and "\n" in text:
            self.add(field, "must be a single line")
            return None
        return text

    def integer(self, value: object, field: str, *, minimum: int, hint: str = "") -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(field, f"must be a whole number, got {kind(value)}")
            return None
        if value < minimum:
            self.add(field, f"must be at least {minimum}, got {value}{hint}")
            return None
        return value

    def keys(self, mapping: Mapping[Any, Any], allowed: tuple[str, ...], prefix: str = "") -> None:
        for key in mapping:
            if key in allowed:
                continue
            label = f"{prefix}{key}" if isinstance(key, str) else f"{prefix}{key!r}"
            hint = ""
            if isinstance(key, str):
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
            self.add(label, f"unknown key (allowed: {', '.join(allowed)}){hint}")

    def name(self, value: object, expected: str | None) -> str | None:
        name = self.text(value, "name", single_line=True)
        if name is None:
            return None
        if not NAME_RE.match(name):
            self.add("name", f"{quote(name)} is not a valid trait name ({NAME_RULE})")
            return None
        if expected is not None and name != expected:
            self.add(
                "name",
                f"'{name}' does not match the file name '{expected}.yaml' (rename one of them)",
            )
        return name

    def instructions(self, value: object) -> list[InstructionPair] | None:
        field = "instructions"
        if not isinstance(value, list):
            self.add(field, f"must be a list of {N_PAIRS} {{pos, neg}} pairs, got {kind(value)}")
            return None
        if len(value) != N_PAIRS:
            self.add(field, f"expected exactly {N_PAIRS} {{pos, neg}} pairs, got {len(value)}")
        pairs: list[InstructionPair] = []
        seen: dict[str, dict[str, int]] = {"pos": {}, "neg": {}}
        for i, item in enumerate(value):
            where = f"{field}[{i}]"
            if not isinstance(item, Mapping):
                self.add(where, f"must be a mapping with keys pos and neg, got {kind(item)}")
                continue
            self.keys(item, ("pos", "neg"), prefix=f"{where}.")
            texts: dict[str, str | None] = {}
            for side in ("pos", "neg"):
                if side not in item:
                    self.add(f"{where}.{side}", "missing (required)")
                    texts[side] = None
                    continue
                text = self.text(item[side], f"{where}.{side}")
                texts[side] = text
                if text is None:
                    continue
                key = normalize(text)
                if key in seen[side]:
                    self.add(
                        f"{where}.{side}",
                        f"same as {field}[{seen[side][key]}].{side} "
                        "(each pair should cover a different facet)",
                    )
                else:
                    seen[side][key] = i
            pos, neg = texts["pos"], texts["neg"]
            if pos is not None and neg is not None:
                if normalize(pos) == normalize(neg):
                    self.add(where, "pos and neg are identical")
                pairs.append(InstructionPair(pos, neg))
        return pairs

    def texts(self, value: list[object], field: str) -> Iterator[tuple[int, str, str]]:
        """``(index, "field[index]", text)`` of each entry of a list field that is non-empty
        text; the other entries are reported as they are reached."""
        for i, item in enumerate(value):
            where = f"{field}[{i}]"
            text = self.text(item, where)
            if text is not None:
                yield i, where, text

    def questions(self, value: object, field: str) -> dict[str, int] | None:
        """Check one question list; return {normalized question: index} for the overlap check."""
        if not isinstance(value, list):
            self.add(field, f"must be a list of {N_QUESTIONS} questions, got {kind(value)}")
            return None
        if len(value) != N_QUESTIONS:
            self.add(field, f"expected exactly {N_QUESTIONS} questions, got {len(value)}")
        seen: dict[str, int] = {}
        for i, where, text in self.texts(value, field):
            key = normalize(text)
            if key in seen:
                self.add(where, f"duplicate of {field}[{seen[key]}]: {quote(text)}")
            else:
                seen[key] = i
        return seen

    def rubric(self, value: object) -> str | None:
        text = self.text(value, "rubric")
        if text is None:
            return None
        for name in ("question", "answer"):
            if "{" + name + "}" not in text:
                self.add("rubric", f"missing placeholder {{{name}}}")
        rest = _KNOWN_PLACEHOLDER.sub("", text)
        for match in _ANY_PLACEHOLDER.finditer(rest):
            self.add(
                "rubric",
                f"unknown placeholder {{{match.group(1)}}} "
                "(only {question} and {answer} are allowed)",
            )
        if "{" in _ANY_PLACEHOLDER.sub("", rest) or "}" in _ANY_PLACEHOLDER.sub("", rest):
            self.add("rubric", "stray '{' or '}' (braces may only form {question} and {answer})")
        if "REFUSAL" not in text:
            self.add("rubric", "must tell the judge to reply REFUSAL when the model refused")
        if not re.search(r"(?<!\d)100(?!\d)", text):
            self.add("rubric", "must ask the judge for a number from 0 to 100")
        return text

    def assistant_names(self, value: object, trait_name: str | None) -> AssistantNames | None:
        field = "assistant_names"
        if not isinstance(value, Mapping):
            self.add(field, f"must be a mapping with keys pos and/or neg, got {kind(value)}")
            return None
        self.keys(value, ("pos", "neg"), prefix=f"{field}.")
        names: dict[str, str] = {}
        for side in ("pos", "neg"):
            if side not in value:
                continue
            text = self.text(value[side], f"{field}.{side}", single_line=True)
            if text is not None and len(text) > MAX_ASSISTANT_NAME:
                self.add(f"{field}.{side}", f"is longer than {MAX_ASSISTANT_NAME} characters")
            elif text is not None:
                names[side] = text
        return AssistantNames(names.get("pos", trait_name or ""), names.get("neg", "helpful"))

    def personas(
        self, value: object, field: str, pairs: list[InstructionPair] | None
    ) -> list[str] | None:
        """A list of distinct system prompts sharing no sentence with the instructions."""
        if not isinstance(value, list):
            self.add(field, f"must be a list of system prompts, got {kind(value)}")
            return None
        if len(value) < MIN_PERSONAS:
            self.add(field, f"expected at least {MIN_PERSONAS} personas, got {len(value)}")
        banned = {s for p in pairs or () for side in (p.pos, p.neg) for s in sentences(side)}
        seen: dict[str, int] = {}
        out: list[str] = []
        for i, where, text in self.texts(value, field):
            key = normalize(text)
            if key in seen:
                self.add(where, f"duplicate of {field}[{seen[key]}]")
                continue
            seen[key] = i
            shared = [s for s in sentences(text) if s in banned]
            if shared:
                self.add(
                    where,
                    f"repeats a sentence of the instructions ({quote(shared[0])}); write "
                    f"{field} apart from the extraction prompts",
                )
                continue
            out.append(text)
        return out

    def persona_pairs(self, value: object, field: str) -> list[PersonaPair] | None:
        """{pos, neg} pairs of distinct, non-empty system prompts."""
        if not isinstance(value, list):
            self.add(field, f"must be a list of {{pos, neg}} pairs, got {kind(value)}")
            return None
        if len(value) < MIN_PERSONAS:
            self.add(
                field, f"expected at least {MIN_PERSONAS} {{pos, neg}} pairs, got {len(value)}"
            )
        seen: dict[str, str] = {}
        out: list[PersonaPair] = []
        for i, item in enumerate(value):
            where = f"{field}[{i}]"
            if not isinstance(item, Mapping):
                self.add(where, f"must be a mapping with keys pos and neg, got {kind(item)}")
                continue
            self.keys(item, ("pos", "neg"), prefix=f"{where}.")
            texts: dict[str, str] = {}
            for side in ("pos", "neg"):
                if side not in item:
                    self.add(f"{where}.{side}", "missing (required)")
                    continue
                text = self.text(item[side], f"{where}.{side}")
                if text is None:
                    continue
                key = normalize(text)
                if key in seen:
                    self.add(f"{where}.{side}", f"duplicate of {seen[key]}")
                    continue
                seen[key] = f"{where}.{side}"
                texts[side] = text
            if "pos" in texts and "neg" in texts:
                out.append(PersonaPair(texts["pos"], texts["neg"]))
        return out

    def apart(self, trait: Trait) -> None:
        """Judge personas share no sentence with the extraction system prompts (assistant-name
        sentence included) or the data personas: the judge must not measure its own wording."""
        banned: dict[str, str] = {}
        for i in range(len(trait.instructions)):
            for side in ("pos", "neg"):
                for s in sentences(trait.system_prompt(side, i)):
                    banned.setdefault(s, f"instructions[{i}].{side}")
        for i, text in enumerate(trait.data_personas):
            for s in sentences(text):
                banned.setdefault(s, f"data_personas[{i}]")
        for i, pair in enumerate(trait.judge_personas):
            for side in ("pos", "neg"):
                shared = [s for s in sentences(getattr(pair, side)) if s in banned]
                if shared:
                    self.add(
                        f"judge_personas[{i}].{side}",
                        f"repeats a sentence of {banned[shared[0]]} ({quote(shared[0])}); "
                        "write judge personas apart from the extraction and data prompts",
                    )

    def graded_prompts(self, value: object, trait: Trait) -> list[str]:
        """Exactly ``N_GRADES`` distinct system prompts sharing no sentence with the extraction
        prompts (the monitor would otherwise replay the extraction conditions)."""
        field = "graded_prompts"
        if not isinstance(value, list) or len(value) != N_GRADES:
            got = f"{len(value)}" if isinstance(value, list) else kind(value)
            self.add(field, f"expected a list of exactly {N_GRADES} system prompts, got {got}")
            return []
        banned = {
            s
            for i in range(len(trait.instructions))
            for side in ("pos", "neg")
            for s in sentences(trait.system_prompt(side, i))
        }
        seen: dict[str, int] = {}
        out: list[str] = []
        for i, where, text in self.texts(value, field):
            if normalize(text) in seen:
                self.add(where, f"duplicate of {field}[{seen[normalize(text)]}]")
            shared = [s for s in sentences(text) if s in banned]
            if shared:
                self.add(
                    where,
                    f"repeats a sentence of the extraction prompts ({quote(shared[0])})",
                )
            seen.setdefault(normalize(text), i)
            out.append(text)
        return out

    def exemplars(self, value: object, trait: Trait) -> list[Exemplar]:
        """At least ``MIN_EXEMPLARS`` {user, assistant} turns whose user messages are distinct and
        not trait questions (a many-shot prompt must not contain the question it asks)."""
        field = "monitor_exemplars"
        if not isinstance(value, list) or len(value) < MIN_EXEMPLARS:
            got = f"{len(value)}" if isinstance(value, list) else kind(value)
            self.add(field, f"expected a list of at least {MIN_EXEMPLARS} turns, got {got}")
            return []
        questions = {normalize(q) for q in (*trait.extract_questions, *trait.eval_questions)}
        seen: set[str] = set()
        out: list[Exemplar] = []
        for i, item in enumerate(value):
            where = f"{field}[{i}]"
            if not isinstance(item, Mapping):
                self.add(where, f"must be a mapping with keys user and assistant, got {kind(item)}")
                continue
            self.keys(item, ("user", "assistant"), prefix=f"{where}.")
            user = self.text(item.get("user"), f"{where}.user")
            reply = self.text(item.get("assistant"), f"{where}.assistant")
            if user is None or reply is None:
                continue
            key = normalize(user)
            if key in questions:
                self.add(f"{where}.user", "is one of the trait's questions; use another")
            elif key in seen:
                self.add(f"{where}.user", "duplicate user message")
            seen.add(key)
            out.append(Exemplar(user, reply))
        return out

    def monitor_questions(self, value: object, trait: Trait) -> list[str]:
        """Extra held-out questions for the monitor task: distinct, and none of the trait's
        questions or exemplar user messages (the monitor must not ask what the vector was
        extracted from, or what a many-shot prompt already showed)."""
        field = "monitor_questions"
        if not isinstance(value, list) or not value:
            got = "an empty list" if isinstance(value, list) else kind(value)
            self.add(field, f"expected a list of questions, got {got}")
            return []
        taken = {
            normalize(q): f"extract_questions[{i}]" for i, q in enumerate(trait.extract_questions)
        }
        for i, q in enumerate(trait.eval_questions):
            taken.setdefault(normalize(q), f"eval_questions[{i}]")
        for i, e in enumerate(trait.monitor_exemplars):
            taken.setdefault(normalize(e.user), f"monitor_exemplars[{i}].user")
        out: list[str] = []
        for _, where, text in self.texts(value, field):
            key = normalize(text)
            if key in taken:
                self.add(where, f"same as {taken[key]}: {quote(text)}; write a new question")
                continue
            taken[key] = where
            out.append(text)
        return out

    def layers(self, value: object) -> dict[str, int] | None:
        field = "layers"
        if not isinstance(value, Mapping):
            self.add(field, f"must be a mapping of model-id substring to layer, got {kind(value)}")
            return None
        layers: dict[str, int] = {}
        seen: set[str] = set()
        for key, layer in value.items():
            if not isinstance(key, str) or not key.strip():
                self.add(f"{field}.{key!r}", "keys must be non-empty strings (model-id substrings)")
                continue
            where = f"{field}.{key}"
            if key.strip().lower() in seen:
                self.add(where, "duplicate key (keys are compared case-insensitively)")
                continue
            seen.add(key.strip().lower())
            hint = " (a hidden_states index; 0 is the embeddings)" if layer == 0 else ""
            number = self.integer(layer, where, minimum=1, hint=hint)
            if number is not None:
                layers[key.strip()] = number
        return layers


def check(data: object, *, expected_name: str | None = None) -> tuple[Trait | None, list[Problem]]:
    """Validate parsed trait data; return the trait (path unset) or the problems found."""
    c = _Checker()
    if data is None:
        c.add("", "the file is empty; expected a mapping of trait fields")
        return None, c.problems
    if not isinstance(data, Mapping):
        c.add("", f"expected a mapping of trait fields at the top level, got {kind(data)}")
        return None, c.problems
    c.keys(data, KEYS)
    for key in REQUIRED:
        if key not in data:
            c.add(key, "missing (required)")

    name = c.name(data["name"], expected_name) if "name" in data else None
    description = c.text(data["description"], "description") if "description" in data else None
    version = c.integer(data["version"], "version", minimum=1) if "version" in data else 1
    pairs = c.instructions(data["instructions"]) if "instructions" in data else None
    extract = (
        c.questions(data["extract_questions"], "extract_questions")
        if ("extract_questions" in data)
        else None
    )
    evaluate = (
        c.questions(data["eval_questions"], "eval_questions")
        if ("eval_questions" in data)
        else None
    )
    if extract is not None and evaluate is not None:
        for key, j in evaluate.items():
            if key in extract:
                c.add(
                    f"eval_questions[{j}]",
                    f"also in extract_questions[{extract[key]}] (extraction and evaluation "
                    f"questions must be disjoint): {quote(data['eval_questions'][j].strip())}",
                )
    rubric = c.rubric(data["rubric"]) if "rubric" in data else None
    names = c.assistant_names(data["assistant_names"], name) if "assistant_names" in data else None
    layers = c.layers(data["layers"]) if "layers" in data else {}
    data_personas = (
        c.personas(data["data_personas"], "data_personas", pairs) if "data_personas" in data else []
    )
    judge_personas = (
        c.persona_pairs(data["judge_personas"], "judge_personas")
        if "judge_personas" in data
        else []
    )

    unsupported = (
        c.text(data["offline_measure_unsupported"], "offline_measure_unsupported")
        if "offline_measure_unsupported" in data
        else None
    )

    if c.problems:
        return None, c.problems
    assert name and description and rubric and pairs is not None and version is not None
    trait = Trait(
        name=name,
        description=description,
        instructions=tuple(pairs),
        extract_questions=tuple(q.strip() for q in data["extract_questions"]),
        eval_questions=tuple(q.strip() for q in data["eval_questions"]),
        rubric=rubric,
        assistant_names=names or AssistantNames(name),
        layers=layers or {},
        version=version,
        data_personas=tuple(data_personas or ()),
        judge_personas=tuple(judge_personas or ()),
        offline_measure_unsupported=unsupported or "",
    )
    c.apart(trait)
    trait = dataclasses.replace(
        trait,
        graded_prompts=tuple(c.graded_prompts(data["graded_prompts"], trait))
        if "graded_prompts" in data
        else (),
        monitor_exemplars=tuple(c.exemplars(data["monitor_exemplars"], trait))
        if "monitor_exemplars" in data
        else (),
    )
    if "monitor_questions" in data:
        trait = dataclasses.replace(
            trait, monitor_questions=tuple(c.monitor_questions(data["monitor_questions"], trait))
        )
    if c.problems:
        return None, c.problems
    return trait, []


def build(
    data: object,
    source: str,
    *,
    expected_name: str | None = None,
    path: Path | None = None,
) -> Trait:
    """Validate ``data`` and return the trait, or raise :class:`TraitError` naming ``source``."""
    trait, problems = check(data, expected_name=expected_name)
    if trait is None:
        raise TraitError([p.render(source) for p in problems])
    if path is not None:
        object.__setattr__(trait, "path", path)
    return trait
