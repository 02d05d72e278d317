"""Metrics over ``persona_score`` dicts: cross-key correlations and checkpoint differences.

Both drop NaN values per key; a correlation with fewer than 3 finite pairs or zero variance is
NaN (never an exception or a numpy warning).
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


@metric
def correlations(
    x: str = "trait", ys: Sequence[str] = ("proj_response", "proj_prompt_last")
) -> Metric:
    """Pearson and Spearman r of ``x`` against each of ``ys`` (``pearson_<x>_<y>``, ...)."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        xs = [_value(s, x) for s in scores]
        out: dict[str, float] = {}
        for y in ys:
            yv = [_value(s, y) for s in scores]
            for method in ("pearson", "spearman"):
                r = correlation(xs, yv, method, n_boot=0).r  # type: ignore[arg-type]
                out[f"{method}_{x}_{y}"] = math.nan if r is None else r
        return out

    return compute


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


@metric
def checkpoint_deltas(
    keys: Sequence[str] = ("proj_prompt_last", "proj_response", "trait"),
) -> Metric:
    """Per checkpoint: mean of each key minus the base's (``shift_*`` for projections).

    ``shift_prompt_last_<ckpt>`` is the paper's fine-tuning shift; ``shift_response_<ckpt>`` its
    response-projection variant; ``trait_delta_<ckpt>`` the judged trait difference.
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
                out[f"{name}_{_slug(ckpt)}"] = delta
        return out

    return compute
