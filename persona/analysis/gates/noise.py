"""Three-way verdicts: an interval wholly on one side of a threshold decides, else it is flaky.

The estimates come from :mod:`persona.analysis.compare` (per-question means, paired differences,
bootstrap CIs over questions).
"""

from __future__ import annotations

from typing import Literal

from persona.analysis.stats import Estimate

Verdict = Literal["pass", "fail", "flaky"]
Direction = Literal["max", "min", "abs"]


def classify(estimate: Estimate, threshold: float, direction: Direction) -> Verdict:
    """``pass``/``fail`` when the interval lies wholly on one side of the threshold, else ``flaky``.

    ``max``: pass when hi <= threshold, fail when lo > threshold.
    ``min``: pass when lo >= threshold, fail when hi < threshold.
    ``abs`` (two-sided): pass when the interval lies within [-threshold, threshold], fail when it
    lies wholly outside it (lo > threshold or hi < -threshold).
    No interval (fewer than two ids) is flaky: the data cannot decide.
    """
    if estimate.ci is None:
        return "flaky"
    lo, hi = estimate.ci
    if direction == "abs":
        if -threshold <= lo and hi <= threshold:
            return "pass"
        if lo > threshold or hi < -threshold:
            return "fail"
    elif direction == "max":
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
