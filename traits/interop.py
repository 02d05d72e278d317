"""Import from and export to the reference implementation's JSON layout.

A reference trait is two files, ``trait_data_extract/<name>.json`` and
``trait_data_eval/<name>.json``, each ``{"instruction": [{pos, neg} x5], "questions": [20],
"eval_prompt": "..."}``; both share the instructions and the rubric and split the questions.
On export we add a ``persona_evals`` key with the fields the layout lacks (name, description,
assistant names, layer hints, version), which the reference code ignores; ``plain=True`` leaves it
out.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from persona.atomic import write_text
from traits.model import Problem, Trait, TraitError
from traits.schema import N_QUESTIONS, check, kind

META_KEY = "persona_evals"
REF_KEYS = ("instruction", "questions", "eval_prompt")
META_FIELDS = (
    "name",
    "description",
    "version",
    "assistant_names",
    "layers",
    "data_personas",
    "judge_personas",
    "graded_prompts",
    "monitor_exemplars",
    "monitor_questions",
    "offline_measure_unsupported",
)
EXTRACT_DIR = "trait_data_extract"
EVAL_DIR = "trait_data_eval"
_FIELD = re.compile(r"(\w+)(?:\[(\d+)\])?(.*)\Z", re.DOTALL)


def to_reference(trait: Trait, *, plain: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (extract, eval) JSON objects for ``trait``."""

    def one(questions: tuple[str, ...]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "instruction": [{"pos": p.pos, "neg": p.neg} for p in trait.instructions],
            "questions": list(questions),
            "eval_prompt": trait.rubric,
        }
        if not plain:
            meta = trait.to_dict()
            data[META_KEY] = {k: meta[k] for k in META_FIELDS if k in meta}
        return data

    return one(trait.extract_questions), one(trait.eval_questions)


