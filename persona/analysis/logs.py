"""Read Inspect logs into one tidy DataFrame (one row per sample and epoch), per docs/schema.md.

Columns of :func:`samples_frame`:

- ``log``, ``task``, ``model``, ``adapter`` (the ``adapter`` model arg or None), ``sample_id``
  (the sample's own id), ``epoch``, ``error``;
- the sample metadata keys (``question_id``, ``question``, ``condition``, ``polarity``, ``coef``,
  ``layer``, ``positions``, ``checkpoint``, ...); the trait's **name** is ``trait_name``;
- the ``persona_score`` keys under their plain names: ``trait`` (the judged **score**, 0-100,
  also as ``trait_score``: the unambiguous name, ``trait`` is kept for existing code),
  ``coherence``, ``proj_response``, ``proj_prompt_last``, ``proj_*_<other>``;
- the score metadata keys (``judge_model``, ``judge_mode``, ``judge_mass``, ``coherence_mass``,
  ``judge_is_subject``, ``unscored_reason``, ``steering_active``, ``vector``); its ``layer`` (the
  layer of the projection) is ``proj_layer``;
- ``checkpoint_id``: the checkpoint identity (see :func:`checkpoint_identity`);
- ``checkpoint_rank``: where the row's checkpoint stands in the order its run was given (base 0,
  then ``checkpoint_shift``'s ``checkpoints`` from 1; NaN when the run gave none), so reports list
  checkpoints as given rather than alphabetically.

Corrupt and unfinished logs are skipped; the list is in ``frame.attrs["skipped"]`` and is also
issued as one :class:`LogWarning`.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

SCORER = "persona_score"
SCORE_KEYS = ("trait", "coherence", "proj_response", "proj_prompt_last")
TRAIT_SCORE = "trait_score"  # the judged 0-100 score (``trait``) under a name, not the trait
BASE = "base"

_ID_COLUMNS = ["log", "task", "model", "adapter", "sample_id", "epoch", "checkpoint_id"]
_META_RENAMES = {"trait": "trait_name"}
_SCORE_META_RENAMES = {
    "layer": "proj_layer",
    "trait": "_score_trait_name",
    "checkpoint": "_score_ckpt",
}


class LogWarning(UserWarning):
    """Some logs were skipped (corrupt, unfinished or unreadable)."""


@dataclass(frozen=True)
class SkippedLog:
    """A log that was not read, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _looks_like_log(path: Path) -> bool:
    """``.eval`` files, and ``.json`` files that start like an Inspect log (not summary.json)."""
    if path.name.startswith(".") or not path.is_file():
        return False
    if path.suffix == ".eval":
        return True
    if path.suffix != ".json":
        return False
    with path.open("rb") as f:
        head = f.read(512)
    return b'"version"' in head and b'"status"' in head


def find_logs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand folders (recursively) to the Inspect logs in them; keep files as given."""
    found: list[Path] = []
    for raw in paths:
        # EvalLogInfo (from inspect's list_eval_logs) carries its location in .name
        text = str(raw) if isinstance(raw, str | os.PathLike) else str(raw.name)
        p = Path(text.removeprefix("file://"))
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if _looks_like_log(f)))
        else:
            found.append(p)
    return list(dict.fromkeys(found))


def checkpoint_identity(model: str, adapter: str | None, checkpoint: str | None) -> str:
    """A row's checkpoint: ``checkpoint`` unless it is ``base``/empty, else ``model[+adapter]``."""
    if checkpoint and str(checkpoint) != BASE:
        return str(checkpoint)
    return f"{model}+{adapter}" if adapter else model


def _check_header(path: Path) -> tuple[str | None, list[str]]:
    """Why the log cannot be used (None for a finished log), and the checkpoint aliases its task
    was given, in the order given (``checkpoint_shift``'s ``checkpoints``; empty otherwise)."""
    from inspect_ai.log import read_eval_log

    if not path.exists():
        return "file not found", []
    try:
        header = read_eval_log(str(path), header_only=True)
    except Exception as e:  # corrupt zip, bad JSON, unknown format
        return f"corrupt or unreadable ({type(e).__name__}: {str(e)[:120]})", []
    if header.status != "success":
        return f"unfinished (status {header.status!r})", []
    given = (header.eval.metadata or {}).get("checkpoints")
    return None, [str(c) for c in given] if isinstance(given, dict | list) else []


