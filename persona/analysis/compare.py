"""One comparison layer for reports and gates: canonical rows, the base, paired differences.

``persona report`` and ``persona gate`` (and the pytest plugin) compare a candidate checkpoint with
its base through these functions only, so both read the same rows and compute the same numbers.
One rule for each step:

- **Canonical rows** (:func:`canonical`): the unsteered rows without a persona system prompt: the
  polarity is blank (missing or an empty string: both get no system prompt), the coefficient is
  missing or 0 and steering was not active. Columns: ``trait_name``, ``checkpoint`` (the identity),
  ``checkpoint_rank``, ``model`` (the model the log ran on), ``log``, ``task``, ``unit`` (the
  pairing id, ``question_id``), ``epoch``, ``score`` (observed behaviour: the judged trait score,
  or the likelihood judge's score where the run recorded that as its behaviour measure, with
  ``judge_model`` then naming it and its unit; docs/judges.md), ``measure`` (how ``score`` was
  measured: ``judge`` or ``likelihood``, see :data:`MEASURE_UNITS`), ``coherence``,
  ``proj_prompt_last``, ``proj_response``, ``question``, ``judge_model``, ``judge_is_subject``,
  ``vector``, ``error``.
- **The base** (:func:`resolve_base`): a named base must be a model or checkpoint of the logs;
  without one, every log except those wholly of named candidates must come from one model. Logs
  of another model are refused (``others="refuse"``: a release gate never compares against the
  wrong base) or compared as checkpoints with a warning (``others="compare"``: a report explores).
- **One run per side** (:func:`pick_run`): runs of the same checkpoint are not pooled (per-sample
  seeds repeat across runs); the run with most rows is used (the later one on ties).
- **The base rows of a candidate** (:func:`base_rows`): from the candidate's own log when it holds
  base rows (``checkpoint_shift``), else from base runs of the same task, else any base run.
- **Comparable sides** (:func:`vector_mismatch`, :func:`measure_mismatch`): a shift needs the
  same vector on both sides, a behaviour change the same measure (0-100 judge points and
  nats/token are never subtracted from each other).
- **The difference** (:func:`difference`): per-question means (epochs averaged, so rollouts of one
  question never count as independent), candidate minus base over the questions both have, with a
  percentile-bootstrap CI over questions (:mod:`persona.analysis.stats`). With no question in
  common it is the unpaired difference of means, labelled ``unpaired``.
- **Checkpoint order** (:func:`checkpoint_order`): as given: the base first, then by the log
  they were read from and the order their run was given them (``checkpoint_rank``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from persona.analysis import stats
from persona.analysis.judge import JUDGE_UNIT, LIKELIHOOD_KEY, LIKELIHOOD_UNIT, LIKELIHOOD_WARNING
from persona.errors import PersonaError

VALUE_COLUMNS = ("score", "coherence", "proj_prompt_last", "proj_response")
_OPTIONAL = ("task", "question", "judge_model", "judge_is_subject", "vector", "error")
_OPTIONAL += (LIKELIHOOD_WARNING,)
_REQUIRED = {"trait_name", "checkpoint_id", "model", "log", "epoch", "trait"}

JUDGE_MEASURE = "judge"  # the 0-100 LLM judge; the other measure is LIKELIHOOD_KEY
MEASURE_UNITS = {JUDGE_MEASURE: JUDGE_UNIT, LIKELIHOOD_KEY: LIKELIHOOD_UNIT}
"""The behaviour measures a ``score`` can hold and their units (docs/judges.md)."""

Pairing = Literal["paired", "unpaired", "none"]


def blank(series: pd.Series) -> pd.Series:
    """True where a text column is missing or only whitespace (an empty polarity is none)."""
    return series.isna() | (series.astype(str).str.strip() == "")


def unsteered(frame: pd.DataFrame) -> pd.Series:
    """Rows without steering: coefficient missing or 0, and steering not recorded as active."""
    coef = pd.to_numeric(frame["coef"], errors="coerce") if "coef" in frame else None
    mask = pd.Series(True, index=frame.index) if coef is None else coef.isna() | (coef == 0.0)
    if "steering_active" in frame:
        mask &= frame["steering_active"].map(lambda v: v is not True)
    return mask


def no_system_prompt(frame: pd.DataFrame) -> pd.Series:
    """Rows without a persona system prompt (blank polarity)."""
    if "polarity" not in frame:
        return pd.Series(True, index=frame.index)
    return blank(frame["polarity"])


def identities(frame: pd.DataFrame) -> pd.DataFrame:
    """Every row's ``checkpoint``, ``model`` and ``log`` (what :func:`resolve_base` reads), for
    callers that compare more than the canonical rows (a report's steering and monitoring)."""
    return pd.DataFrame(
        {
            "checkpoint": frame["checkpoint_id"].astype(str),
            "model": frame["model"].astype(str),
            "log": frame["log"].astype(str),
        }
    )


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The unsteered rows without a system prompt of a ``samples_frame``, in canonical columns."""
    missing = _REQUIRED - set(frame.columns)
    if missing:
        raise PersonaError(
            f"logs lack the persona columns {', '.join(sorted(missing))}; "
            "were they written by the persona tasks (persona_score scorer)?",
            exit_code=2,
        )
    rows = frame[unsteered(frame) & no_system_prompt(frame)]
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
    for col in (*VALUE_COLUMNS[1:], "checkpoint_rank"):
        out[col] = pd.to_numeric(rows[col], errors="coerce") if col in rows else np.nan
    for col in _OPTIONAL:
        out[col] = rows[col] if col in rows else None
    out["measure"] = np.where(out["score"].notna(), JUDGE_MEASURE, None)
    if "behaviour_measure" in rows and LIKELIHOOD_KEY in rows:
        by_likelihood = (rows["behaviour_measure"] == LIKELIHOOD_KEY).to_numpy()
        out.loc[by_likelihood, "score"] = pd.to_numeric(rows[LIKELIHOOD_KEY], errors="coerce")[
            by_likelihood
        ].to_numpy()
        out.loc[by_likelihood, "measure"] = LIKELIHOOD_KEY
        judge = rows.get("likelihood_model", pd.Series(None, index=rows.index)).astype(str)
        out.loc[by_likelihood, "judge_model"] = [
            f"likelihood judge {j} (nats/token)" for j in judge[by_likelihood]
        ]
        out.loc[by_likelihood, "judge_is_subject"] = False
    return out.reset_index(drop=True)


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


def _listing(by_model: pd.Series) -> str:
    return "; ".join(f"{m}: {', '.join(map(str, logs))}" for m, logs in by_model.items())


def resolve_base(
    rows: pd.DataFrame,
    base: str | None,
    named: Sequence[str] = (),
    *,
    others: Literal["refuse", "compare"] = "refuse",
) -> tuple[str, list[str]]:
    """The base checkpoint of ``rows`` (canonical, or :func:`identities`) and any warnings.

    A log run on another model is always accepted when all its rows belong to a candidate named
    in ``named`` (a fully fine-tuned model evaluated on its own).
    """
    present = checkpoint_order(rows)
    named_ids = {m for w in named if (m := match_checkpoint(present, w)) is not None}
    own = rows.groupby("log")["checkpoint"].agg(lambda c: set(c) <= named_ids)
    rest = rows[~rows["log"].isin(own[own].index)]
    by_model = rest.groupby("model", sort=True)["log"].unique()
    if base is None:
        if len(by_model) == 1:
            return str(by_model.index[0]), []
        found = _listing(by_model) or "no log besides the named candidates'"
        raise PersonaError(
            f"the logs come from different base models ({found}); pass --base MODEL (or set "
            "'base' in the gate config) to name the one to compare against",
            exit_code=2,
        )
    foreign = by_model[by_model.index != base]
    if len(foreign) and others == "refuse":
        listing = "; ".join(f"{', '.join(map(str, g))} (model {m})" for m, g in foreign.items())
        raise PersonaError(f"logs from another base than {base!r}: {listing}", exit_code=2)
    if not rest.empty and base not in set(by_model.index) | set(present):
        raise PersonaError(
            f"--base {base!r} is not in the logs; their models are: {', '.join(by_model.index)}",
            exit_code=2,
        )
    warnings = []
    if len(foreign):
        warnings.append(
            f"logs of other models ({', '.join(foreign.index)}) are compared against base {base} "
            "as checkpoints"
        )
    return base, warnings


def checkpoint_order(rows: pd.DataFrame, base: str | None = None) -> list[str]:
    """Checkpoint identities as given: ``base`` first, then by the log they were first read from
    and their position in the order their run was given them (first appearance otherwise)."""
    if rows.empty:
        return [] if base is None else [base]
    first = rows.drop_duplicates("checkpoint")
    log_pos = {log: i for i, log in enumerate(dict.fromkeys(rows["log"]))}
    rank = first["checkpoint_rank"] if "checkpoint_rank" in first else [np.nan] * len(first)
    keys = {
        str(ck): (log_pos[log], r if r == r else np.inf, i)
        for i, (ck, log, r) in enumerate(zip(first["checkpoint"], first["log"], rank, strict=True))
    }
    order = sorted(keys, key=keys.__getitem__)
    if base is None:
        return order
    return [base] + [c for c in order if c != base]


def pick_run(rows: pd.DataFrame, prefer: Iterable[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Rows of one log: among the preferred logs if any is present, the one with most rows (the
    later one on ties); also the names of the logs left out."""
    logs = list(dict.fromkeys(rows["log"]))
    if len(logs) <= 1:
        return rows, []
    preferred = set(prefer)
    pool = [log for log in logs if log in preferred] or logs
    counts = rows["log"].value_counts()
    chosen = max(pool, key=lambda log: (counts[log], logs.index(log)))
    return rows[rows["log"] == chosen], [log for log in logs if log != chosen]


def base_rows(rows: pd.DataFrame, base: str, candidate: pd.DataFrame) -> pd.DataFrame:
    """The base rows ``candidate`` is compared with: one base run, from the candidate's own log
    if it has base rows, else of the same task, else any."""
    pool = rows[rows["checkpoint"] == base]
    for key in ("log", "task"):
        same = pool[pool[key].isin(set(candidate[key].dropna()))]
        if not same.empty:
            return pick_run(same)[0]
    return pick_run(pool)[0]


@dataclass
class Selection:
    """The rows of one comparison: a candidate and its base, for one trait."""

    trait: str
    checkpoint: str
    candidate: pd.DataFrame
    base: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def select(rows: pd.DataFrame, trait: str, checkpoint: str, base: str) -> Selection:
    """Candidate and base rows of ``trait`` (one run each); names ignored runs and errors."""
    t_rows = rows[rows["trait_name"] == trait]
    if t_rows.empty:
        known = sorted(str(t) for t in rows["trait_name"].dropna().unique())
        raise PersonaError(
            f"no samples for trait '{trait}' in the logs (found: {', '.join(known) or 'none'})",
            exit_code=2,
        )
    cand = t_rows[t_rows["checkpoint"] == checkpoint]
    if cand.empty:
        raise PersonaError(
            f"no samples for trait '{trait}' of checkpoint '{checkpoint}' in the logs", exit_code=2
        )
    warnings: list[str] = []
    cand, ignored = pick_run(cand)
    if ignored:
        warnings.append(
            f"{checkpoint}/{trait}: used {cand['log'].iloc[0]}; ignored other run(s) "
            f"{', '.join(ignored)}"
        )
    errors = int((cand["error"].fillna("").astype(str) != "").sum())
    if errors:
        warnings.append(f"{checkpoint}/{trait}: {errors} sample(s) errored and carry no scores")
    return Selection(trait, checkpoint, cand, base_rows(t_rows, base, cand), warnings)


def measure_warnings(rows: pd.DataFrame) -> list[str]:
    """The distinct warnings of traits whose likelihood judge is marked unsupported, as their
    likelihood-judged rows recorded them (docs/judges.md); reports and gates show them."""
    return sorted(distinct(rows, LIKELIHOOD_WARNING))


def distinct(rows: pd.DataFrame, column: str) -> set[str]:
    """The distinct non-missing values of ``column`` as text (judges, vector files)."""
    return {str(v) for v in rows[column].dropna().unique()} if column in rows else set()


def _differs(sel: Selection, column: str) -> tuple[set[str], set[str]] | None:
    """The candidate's and the base's values of ``column`` when both have some and they differ."""
    a, b = distinct(sel.candidate, column), distinct(sel.base, column)
    return (a, b) if a and b and a != b else None


def vector_mismatch(sel: Selection) -> str | None:
    """Why the candidate's shift is not comparable with the base (other vector), or None."""
    if (sides := _differs(sel, "vector")) is None:
        return None
    a, b = sides
    return (
        f"trait '{sel.trait}': checkpoint '{sel.checkpoint}' was projected on "
        f"{', '.join(sorted(a))} but the base on {', '.join(sorted(b))}; its shift is not "
        "comparable (it needs the base model's vector on both sides)"
    )


def measure_text(measures: set[str]) -> str:
    """How behaviour was measured, for people: ``likelihood judge (nats/token)``; several joined."""
    names = {JUDGE_MEASURE: "0-100 judge", LIKELIHOOD_KEY: "likelihood judge"}
    return " and ".join(
        f"{names.get(m, m)} ({MEASURE_UNITS.get(m, '?')})" for m in sorted(measures)
    )


def measure_mismatch(sel: Selection) -> str | None:
    """Why the candidate's behaviour change is not comparable with the base (measured on
    another scale), or None."""
    if (sides := _differs(sel, "measure")) is None:
        return None
    a, b = sides
    return (
        f"trait '{sel.trait}': checkpoint '{sel.checkpoint}' behaviour was measured by the "
        f"{measure_text(a)} but the base's by the {measure_text(b)}; its behaviour change is not "
        "comparable (score both sides with the same judge)"
    )


def unit_means(rows: pd.DataFrame, column: str, unit: str = "unit") -> pd.Series:
    """Mean of ``column`` per question over epochs (questions with no value dropped)."""
    if column not in rows:
        return pd.Series(dtype=float)
    values = pd.to_numeric(rows[column], errors="coerce")
    return values.groupby(rows[unit], sort=True).mean().dropna()


def paired_means(candidate: pd.DataFrame, base: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per-question means of both sides (``candidate``, ``base``, ``diff``) over shared ids."""
    joined = pd.concat(
        {"candidate": unit_means(candidate, column), "base": unit_means(base, column)},
        axis=1,
        join="inner",
    )
    joined["diff"] = joined["candidate"] - joined["base"]
    return joined


@dataclass(frozen=True)
class Difference:
    """Candidate minus base for one column: the estimate, how it was paired, the per-question
    differences (candidate minus the base mean when unpaired) and the candidate questions the
    base lacks."""

    estimate: stats.Estimate
    pairing: Pairing
    per_unit: pd.Series
    unmatched: int


def difference(
    candidate: pd.DataFrame,
    base: pd.DataFrame,
    column: str,
    *,
    n_boot: int = stats.DEFAULT_BOOT,
    level: float = stats.DEFAULT_LEVEL,
    seed: int = 0,
) -> Difference:
    """Mean of ``column`` under the candidate minus under the base (see the module docstring)."""
    boot = {"n_boot": n_boot, "level": level, "seed": seed}
    pairs = paired_means(candidate, base, column)
    cand = unit_means(candidate, column)
    if len(pairs):
        est = stats.mean_ci(pairs["diff"].to_numpy(), **boot)
        return Difference(est, "paired", pairs["diff"], len(cand) - len(pairs))
    base_means = unit_means(base, column)
    est = stats.diff_ci(cand.to_numpy(), base_means.to_numpy(), **boot)
    if est.n == 0:
        return Difference(est, "none", pd.Series(dtype=float), len(cand))
    return Difference(est, "unpaired", cand - base_means.mean(), len(cand))
