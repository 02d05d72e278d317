"""Metrics over ``persona_score`` dicts: cross-key correlations and checkpoint differences.

Both drop NaN values per key and show only what was measured: a key absent from the scores, a
correlation with fewer than 3 finite pairs or zero variance, or a difference with no finite value
on either side is left out (never a NaN metric, an exception or a numpy warning).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from inspect_ai.scorer import Metric, SampleScore, metric

from persona.analysis.stats import correlation

BASE = "base"


def _value(score: SampleScore, key: str) -> float:
    value = score.score.value
    if not isinstance(value, dict):
        return math.nan
    v = value.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


BEHAVIOUR_KEYS = ("likelihood", "trait")  # the behaviour measures a score may carry


def _present(scores: list[SampleScore], key: str) -> bool:
    return any(math.isfinite(_value(s, key)) for s in scores)


@metric
def behaviour() -> Metric:
    """The headline: the mean of the behaviour measure in use (``likelihood`` or ``trait``, the
    first one measured), named by its key. Inspect shows a scorer's plain metrics first, so this
    leads the summary and the ``inspect view`` header; nothing when no measure ran."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        for key in (k for k in BEHAVIOUR_KEYS if _present(scores, k)):
            return {key: _mean([_value(s, key) for s in scores])}
        return {}

    return compute


@metric
def correlations(
    xs: Sequence[str] = BEHAVIOUR_KEYS, ys: Sequence[str] = ("proj_response", "proj_prompt_last")
) -> Metric:
    """Pearson and Spearman r of each measured behaviour key in ``xs`` against each of ``ys``
    (``pearson_<x>_<y>``, ...); undefined correlations are left out."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        out: dict[str, float] = {}
        for x in (k for k in xs if _present(scores, k)):
            xv = [_value(s, x) for s in scores]
            for y in ys:
                yv = [_value(s, y) for s in scores]
                for method in ("pearson", "spearman"):
                    r = correlation(xv, yv, method, n_boot=0).r  # type: ignore[arg-type]
                    if r is not None and math.isfinite(r):
                        out[f"{method}_{x}_{y}"] = r
        return out

    return compute


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


@metric
def checkpoint_deltas(
    keys: Sequence[str] = ("likelihood", "trait", "proj_prompt_last", "proj_response"),
) -> Metric:
    """Per checkpoint: mean of each key minus the base's (``shift_*`` for projections).

    ``shift_prompt_last_<ckpt>`` is the paper's fine-tuning shift; ``shift_response_<ckpt>`` its
    response-projection variant; ``trait_delta_<ckpt>`` the judged trait difference (0-100) and
    ``likelihood_delta_<ckpt>`` the likelihood judge's (nats/token). Differences that could not
    be computed (a key not measured) are left out.
    """

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        groups: dict[str, list[SampleScore]] = {}
        for s in scores:
            ckpt = str((s.sample_metadata or {}).get("checkpoint") or BASE)
            groups.setdefault(ckpt, []).append(s)
        base = groups.get(BASE, [])
        out: dict[str, float] = {}
        for ckpt, group in groups.items():
            if ckpt == BASE:
                continue
            for key in keys:
                delta = _mean([_value(s, key) for s in group]) - _mean(
                    [_value(s, key) for s in base]
                )
                name = f"shift_{key[5:]}" if key.startswith("proj_") else f"{key}_delta"
                if math.isfinite(delta):
                    out[f"{name}_{_slug(ckpt)}"] = delta
        return out

    return compute