def _columns() -> list[Any]:
    from inspect_ai.analysis import EvalColumn, SampleColumn

    return [
        SampleColumn("id", path="id", required=True, type=str),
        SampleColumn("epoch", path="epoch", required=True),
        SampleColumn("error", path="error", default=""),
        SampleColumn("metadata_*", path="metadata"),
        SampleColumn(f"score_{SCORER}_*", path=f"scores.{SCORER}.value"),
        SampleColumn("scoremeta_*", path=f"scores.{SCORER}.metadata"),
        EvalColumn("model", path="eval.model", required=True),
        EvalColumn("model_args", path="eval.model_args"),
        EvalColumn("model_roles", path="eval.model_roles"),
        EvalColumn("task", path="eval.task", required=True),
    ]


def _read_with_samples_df(path: Path) -> pd.DataFrame:
    from inspect_ai.analysis import samples_df

    df = samples_df(str(path), columns=_columns(), quiet=True)
    df = df.drop(columns=[c for c in ("sample_id", "eval_id") if c in df.columns])
    return df.rename(columns={"id": "sample_id"})


def _read_with_log_reader(path: Path) -> pd.DataFrame:
    """Fallback: build the same raw columns from ``read_eval_log``."""
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(path))
    spec = log.eval
    roles = {
        k: v.model_dump() for k, v in (spec.model_roles or {}).items() if hasattr(v, "model_dump")
    }
    rows = []
    for s in log.samples or []:
        row: dict[str, Any] = {
            "sample_id": str(s.id),
            "epoch": s.epoch,
            "error": s.error.message if s.error else "",
            "model": spec.model,
            "model_args": json.dumps(spec.model_args or {}),
            "model_roles": json.dumps(roles),
            "task": spec.task,
            "log": str(path),
        }
        row.update({f"metadata_{k}": v for k, v in (s.metadata or {}).items()})
        score = (s.scores or {}).get(SCORER)
        if score is not None:
            if isinstance(score.value, dict):
                row.update({f"score_{SCORER}_{k}": v for k, v in score.value.items()})
            row.update({f"scoremeta_{k}": v for k, v in (score.metadata or {}).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _json_obj(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            out = json.loads(value)
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}
    return {}


def _role_judge(roles: Any) -> str | None:
    judge = _json_obj(roles).get("judge")
    if isinstance(judge, list):
        judge = judge[0] if judge else None
    if isinstance(judge, dict):
        return judge.get("model")
    return judge if isinstance(judge, str) else None


def _plain(value: Any) -> Any:
    """Missing markers (None, NA, NaN) -> None; whole floats -> int; numpy -> Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def _obj(values: Iterable[Any], index: pd.Index) -> pd.Series:
    """An object column with None for missing values (pandas would coerce to NaN/str)."""
    return pd.Series([_plain(v) for v in values], index=index, dtype=object)


def _tidy(raw: pd.DataFrame) -> pd.DataFrame:
    """Rename raw columns to the schema names and normalise dtypes."""
    idx = raw.index
    out = pd.DataFrame(index=idx)
    for col in ("log", "task", "model", "sample_id", "epoch", "error"):
        out[col] = _obj(raw[col] if col in raw.columns else [None] * len(raw), idx)
    args = raw["model_args"] if "model_args" in raw.columns else [None] * len(raw)
    out["adapter"] = _obj([_json_obj(a).get("adapter") for a in args], idx)
    score_prefix = f"score_{SCORER}_"
    taken = set(out.columns)
    for col in raw.columns:
        if col.startswith(score_prefix):
            key = col[len(score_prefix) :]
            out[key] = pd.to_numeric(raw[col], errors="coerce").astype(float)
            taken.add(key)
    for col in raw.columns:
        if col.startswith("metadata_"):
            key = col[len("metadata_") :]
            key = _META_RENAMES.get(key, key)
            out[f"meta_{key}" if key in taken else key] = _obj(raw[col], idx)
    taken = set(out.columns)
    for col in raw.columns:
        if col.startswith("scoremeta_"):
            key = col[len("scoremeta_") :]
            key = _SCORE_META_RENAMES.get(key, key)
            out[f"score_meta_{key}" if key in taken else key] = _obj(raw[col], idx)
    return _derive(out, raw)


def _derive(out: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """Fill trait name, checkpoint, judge, condition and checkpoint identity."""
    n = len(out)

    def col(name: str) -> pd.Series:
        return out[name] if name in out.columns else _obj([None] * n, out.index)

    out["trait_name"] = _obj(
        col("trait_name").where(col("trait_name").notna(), col("_score_trait_name")), out.index
    )
    ckpt = col("checkpoint").where(col("checkpoint").notna(), col("_score_ckpt"))
    out["checkpoint"] = _obj(ckpt.where(ckpt.notna(), BASE), out.index)
    out = out.drop(columns=[c for c in ("_score_trait_name", "_score_ckpt") if c in out.columns])
    if "model_roles" in raw.columns:
        role_judge = _obj([_role_judge(r) for r in raw["model_roles"]], out.index)
        judge = col("judge_model").where(col("judge_model").notna(), role_judge)
        out["judge_model"] = _obj(judge, out.index)
    for key in (*SCORE_KEYS, "coef"):
        out[key] = pd.to_numeric(col(key), errors="coerce").astype(float)
    out[TRAIT_SCORE] = out["trait"]
    for key in ("judge_model", "judge_is_subject", "polarity", "question_id", "condition", "layer"):
        if key not in out.columns:
            out[key] = _obj([None] * n, out.index)
    qid = out["question_id"].where(out["question_id"].notna(), out["sample_id"])
    out["question_id"] = _obj(qid, out.index)
    out["condition"] = _obj(
        [
            c if c is not None else _condition(p, k, lay)
            for c, p, k, lay in zip(
                out["condition"], out["polarity"], out["coef"], out["layer"], strict=True
            )
        ],
        out.index,
    )
    out["epoch"] = pd.to_numeric(out["epoch"], errors="coerce").fillna(1).astype(int)
    out["checkpoint_id"] = _obj(
        [
            checkpoint_identity(m, a, c)
            for m, a, c in zip(out["model"], out["adapter"], out["checkpoint"], strict=True)
        ],
        out.index,
    )
    front = _ID_COLUMNS + ["trait_name", "checkpoint", TRAIT_SCORE, *SCORE_KEYS]
    front = [c for c in front if c in out.columns]
    return out[front + [c for c in out.columns if c not in front]]


def _with_rank(frame: pd.DataFrame, given: list[str]) -> pd.DataFrame:
    """Add ``checkpoint_rank``: the row's checkpoint position in the order its run was given
    (base 0, the task's ``checkpoints`` from 1; NaN when the run gave no order)."""
    order = {BASE: 0, **{alias: i + 1 for i, alias in enumerate(given)}}
    rank = frame["checkpoint"].map(lambda c: order.get(str(c), math.nan)) if given else math.nan
    return frame.assign(checkpoint_rank=pd.to_numeric(rank, errors="coerce"))


def _condition(polarity: Any, coef: float, layer: Any) -> str:
    parts = []
    if _plain(polarity):
        parts.append(str(polarity))
    if coef == coef and coef not in (None, 0.0):
        parts.append(f"coef={coef:g},L={layer}" if layer is not None else f"coef={coef:g}")
    return ",".join(parts) or BASE


@dataclass
class LogSet:
    """The tidy frame of a set of logs and the logs that were skipped."""

    frame: pd.DataFrame
    skipped: list[SkippedLog]
    read: list[str]


def read_logs(paths: Sequence[str | os.PathLike[str]], *, warn: bool = True) -> LogSet:
    """Read logs (files or folders) into a :class:`LogSet`; skip and list the bad ones."""
    skipped: list[SkippedLog] = []
    frames: list[pd.DataFrame] = []
    read: list[str] = []
    for path in find_logs(paths):
        reason, given = _check_header(path)
        if reason is None:
            try:
                raw = _read_with_samples_df(path)
            except Exception:
                try:
                    raw = _read_with_log_reader(path)
                except Exception as e:
                    reason = f"unreadable samples ({type(e).__name__}: {str(e)[:120]})"
        if reason is None and len(raw) == 0:
            reason = "no samples"
        if reason is not None:
            skipped.append(SkippedLog(str(path), reason))
            continue
        frames.append(_with_rank(_tidy(raw), given))
        read.append(str(path))
    frame = pd.concat(frames, ignore_index=True) if frames else _tidy(pd.DataFrame())
    frame.attrs["skipped"] = [str(s) for s in skipped]
    if skipped and warn:
        listing = "; ".join(str(s) for s in skipped)
        warnings.warn(f"skipped {len(skipped)} log(s): {listing}", LogWarning, stacklevel=2)
    return LogSet(frame, skipped, read)


def samples_frame(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Tidy frame of all samples in ``paths`` (files or folders); see the module docstring."""
    return read_logs(paths).frame


def load_scores(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Rows that carry a ``persona_score``: identity, condition and score columns only."""
    frame = samples_frame(paths)
    keys = [c for c in frame.columns if c in SCORE_KEYS or c.startswith("proj_")]
    keys = [k for k in keys if k != "proj_layer"]
    if not keys:
        return frame.iloc[0:0]
    has_score = frame[keys].notna().any(axis=1)
    cols = [
        *_ID_COLUMNS,
        "trait_name",
        "question_id",
        "checkpoint",
        "condition",
        "polarity",
        "coef",
        "layer",
        *keys,
        "judge_model",
        "judge_is_subject",
    ]
    out = frame.loc[has_score, [c for c in dict.fromkeys(cols) if c in frame.columns]]
    out = out.reset_index(drop=True)
    out.attrs["skipped"] = frame.attrs.get("skipped", [])
    return out
