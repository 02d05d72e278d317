"""Small, seeded statistics for reports and gates: CIs of means, a trend test and correlations.

Every function drops NaN first and returns ``value=None`` with a ``reason`` instead of raising or
warning when the data cannot support the number (too few points, zero variance).

Small samples are the rule here (10-20 questions, 4-5 checkpoints), so intervals of a mean are
t or BCa intervals, not percentile ones (which under-cover at n = 10), and below
:data:`MIN_INFERENCE_N` points a correlation is descriptive only (no CI, no p-value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

# scipy.stats takes ~1.5 s to import; these are enough
from scipy.special import ndtr, ndtri, stdtr, stdtrit

MIN_CORR_N = 3
"""Fewest points a correlation is computed on."""

MIN_INFERENCE_N = 6
"""Fewest points (clusters, for a clustered correlation) a correlation gets a CI and p-value on:
a bootstrap over 4-5 points holds two distinct points in a third of its resamples (r = +-1)."""

DEFAULT_BOOT = 2000
DEFAULT_LEVEL = 0.95

ArrayLike = Sequence[float] | np.ndarray

IntervalMethod = Literal["bca", "t", "percentile"]
"""How a mean's CI is made: "bca" (bias-corrected and accelerated bootstrap, expanded for small n),
"t" (Student t) or "percentile" (plain percentile bootstrap; under-covers at small n)."""

_INTERVAL_METHODS = ("bca", "t", "percentile")


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval and, for a mean, the two-sided one-sample t
    test p-value of a true mean of 0 (``p``; None where not computed)."""

    value: float | None
    ci: tuple[float, float] | None
    n: int
    reason: str | None = None
    p: float | None = None

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
    """A correlation coefficient with its p-value and bootstrap confidence interval; ``n`` counts
    points, ``n_clusters`` the clusters a clustered bootstrap resampled (None when unclustered)."""

    method: str
    r: float | None
    p: float | None
    ci: tuple[float, float] | None
    n: int
    reason: str | None = None
    n_clusters: int | None = None


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


def _resample_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """How often each of ``n`` units is drawn in each of ``n_boot`` resamples with replacement,
    [n_boot, n]: a statistic that sums over units is then one matrix product for all resamples."""
    draws = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n)


def _check_method(method: str, allowed: Sequence[str]) -> None:
    """Raise on a method name outside ``allowed`` (a typo must not silently change an interval)."""
    if method not in allowed:
        raise ValueError(f"unknown interval method {method!r} (one of {', '.join(allowed)})")


def _expanded_z(n: int, level: float) -> np.ndarray:
    """Lower and upper normal scores of a bootstrap interval, widened for small n: ``sqrt(n/(n-1))``
    times the t quantiles with n - 1 df (Hesterberg 2015, "expanded" bootstrap). Both factors undo
    the plug-in bootstrap's narrowness, which leaves a plain BCa interval at ~0.90 coverage for the
    mean of 10 normal draws."""
    alpha = (1.0 - level) / 2.0
    return math.sqrt(n / (n - 1)) * stdtrit(n - 1, np.array([alpha, 1.0 - alpha]))


