"""Small, seeded statistics for reports and gates: bootstrap CIs and correlations.

Every function drops NaN first and returns ``value=None`` with a ``reason`` instead of raising or
warning when the data cannot support the number (too few points, zero variance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import stdtr  # scipy.stats takes ~1.5 s to import; this is enough

MIN_CORR_N = 3
"""Fewest points a correlation is computed on."""

DEFAULT_BOOT = 2000
DEFAULT_LEVEL = 0.95

ArrayLike = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a bootstrap confidence interval."""

    value: float | None
    ci: tuple[float, float] | None
    n: int
    reason: str | None = None

    def columns(self, name: str, value: str = "") -> dict[str, float | None]:
        """Table cells named by :func:`ci_columns`: the value, then the CI bounds."""
        lo, hi = self.ci if self.ci else (None, None)
        return dict(zip(ci_columns(name, value), (self.value, lo, hi), strict=True))


def ci_columns(name: str, value: str = "") -> list[str]:
    """Column names of an estimate in a table: ``value`` (default ``name``), ``name_ci_lo``,
    ``name_ci_hi``."""
    return [value or name, f"{name}_ci_lo", f"{name}_ci_hi"]


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient with its p-value and bootstrap confidence interval."""

    method: str
    r: float | None
    p: float | None
    ci: tuple[float, float] | None
    n: int
    reason: str | None = None


def _clean(x: ArrayLike) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _ci(samples: np.ndarray, level: float) -> tuple[float, float] | None:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def mean_ci(
    x: ArrayLike, *, n_boot: int = DEFAULT_BOOT, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    """Mean of ``x`` (NaN dropped) with a percentile-bootstrap CI; no CI when n < 2."""
    arr = _clean(x)
    n = arr.size
    if n == 0:
        return Estimate(None, None, 0, "no data")
    value = float(arr.mean())
    if n < 2:
        return Estimate(value, None, n, "n < 2: no confidence interval")
    idx = _rng(seed).integers(0, n, size=(n_boot, n))
    return Estimate(value, _ci(arr[idx].mean(axis=1), level), n)


def paired_diff_ci(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Estimate:
    """Mean of ``a - b`` over pairs where both are finite, with a paired bootstrap CI."""
    a_arr = np.asarray(a, dtype=float).ravel()
    b_arr = np.asarray(b, dtype=float).ravel()
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired arrays differ in length: {a_arr.size} vs {b_arr.size}")
    ok = np.isfinite(a_arr) & np.isfinite(b_arr)
    return mean_ci(a_arr[ok] - b_arr[ok], n_boot=n_boot, level=level, seed=seed)


def diff_ci(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Estimate:
    """Difference of means ``mean(a) - mean(b)`` of independent samples, bootstrapped per group.

    ``n`` is the size of the smaller group.
    """
    a_arr, b_arr = _clean(a), _clean(b)
    n = int(min(a_arr.size, b_arr.size))
    if n == 0:
        side = "first" if a_arr.size == 0 else "second"
        return Estimate(None, None, 0, f"no data in the {side} group")
    value = float(a_arr.mean() - b_arr.mean())
    if n < 2:
        return Estimate(value, None, n, "n < 2 in a group: no confidence interval")
    rng = _rng(seed)
    ia = rng.integers(0, a_arr.size, size=(n_boot, a_arr.size))
    ib = rng.integers(0, b_arr.size, size=(n_boot, b_arr.size))
    boots = a_arr[ia].mean(axis=1) - b_arr[ib].mean(axis=1)
    return Estimate(value, _ci(boots, level), n)


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair; NaN for rows with zero variance."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    num = (xc * yc).sum(axis=1)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    out = np.full(num.shape, np.nan)
    ok = den > 1e-12 * np.maximum(1.0, np.abs(num))
    out[ok] = num[ok] / den[ok]
    return np.clip(out, -1.0, 1.0)


def rank_rows(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) along the last axis of a 2-D array."""
    a = np.atleast_2d(np.asarray(a, dtype=float))
    m, n = a.shape
    order = np.argsort(a, axis=1, kind="mergesort")
    sorted_a = np.take_along_axis(a, order, axis=1)
    starts = np.ones((m, n), dtype=bool)
    starts[:, 1:] = sorted_a[:, 1:] != sorted_a[:, :-1]
    group = np.cumsum(starts, axis=1) + (np.arange(m)[:, None] * (n + 1))
    pos = np.broadcast_to(np.arange(1, n + 1, dtype=float), (m, n))
    sums = np.bincount(group.ravel(), weights=pos.ravel(), minlength=m * (n + 1))
    counts = np.bincount(group.ravel(), minlength=m * (n + 1))
    avg = (sums / np.maximum(counts, 1))[group]
    ranks = np.empty_like(avg)
    np.put_along_axis(ranks, order, avg, axis=1)
    return ranks


