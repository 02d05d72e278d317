"""Noise-aware comparisons: per-id means, paired differences and three-way verdicts.

The resampling unit is the sample id (a question): its epochs are averaged first, so repeated
rollouts of one question never count as independent evidence. A paired difference subtracts the
base's per-id mean from the candidate's per-id mean over the ids both have; the bootstrap
(:mod:`persona.analysis.stats`) then resamples ids.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from persona.analysis.stats import Estimate

Verdict = Literal["pass", "fail", "flaky"]
Direction = Literal["max", "min"]


def id_means(frame: pd.DataFrame, column: str, unit: str = "unit") -> pd.Series:
    """Mean of ``column`` per ``unit`` over epochs (NaN rows dropped; ids with no value dropped)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    return values.groupby(frame[unit], sort=True).mean().dropna()


def paired_means(
    candidate: pd.DataFrame, base: pd.DataFrame, column: str, unit: str = "unit"
) -> pd.DataFrame:
    """Per-id means of both sides (columns ``candidate``, ``base``, ``diff``) over shared ids."""
    joined = pd.concat(
        {"candidate": id_means(candidate, column, unit), "base": id_means(base, column, unit)},
        axis=1,
        join="inner",
    )
    joined["diff"] = joined["candidate"] - joined["base"]
    return joined


def classify(estimate: Estimate, threshold: float, direction: Direction) -> Verdict:
    """``pass``/``fail`` when the interval lies wholly on one side of the threshold, else ``flaky``.

    ``max``: pass when hi <= threshold, fail when lo > threshold.
    ``min``: pass when lo >= threshold, fail when hi < threshold.
    No interval (fewer than two ids) is flaky: the data cannot decide.
    """
    if estimate.ci is None:
        return "flaky"
    lo, hi = estimate.ci
    if direction == "max":
        if hi <= threshold:
            return "pass"
        if lo > threshold:
            return "fail"
    else:
        if lo >= threshold:
            return "pass"
        if hi < threshold:
            return "fail"
    return "flaky"