def _row_quantiles(boots: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles ``q`` [m, j] of each row of ``boots`` [m, B] (NaN ignored; linear interpolation,
    as ``np.quantile``); NaN where q is NaN or a row has no finite value."""
    if boots.shape[1] == 0:
        return np.full(q.shape, np.nan)
    s = np.sort(boots, axis=1)  # NaN sort last
    last = np.isfinite(s).sum(axis=1, keepdims=True) - 1
    pos = np.where(np.isfinite(q) & (last >= 0), q * np.maximum(last, 0), np.nan)
    lo = np.clip(np.floor(np.nan_to_num(pos)).astype(int), 0, np.maximum(last, 0))
    hi = np.minimum(lo + 1, np.maximum(last, 0))
    frac = np.nan_to_num(pos) - lo
    out = np.take_along_axis(s, lo, 1) * (1 - frac) + np.take_along_axis(s, hi, 1) * frac
    return np.where(np.isnan(pos), np.nan, out)


def _bca_terms(
    boots: np.ndarray, value: np.ndarray, jack: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: bias correction ``z0`` (normal score of the share of resamples below the estimate;
    NaN where the bootstrap distribution is degenerate) and acceleration ``a`` from the jackknife
    values ``jack`` [m, units] (NaN ignored)."""
    finite = np.isfinite(boots)
    count = finite.sum(axis=1)
    v = value[:, None]
    below = ((boots < v).sum(axis=1) + 0.5 * (boots == v).sum(axis=1)) / np.maximum(count, 1)
    high = np.where(finite, boots, -np.inf).max(axis=1, initial=-np.inf)
    spread = high - np.where(finite, boots, np.inf).min(axis=1, initial=np.inf)
    scale = np.maximum(1.0, np.abs(np.where(finite, boots, 0.0)).max(axis=1, initial=0.0))
    ok = (count > 0) & (spread > 1e-12 * scale) & (below > 0) & (below < 1)
    z0 = np.where(ok, ndtri(np.where(ok, below, 0.5)), np.nan)
    d = np.nanmean(jack, axis=1, keepdims=True) - jack
    ss = np.nansum(d * d, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(ss > 0, np.nansum(d**3, axis=1) / (6.0 * ss**1.5), 0.0)
    return z0, a


def _bca_rows(
    boots: np.ndarray, value: np.ndarray, jack: np.ndarray, n: int, level: float
) -> np.ndarray:
    """BCa intervals [m, 2] (Efron 1987) of a statistic with bootstrap values ``boots`` [m, B],
    estimates ``value`` [m] and jackknife values ``jack`` [m, units] over ``n`` units, expanded for
    small n by :func:`_expanded_z`. NaN rows where the bootstrap distribution is degenerate."""
    z0, a = _bca_terms(boots, value, jack)
    shifted = z0[:, None] + _expanded_z(n, level)[None, :]
    denom = 1.0 - a[:, None] * shifted
    with np.errstate(invalid="ignore"):
        q = np.where(denom > 0, ndtr(z0[:, None] + shifted / denom), np.nan)
    ci = _row_quantiles(boots, q)
    return np.where(np.isnan(ci).any(axis=1, keepdims=True), np.nan, ci)


def _bca_p(boots: np.ndarray, value: float, jack: np.ndarray, n: int) -> float | None:
    """Two-sided p-value of a true value of 0, by inverting the BCa interval of :func:`_bca_rows`:
    the level at which its bound reaches 0, so the interval excludes 0 exactly when
    p < 1 - level (up to quantile interpolation). Resolution about 1 / len(boots); None when the
    bootstrap distribution is degenerate."""
    boots = boots[np.isfinite(boots)]
    z0_row, a_row = _bca_terms(boots[None, :], np.array([value]), jack[None, :])
    z0, a = float(z0_row[0]), float(a_row[0])
    if not math.isfinite(z0):
        return None
    half = 0.5 / boots.size
    below = (np.count_nonzero(boots < 0) + 0.5 * np.count_nonzero(boots == 0)) / boots.size
    w = float(ndtri(min(max(below, half), 1.0 - half))) - z0
    if 1.0 + a * w <= 0:
        return None
    t = (w / (1.0 + a * w) - z0) / math.sqrt(n / (n - 1))
    one_sided = float(stdtr(n - 1, t))
    return 2.0 * min(one_sided, 1.0 - one_sided)


def _percentile_p(boots: np.ndarray) -> float | None:
    """Two-sided p-value of a true value of 0 by inverting the percentile interval."""
    boots = boots[np.isfinite(boots)]
    if boots.size == 0:
        return None
    below = (np.count_nonzero(boots < 0) + 0.5 * np.count_nonzero(boots == 0)) / boots.size
    return float(min(1.0, 2.0 * min(below, 1.0 - below)))


def _mean_intervals(
    rows: np.ndarray, method: IntervalMethod, n_boot: int, level: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """CIs [m, 2] of the mean of each row of ``rows`` [m, n] (finite, n >= 2), and per row whether
    "bca" fell back to the t interval. Rows share one set of resamples, so many samples are
    bootstrapped at the cost of one matrix product (the coverage tests use this)."""
    m, n = rows.shape
    mean, sd = rows.mean(axis=1), rows.std(axis=1, ddof=1)
    half = float(stdtrit(n - 1, 0.5 + level / 2.0)) * sd / math.sqrt(n)
    t_ci = np.stack([mean - half, mean + half], axis=1)
    no_fallback = np.zeros(m, dtype=bool)
    if method == "t":
        return t_ci, no_fallback
    boots = rows @ _resample_counts(rng, n, n_boot).T / n
    if method == "percentile":
        alpha = (1.0 - level) / 2.0
        q = np.broadcast_to(np.array([alpha, 1.0 - alpha]), (m, 2))
        return _row_quantiles(boots, q), no_fallback
    jack = (rows.sum(axis=1, keepdims=True) - rows) / (n - 1)
    ci = _bca_rows(boots, mean, jack, n, level)
    fallback = np.isnan(ci).any(axis=1)
    return np.where(fallback[:, None], t_ci, ci), fallback


def mean_ci(
    x: ArrayLike,
    *,
    method: IntervalMethod = "bca",
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Estimate:
    """Mean of ``x`` (NaN dropped) with a CI by ``method`` and the one-sample t test p-value of a
    true mean of 0; no CI when n < 2.

    "bca" falls back to the t interval (saying so in ``reason``) when its bootstrap distribution is
    degenerate (no resamples, all resamples on one side of the mean, or an acceleration too large
    for the BCa formula). Zero variance gives a point interval and no p.
    """
    _check_method(method, _INTERVAL_METHODS)
    arr = _clean(x)
    n = arr.size
    if n == 0:
        return Estimate(None, None, 0, "no data")
    value = float(arr.mean())
    if n < 2:
        return Estimate(value, None, n, "n < 2: no confidence interval")
    if _degenerate(arr):
        return Estimate(value, (value, value), n, "zero variance: no p-value")
    sd = float(arr.std(ddof=1))
    p = float(2.0 * stdtr(n - 1, -abs(value) * math.sqrt(n) / sd))
    ci, fallback = _mean_intervals(arr[None, :], method, n_boot, level, _rng(seed))
    lo, hi = (float(b) for b in ci[0])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return Estimate(value, None, n, "no bootstrap resamples: no confidence interval", p)
    reason = "bootstrap distribution degenerate: t interval" if fallback[0] else None
    return Estimate(value, (lo, hi), n, reason, p)


def paired_diff_ci(
    a: ArrayLike,
    b: ArrayLike,
    *,
    method: IntervalMethod = "bca",
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Estimate:
    """Mean of ``a - b`` over pairs where both are finite, with :func:`mean_ci`'s CI and paired t
    test p-value."""
    a_arr = np.asarray(a, dtype=float).ravel()
    b_arr = np.asarray(b, dtype=float).ravel()
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired arrays differ in length: {a_arr.size} vs {b_arr.size}")
    ok = np.isfinite(a_arr) & np.isfinite(b_arr)
    return mean_ci(a_arr[ok] - b_arr[ok], method=method, n_boot=n_boot, level=level, seed=seed)


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
    percentile bootstrap over pairs (resamples with zero variance are dropped). Pairs are taken as
    independent: where points share questions use :func:`clustered_correlation`. Below
    :data:`MIN_INFERENCE_N` pairs, r is descriptive only (no p, no CI).
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
    if n < MIN_INFERENCE_N:
        return Correlation(method, r, None, None, n, f"descriptive only: n < {MIN_INFERENCE_N}")
    p = _t_pvalue(r, n)
    idx = _rng(seed).integers(0, n, size=(n_boot, n))
    bx, by = x_arr[idx], y_arr[idx]
    if method == "spearman":  # ranks of ranks are ranks: rank each resample again
        bx, by = rank_rows(bx), rank_rows(by)
    ci = _ci(_rowwise_pearson(bx, by), level) if n_boot > 0 else None
    return Correlation(method, r, p, ci, n)


def _r_from_sums(sums: np.ndarray) -> np.ndarray:
    """Pearson r from rows of sums ``(count, x, y, xx, yy, xy)``; NaN where a variance is ~0."""
    n, sx, sy, sxx, syy, sxy = sums.T
    with np.errstate(divide="ignore", invalid="ignore"):
        vx, vy = sxx - sx * sx / n, syy - sy * sy / n
        r = (sxy - sx * sy / n) / np.sqrt(vx * vy)
    tiny = 1e-12 * np.maximum(1.0, np.maximum(sxx, syy))
    return np.clip(np.where((vx > tiny) & (vy > tiny), r, np.nan), -1.0, 1.0)


def clustered_correlation(
    x: ArrayLike,
    y: ArrayLike,
    clusters: Sequence[object] | np.ndarray,
    *,
    method: Literal["bca", "percentile"] = "bca",
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Correlation:
    """Pearson r over all pairs where both are finite, with a cluster bootstrap: each resample
    draws whole clusters (e.g. questions, with all their points) with replacement.

    Points that share a question are not independent, so the CI and p-value resample clusters.
    ``n`` counts pairs, ``n_clusters`` clusters; below :data:`MIN_INFERENCE_N` clusters, r is
    descriptive only. The CI is BCa (jackknife over clusters, expanded for few clusters as in
    :func:`mean_ci`) or percentile; the p-value (true r of 0) inverts the same interval, so the
    CI excludes 0 exactly when p < 1 - level. A degenerate BCa falls back to percentile, saying so.
    """
    _check_method(method, ("bca", "percentile"))
    x_arr = np.asarray(x, dtype=float).ravel()
    y_arr = np.asarray(y, dtype=float).ravel()
    labels = np.asarray(clusters).ravel()
    if not x_arr.shape == y_arr.shape == labels.shape:
        raise ValueError(
            f"x, y and clusters differ in length: {x_arr.size}, {y_arr.size}, {labels.size}"
        )
    ok = np.isfinite(x_arr) & np.isfinite(y_arr)
    x_arr, y_arr = x_arr[ok], y_arr[ok]
    _, inv = np.unique(labels[ok], return_inverse=True)
    n, k = int(x_arr.size), int(inv.max()) + 1 if inv.size else 0
    name = "pearson"
    if n < MIN_CORR_N:
        return Correlation(name, None, None, None, n, f"n/a (needs >= {MIN_CORR_N})", k)
    for label, arr in (("x", x_arr), ("y", y_arr)):
        if _degenerate(arr):
            return Correlation(name, None, None, None, n, f"zero variance in {label}", k)
    xc, yc = x_arr - x_arr.mean(), y_arr - y_arr.mean()
    per_cluster = np.stack(
        [
            np.bincount(inv, weights=w, minlength=k)
            for w in (np.ones(n), xc, yc, xc * xc, yc * yc, xc * yc)
        ],
        axis=1,
    )
    total = per_cluster.sum(axis=0)
    r = float(_r_from_sums(total[None, :])[0])
    if k < MIN_INFERENCE_N:
        reason = f"descriptive only: {k} clusters < {MIN_INFERENCE_N}"
        return Correlation(name, r, None, None, n, reason, k)
    boots = _r_from_sums(_resample_counts(_rng(seed), k, n_boot) @ per_cluster)
    reason = None
    if method == "bca":
        jack = _r_from_sums(total[None, :] - per_cluster)
        ci_row = _bca_rows(boots[None, :], np.array([r]), jack[None, :], k, level)[0]
        p = _bca_p(boots, r, jack, k)
        if not np.isnan(ci_row).any() and p is not None:
            return Correlation(name, r, p, (float(ci_row[0]), float(ci_row[1])), n, None, k)
        reason = "bootstrap distribution degenerate: percentile interval"
    return Correlation(name, r, _percentile_p(boots), _ci(boots, level), n, reason, k)


def _question_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of each column of ``y`` on ``x`` over its finite points; NaN where a
    column has fewer than two finite points at distinct x."""
    w = np.isfinite(y) & np.isfinite(x)[:, None]
    cnt = w.sum(axis=0)
    xw = np.where(w, x[:, None], 0.0)
    yw = np.where(w, y, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        xm, ym = xw.sum(axis=0) / cnt, yw.sum(axis=0) / cnt
        dx = np.where(w, x[:, None] - xm, 0.0)
        sxx = (dx * dx).sum(axis=0)
        slope = (dx * (yw - np.where(w, ym, 0.0))).sum(axis=0) / sxx
    scale = np.maximum(1.0, np.abs(x[np.isfinite(x)]).max(initial=0.0)) ** 2
    return np.where((cnt >= 2) & (sxx > 1e-12 * scale), slope, np.nan)


def trend_test(
    x: ArrayLike,
    y_by_question: np.ndarray,
    *,
    method: IntervalMethod = "bca",
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Estimate:
    """Pre-specified dose-response test: slope of y on ``x`` (e.g. contaminated fractions, one per
    condition) with ``y_by_question`` shaped [conditions x questions] (NaN allowed).

    Fits a least-squares slope per question, then takes the mean over questions (the pooled slope
    when no value is missing) with :func:`mean_ci`'s interval and t test over the per-question
    slopes, so questions are the resampled unit. ``n`` counts questions with a slope.
    """
    x_arr = np.asarray(x, dtype=float).ravel()
    y_arr = np.asarray(y_by_question, dtype=float)
    if y_arr.ndim != 2 or y_arr.shape[0] != x_arr.size:
        raise ValueError(
            f"y_by_question must be [conditions x questions] with {x_arr.size} rows, "
            f"got shape {y_arr.shape}"
        )
    slopes = _question_slopes(x_arr, y_arr)
    if not np.isfinite(slopes).any():
        return Estimate(None, None, 0, "no question has two finite points at distinct x")
    return mean_ci(slopes, method=method, n_boot=n_boot, level=level, seed=seed)


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