def _t_pvalue(r: float, n: int) -> float:
    """Two-sided p-value of a correlation under the t approximation (as scipy computes it)."""
    if abs(r) >= 1.0:
        return 0.0
    df = n - 2
    t = abs(r) * math.sqrt(df / ((1.0 - r) * (1.0 + r)))
    return float(2.0 * stdtr(df, -t))


def _degenerate(x: np.ndarray) -> bool:
    return bool(np.ptp(x) <= 1e-12 * max(1.0, float(np.abs(x).max())))


def correlation(
    x: ArrayLike,
    y: ArrayLike,
    method: Literal["pearson", "spearman"] = "pearson",
    *,
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Correlation:
    """Pearson or Spearman correlation over pairs where both are finite.

    The p-value is the two-sided t test (scipy's ``pearsonr``/``spearmanr`` values); the CI is a
    percentile bootstrap over pairs (resamples with zero variance are dropped).
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"unknown correlation method {method!r}")
    x_arr = np.asarray(x, dtype=float).ravel()
    y_arr = np.asarray(y, dtype=float).ravel()
    if x_arr.shape != y_arr.shape:
        raise ValueError(f"x and y differ in length: {x_arr.size} vs {y_arr.size}")
    ok = np.isfinite(x_arr) & np.isfinite(y_arr)
    x_arr, y_arr = x_arr[ok], y_arr[ok]
    n = int(x_arr.size)
    if n < MIN_CORR_N:
        return Correlation(method, None, None, None, n, f"n/a (needs >= {MIN_CORR_N})")
    for name, arr in (("x", x_arr), ("y", y_arr)):
        if _degenerate(arr):
            return Correlation(method, None, None, None, n, f"zero variance in {name}")
    if method == "spearman":
        x_arr, y_arr = rank_rows(x_arr)[0], rank_rows(y_arr)[0]
    r = float(_rowwise_pearson(x_arr[None, :], y_arr[None, :])[0])
    if not math.isfinite(r):
        return Correlation(method, None, None, None, n, "zero variance")
    p = _t_pvalue(r, n)
    idx = _rng(seed).integers(0, n, size=(n_boot, n))
    bx, by = x_arr[idx], y_arr[idx]
    if method == "spearman":  # ranks of ranks are ranks: rank each resample again
        bx, by = rank_rows(bx), rank_rows(by)
    ci = _ci(_rowwise_pearson(bx, by), level) if n_boot > 0 else None
    return Correlation(method, r, p, ci, n)


def fit_line(x: ArrayLike, y: ArrayLike) -> tuple[float, float] | None:
    """Least-squares ``(slope, intercept)`` over finite pairs; None when it is undefined."""
    x_arr = np.asarray(x, dtype=float).ravel()
    y_arr = np.asarray(y, dtype=float).ravel()
    ok = np.isfinite(x_arr) & np.isfinite(y_arr)
    x_arr, y_arr = x_arr[ok], y_arr[ok]
    if x_arr.size < 2 or _degenerate(x_arr):
        return None
    slope, intercept = np.polyfit(x_arr, y_arr, 1)
    return float(slope), float(intercept)