def reference_paths(name: str, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Where the reference layout keeps a trait's extract and eval files under ``out_dir``."""
    root = Path(out_dir)
    return root / EXTRACT_DIR / f"{name}.json", root / EVAL_DIR / f"{name}.json"


def export_reference(
    trait: Trait,
    out_dir: str | os.PathLike[str],
    *,
    plain: bool = False,
    force: bool = False,
) -> tuple[Path, Path]:
    """Write the JSON pair atomically under ``out_dir``; return their paths."""
    paths = reference_paths(trait.name, out_dir)
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise TraitError(f"{existing[0]}: already exists (pass --force to overwrite)")
    for path, data in zip(paths, to_reference(trait, plain=plain), strict=True):
        try:
            write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        except OSError as e:
            raise TraitError(f"{path}: cannot write: {e.strerror or e}") from None
    return paths


def _read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
        return None
    except IsADirectoryError:
        problems.append(f"{path}: is a folder, not a JSON file")
        return None
    except OSError as e:
        problems.append(f"{path}: cannot read file: {e.strerror or e}")
        return None
    except UnicodeDecodeError as e:
        problems.append(f"{path}: not UTF-8 text (byte {e.start})")
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        problems.append(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")
        return None
    except RecursionError:
        problems.append(f"{path}: invalid JSON: nested too deeply")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a JSON object at the top level, got {kind(data)}")
        return None
    for key in data:
        if key not in (*REF_KEYS, META_KEY):
            allowed = ", ".join((*REF_KEYS, META_KEY))
            problems.append(f"{path}: {key}: unknown key (allowed: {allowed})")
    for key in REF_KEYS:
        if key not in data:
            problems.append(f"{path}: {key}: missing (required)")
    meta = data.get(META_KEY)
    if meta is not None and not isinstance(meta, dict):
        problems.append(f"{path}: {META_KEY}: must be an object, got {kind(meta)}")
    elif isinstance(meta, dict):
        for key in meta:
            if key not in META_FIELDS:
                allowed = ", ".join(META_FIELDS)
                problems.append(f"{path}: {META_KEY}.{key}: unknown key (allowed: {allowed})")
    return data


def sibling_eval_file(extract_file: Path) -> Path | None:
    """``.../trait_data_eval/<name>.json`` beside ``.../trait_data_extract/<name>.json``, if any."""
    if extract_file.parent.name != EXTRACT_DIR:
        return None
    candidate = extract_file.parent.parent / EVAL_DIR / extract_file.name
    return candidate if candidate.is_file() else None


def description_from_rubric(rubric: object) -> str | None:
    """The trait description a reference rubric states after its first sentence, if any."""
    if not isinstance(rubric, str) or "[QUESTION START]" not in rubric:
        return None
    head = rubric.split("[QUESTION START]", 1)[0].strip()
    lines = head.splitlines()
    if lines and lines[-1].strip().endswith(":"):  # a label such as "Prompt:"
        lines = lines[:-1]
    text = " ".join(" ".join(lines).split())
    parts = re.split(r"(?<=[.!?])\s+", text, maxsplit=1)
    return parts[1].strip() if len(parts) == 2 and parts[1].strip() else None


def locate(field: str, offset_file: str, eval_file: str | None) -> tuple[str, str]:
    """Map a schema field to (file, field) in a reference JSON layout.

    Without a separate eval file, evaluation questions are ``questions[20..39]`` of one file.
    """
    match = _FIELD.match(field)
    if not match:
        return offset_file, field
    base, index, rest = match.groups()
    suffix = f"[{index}]{rest}" if index is not None else rest
    if base == "instructions":
        return offset_file, f"instruction{suffix}"
    if base == "rubric":
        return offset_file, f"eval_prompt{rest}"
    if base == "extract_questions":
        return offset_file, f"questions{suffix}"
    if base == "eval_questions":
        if eval_file is not None:
            return eval_file, f"questions{suffix}"
        if index is not None:
            return offset_file, f"questions[{int(index) + N_QUESTIONS}]{rest}"
        return offset_file, f"questions{rest}"
    return offset_file, field


def render(problems: list[Problem], main_file: str, eval_file: str | None) -> list[str]:
    """Render schema problems in the reference layout's terms and files."""
    out = []
    for p in problems:
        source, field = locate(p.field, main_file, eval_file)
        out.append(Problem(field, p.message).render(source))
    return out


def import_reference(
    extract_file: str | os.PathLike[str],
    eval_file: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Trait:
    """Build a trait from reference JSON.

    Without ``eval_file``, a sibling ``trait_data_eval/<name>.json`` is used when present, else
    ``extract_file`` must hold all 40 questions (first 20 extraction, last 20 evaluation). The name
    defaults to the exported metadata or the file stem; the description to the metadata or the
    rubric's own description of the trait.
    """
    xpath = Path(extract_file)
    epath = Path(eval_file) if eval_file is not None else sibling_eval_file(xpath)
    problems: list[str] = []
    xdata = _read_json(xpath, problems)
    edata = _read_json(epath, problems) if epath is not None else None
    if xdata is None or (epath is not None and edata is None):
        raise TraitError(problems)

    bad_count = False
    if edata is not None:
        for key in ("instruction", "eval_prompt"):
            if key in xdata and key in edata and xdata[key] != edata[key]:
                problems.append(f"{epath}: {key}: differs from {key} in {xpath} (they must match)")
        extract_q, eval_q = xdata.get("questions"), edata.get("questions")
    else:
        questions = xdata.get("questions")
        if isinstance(questions, list) and len(questions) != 2 * N_QUESTIONS:
            problems.append(
                f"{xpath}: questions: has {len(questions)} questions; without --eval-file a file "
                f"must hold {2 * N_QUESTIONS} (20 extraction + 20 evaluation)"
            )
            bad_count = True
        if isinstance(questions, list):
            extract_q, eval_q = questions[:N_QUESTIONS], questions[N_QUESTIONS:]
        else:
            extract_q = eval_q = questions

    meta = xdata.get(META_KEY) if isinstance(xdata.get(META_KEY), Mapping) else {}
    data: dict[str, Any] = {k: meta[k] for k in META_FIELDS if k in meta}
    data["name"] = name if name is not None else meta.get("name", xpath.stem)
    if description is not None:
        data["description"] = description
    elif "description" not in data:
        derived = description_from_rubric(xdata.get("eval_prompt"))
        data["description"] = derived or f"Trait '{data['name']}' imported from {xpath.name}."
    for key, value in (
        ("instructions", xdata.get("instruction")),
        ("extract_questions", extract_q),
        ("eval_questions", eval_q),
        ("rubric", xdata.get("eval_prompt")),
    ):
        if value is not None:
            data[key] = value

    trait, schema_problems = check(data)
    if bad_count:  # the count of the single list was reported above, in its own terms
        whole = ("extract_questions", "eval_questions")
        schema_problems = [p for p in schema_problems if p.field not in whole]
    problems += render(schema_problems, str(xpath), str(epath) if edata is not None else None)
    problems = list(dict.fromkeys(problems))  # a key missing from the JSON is reported once
    if problems or trait is None:
        raise TraitError(problems)
    return trait
