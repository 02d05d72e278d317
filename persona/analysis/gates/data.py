"""From :func:`persona.analysis.logs.samples_frame` frames to the rows a gate compares.

Canonical columns: ``trait_name``, ``checkpoint`` (the checkpoint identity), ``model`` (the log's
model string, i.e. the base the task ran on), ``log``, ``unit`` (the pairing id: ``question_id``),
``epoch``, ``score`` (judged trait score), ``coherence``, ``proj_prompt_last``, ``proj_response``,
``question``, ``judge_model``, ``vector``, ``error``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from persona.errors import PersonaError

VALUE_COLUMNS = ("score", "coherence", "proj_prompt_last", "proj_response")
_OPTIONAL = ("question", "judge_model", "judge_is_subject", "vector", "error")


def read_frame(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read logs (files or folders) with :mod:`persona.analysis.logs`; unusable logs are errors."""
    from persona.analysis.logs import find_logs, read_logs

    if not paths:
        raise PersonaError("no logs given", exit_code=2)
    missing = [str(p) for p in paths if not os.path.exists(p)]
    if missing:
        raise PersonaError(f"log path(s) not found: {', '.join(missing)}", exit_code=2)
    if not find_logs(paths):
        raise PersonaError(
            f"no .eval/.json logs in {', '.join(str(p) for p in paths)}", exit_code=2
        )
    logset = read_logs(paths, warn=False)
    if logset.skipped:
        listing = "; ".join(str(s) for s in logset.skipped)
        raise PersonaError(f"unusable log(s): {listing}", exit_code=2)
    return logset.frame


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Unsteered, non-extraction rows of a ``samples_frame`` in the canonical columns."""
    need = {"trait_name", "checkpoint_id", "model", "log", "epoch", "trait"}
    missing = need - set(frame.columns)
    if missing:
        raise PersonaError(
            f"logs lack the persona columns {', '.join(sorted(missing))}; "
            "were they written by the persona tasks (persona_score scorer)?",
            exit_code=2,
        )
    rows = frame
    if "coef" in rows:
        coef = pd.to_numeric(rows["coef"], errors="coerce")
        rows = rows[coef.isna() | (coef == 0.0)]
    if "steering_active" in rows:
        rows = rows[rows["steering_active"].map(lambda v: v is not True)]
    if "polarity" in rows:
        rows = rows[rows["polarity"].isna()]
    unit = rows["question_id"] if "question_id" in rows else rows["sample_id"]
    out = pd.DataFrame(
        {
            "trait_name": rows["trait_name"].astype(object),
            "checkpoint": rows["checkpoint_id"].astype(str),
            "model": rows["model"].astype(str),
            "log": rows["log"].astype(str),
            "unit": unit.astype(str),
            "epoch": pd.to_numeric(rows["epoch"], errors="coerce"),
            "score": pd.to_numeric(rows["trait"], errors="coerce"),
        },
        index=rows.index,
    )
    for col in VALUE_COLUMNS[1:]:
        out[col] = pd.to_numeric(rows[col], errors="coerce") if col in rows else np.nan
    for col in _OPTIONAL:
        out[col] = rows[col] if col in rows else None
    return out.reset_index(drop=True)


def resolve_base(frame: pd.DataFrame, base: str | None, explicit: Sequence[str] = ()) -> str:
    """The base model; every log must have been run on it (else exit 2).

    A log run on another model is accepted only when all its rows belong to a candidate named
    explicitly in ``explicit`` (a fully fine-tuned model evaluated on its own).
    """
    present = list(dict.fromkeys(frame["checkpoint"]))
    named = {m for w in explicit if (m := match_checkpoint(present, w)) is not None}
    own = frame.groupby("log")["checkpoint"].agg(lambda c: set(c) <= named)
    rest = frame[~frame["log"].isin(own[own].index)]
    by_model = rest.groupby("model")["log"].unique()
    if base is None:
        if len(by_model) != 1:
            listing = "; ".join(f"{m}: {', '.join(map(str, logs))}" for m, logs in by_model.items())
            raise PersonaError(
                f"cannot tell the base model ({listing or 'no base logs'}); set 'base' in the "
                "gate config or pass --base",
                exit_code=2,
            )
        return str(by_model.index[0])
    other = {m: logs for m, logs in by_model.items() if m != base}
    if other:
        listing = "; ".join(f"{', '.join(map(str, logs))} (model {m})" for m, logs in other.items())
        raise PersonaError(f"logs from another base than {base!r}: {listing}", exit_code=2)
    return base


@dataclass
class Selection:
    """The rows one gate compares: a candidate and its base, for one trait."""

    trait: str
    checkpoint: str
    candidate: pd.DataFrame
    base: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def _pick_log(rows: pd.DataFrame, prefer: Iterable[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Rows of one log: a preferred log if present, else the one with most rows (latest on ties)."""
    logs = list(dict.fromkeys(rows["log"]))
    if len(logs) <= 1:
        return rows, []
    preferred = [log for log in logs if log in set(prefer)]
    pool = preferred or logs
    counts = rows["log"].value_counts()
    chosen = max(pool, key=lambda log: (counts[log], logs.index(log)))
    ignored = [log for log in logs if log != chosen]
    return rows[rows["log"] == chosen], ignored


def select(frame: pd.DataFrame, trait: str, checkpoint: str, base: str) -> Selection:
    """Candidate and base rows of ``trait``, each from one log (the candidate's, if it has both).

    Several runs of the same checkpoint are not pooled (per-sample seeds repeat across runs):
    the largest run is used and the others are named in the warnings.
    """
    rows = frame[frame["trait_name"] == trait]
    if rows.empty:
        known = sorted(str(t) for t in frame["trait_name"].dropna().unique())
        raise PersonaError(
            f"no samples for trait '{trait}' in the logs (found: {', '.join(known) or 'none'})",
            exit_code=2,
        )
    warnings: list[str] = []
    cand = rows[rows["checkpoint"] == checkpoint]
    if cand.empty:
        raise PersonaError(
            f"no samples for trait '{trait}' of checkpoint '{checkpoint}' in the logs", exit_code=2
        )
    cand, ignored = _pick_log(cand)
    if ignored:
        warnings.append(
            f"{checkpoint}/{trait}: used {cand['log'].iloc[0]}; ignored other run(s) "
            f"{', '.join(ignored)}"
        )
    base_rows, _ = _pick_log(rows[rows["checkpoint"] == base], prefer=cand["log"].unique())
    _check_same_judge(cand, base_rows, trait, checkpoint)
    errors = int((cand["error"].fillna("").astype(str) != "").sum())
    if errors:
        warnings.append(f"{checkpoint}/{trait}: {errors} sample(s) errored and carry no scores")
    return Selection(trait, checkpoint, cand, base_rows, warnings)


def _values(rows: pd.DataFrame, col: str) -> set[str]:
    return {str(v) for v in rows[col].dropna().unique()} if col in rows else set()


def _check_same_judge(cand: pd.DataFrame, base: pd.DataFrame, trait: str, ckpt: str) -> None:
    a, b = _values(cand, "judge_model"), _values(base, "judge_model")
    if a and b and a != b:
        raise PersonaError(
            f"trait '{trait}': checkpoint '{ckpt}' was judged by {', '.join(sorted(a))} but the "
            f"base by {', '.join(sorted(b))}; scores are not comparable",
            exit_code=2,
        )


def check_same_vector(sel: Selection) -> None:
    """Projections of candidate and base must use the same persona vector (for shift gates)."""
    a, b = _values(sel.candidate, "vector"), _values(sel.base, "vector")
    if a and b and a != b:
        raise PersonaError(
            f"trait '{sel.trait}': checkpoint '{sel.checkpoint}' was projected on "
            f"{', '.join(sorted(a))} but the base on {', '.join(sorted(b))}; the shift needs the "
            "base model's vector on both sides",
            exit_code=2,
        )


def candidates(frame: pd.DataFrame, base: str, wanted: Sequence[str] | None = None) -> list[str]:
    """Checkpoint identities to gate: all but the base, or those named in ``wanted``."""
    present = list(dict.fromkeys(c for c in frame["checkpoint"] if c != base))
    if wanted:
        out = []
        for w in wanted:
            match = match_checkpoint(present, w)
            if match is None:
                raise PersonaError(
                    f"candidate {w!r} not found in the logs; checkpoints: "
                    f"{', '.join(present) or 'none besides the base'}",
                    exit_code=2,
                )
            out.append(match)
        return list(dict.fromkeys(out))
    if not present:
        raise PersonaError(
            f"the logs hold only the base {base!r}; no candidate checkpoint to gate", exit_code=2
        )
    return present


def match_checkpoint(present: Sequence[str], wanted: str) -> str | None:
    """Exact identity, else the unique identity with the same last path part (``+adapter`` too).

    Lets a user name an adapter by its directory (``ckpt/strong``) or by its alias (``strong``).
    """
    if wanted in present:
        return wanted

    def tail(s: str) -> str:
        return os.path.basename(s.split("+")[-1].rstrip("/"))

    hits = [p for p in present if tail(p) == tail(wanted)]
    return hits[0] if len(hits) == 1 else None
