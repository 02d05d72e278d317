"""persona.analysis.stats: CIs of means (BCa, t, percentile), trend test, correlations (plain and
cluster-bootstrapped): values, coverage, edge cases, seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from persona.analysis import stats


def test_mean_ci_value_and_interval():
    x = np.arange(20, dtype=float)
    est = stats.mean_ci(x, seed=1)
    assert est.value == pytest.approx(9.5)
    assert est.n == 20 and est.reason is None
    lo, hi = est.ci
    assert lo < 9.5 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * x.std(ddof=0) / math.sqrt(20), rel=0.2)


def test_mean_ci_drops_nan_and_handles_tiny_inputs():
    assert stats.mean_ci([1.0, float("nan"), 3.0]).value == pytest.approx(2.0)
    empty = stats.mean_ci([float("nan")])
    assert (empty.value, empty.ci, empty.n) == (None, None, 0) and empty.reason == "no data"
    one = stats.mean_ci([4.0])
    assert one.value == 4.0 and one.ci is None and "n < 2" in one.reason


def test_seeded_and_reproducible():
    x = np.random.default_rng(3).normal(size=30)
    assert stats.mean_ci(x, seed=7) == stats.mean_ci(x, seed=7)
    assert stats.mean_ci(x, seed=7).ci != stats.mean_ci(x, seed=8).ci
    y = x + np.random.default_rng(4).normal(size=30)
    assert stats.correlation(x, y, seed=5) == stats.correlation(x, y, seed=5)


def test_paired_diff_uses_pairs_and_is_tighter_than_unpaired():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 5, 40)  # large between-question spread
    ck = base + 1.0 + rng.normal(0, 0.1, 40)
    paired = stats.paired_diff_ci(ck, base)
    unpaired = stats.diff_ci(ck, base)
    assert paired.value == pytest.approx(unpaired.value)
    assert paired.value == pytest.approx(1.0, abs=0.05)
    assert (paired.ci[1] - paired.ci[0]) < 0.2 * (unpaired.ci[1] - unpaired.ci[0])
    assert paired.ci[0] < 1.0 < paired.ci[1]


def test_paired_diff_drops_incomplete_pairs_and_checks_lengths():
    est = stats.paired_diff_ci([1.0, 2.0, float("nan"), 4.0], [0.0, float("nan"), 1.0, 1.0])
    assert est.n == 2 and est.value == pytest.approx(2.0)
    with pytest.raises(ValueError, match="differ in length"):
        stats.paired_diff_ci([1.0], [1.0, 2.0])


def test_diff_ci_empty_group():
    est = stats.diff_ci([], [1.0, 2.0])
    assert est.value is None and "first group" in est.reason


@pytest.mark.parametrize("method", ["pearson", "spearman"])
@pytest.mark.parametrize("n", [3, 5, 6, 12, 100])
def test_correlation_matches_scipy(method, n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = 0.6 * x + rng.normal(size=n)
    x[0] = x[-1]  # a tie, for the rank code
    ref = (sps.pearsonr if method == "pearson" else sps.spearmanr)(x, y)
    c = stats.correlation(x, y, method, n_boot=500)
    assert c.r == pytest.approx(ref.statistic, abs=1e-12)
    assert c.n == n
    if n < stats.MIN_INFERENCE_N:  # a handful of points: r only
        assert c.p is None and c.ci is None and c.reason == "descriptive only: n < 6"
        return
    assert c.p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    assert c.reason is None
    lo, hi = c.ci
    assert -1.0 <= lo <= hi <= 1.0


def test_correlation_too_few_points_and_zero_variance():
    few = stats.correlation([1.0, 2.0, float("nan")], [2.0, 1.0, 5.0])
    assert few.r is None and few.p is None and few.ci is None
    assert few.n == 2 and few.reason == "n/a (needs >= 3)"
    flat = stats.correlation([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0], "spearman")
    assert flat.r is None and flat.reason == "zero variance in x"
    flat_y = stats.correlation([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    assert flat_y.r is None and flat_y.reason == "zero variance in y"


def test_perfect_correlation_has_zero_p():
    c = stats.correlation(np.arange(6.0), 2.0 * np.arange(6.0))
    assert c.r == pytest.approx(1.0) and c.p == 0.0


def test_rank_rows_matches_scipy_with_ties():
    a = np.random.default_rng(0).integers(0, 4, size=(60, 9)).astype(float)
    np.testing.assert_allclose(stats.rank_rows(a), sps.rankdata(a, axis=1))


def test_correlation_ci_coverage():
    """The bootstrap 95% CI of r covers the true rho in roughly 95% of samples."""
    rho, n, trials = 0.6, 40, 120
    rng = np.random.default_rng(11)
    cov = [[1.0, rho], [rho, 1.0]]
    hits = 0
    for t in range(trials):
        xy = rng.multivariate_normal([0, 0], cov, size=n)
        c = stats.correlation(xy[:, 0], xy[:, 1], n_boot=600, seed=t)
        hits += c.ci[0] <= rho <= c.ci[1]
    assert 0.85 <= hits / trials <= 1.0


def test_correlation_recovers_rho_on_large_samples():
    rho = 0.8
    xy = np.random.default_rng(2).multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=2000)
    c = stats.correlation(xy[:, 0], xy[:, 1], n_boot=300)
    assert c.r == pytest.approx(rho, abs=0.03)
    assert c.ci[0] < rho < c.ci[1]


def test_mean_ci_coverage():
    rng = np.random.default_rng(5)
    hits = sum(
        (lambda e: e.ci[0] <= 2.0 <= e.ci[1])(stats.mean_ci(rng.normal(2.0, 1.0, 30), seed=t))
        for t in range(150)
    )
    assert 0.88 <= hits / 150 <= 1.0


def test_fit_line():
    assert stats.fit_line([0.0, 1.0, 2.0], [1.0, 3.0, 5.0]) == pytest.approx((2.0, 1.0))
    assert stats.fit_line([1.0, 1.0], [1.0, 2.0]) is None
    assert stats.fit_line([1.0, float("nan")], [1.0, 2.0]) is None


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown correlation method"):
        stats.correlation([1, 2, 3], [1, 2, 3], "kendall")  # type: ignore[arg-type]


# --- small-sample intervals of a mean: t, BCa (expanded), percentile ---------------------------


def _coverage(draws: np.ndarray, truth: float, method: str) -> float:
    """Share of rows of ``draws`` whose CI of the mean covers ``truth`` (one vectorised call)."""
    ci, _ = stats._mean_intervals(draws, method, 1000, 0.95, np.random.default_rng(1))
    return float(np.mean((ci[:, 0] <= truth) & (truth <= ci[:, 1])))


def test_small_n_coverage_normal():
    """1000 samples of n = 10 (SE of a coverage ~0.007): t and BCa cover 0.95 +- 0.02; the plain
    percentile bootstrap under-covers (~0.90)."""
    draws = np.random.default_rng(20).normal(3.0, 2.0, size=(1000, 10))
    t, bca, pct = (_coverage(draws, 3.0, m) for m in ("t", "bca", "percentile"))
    assert 0.93 <= t <= 0.97 and 0.93 <= bca <= 0.97
    assert pct <= 0.925 and bca - pct >= 0.02


def test_small_n_coverage_skewed():
    """Exponential, n = 10: no interval reaches 0.95 (t ~0.90); BCa is the closest (~0.92) and the
    percentile bootstrap the worst (~0.87)."""
    draws = np.random.default_rng(21).exponential(1.0, size=(1000, 10))
    t, bca, pct = (_coverage(draws, 1.0, m) for m in ("t", "bca", "percentile"))
    assert 0.90 <= bca <= 0.96
    assert pct <= 0.90 and bca - pct >= 0.03 and bca >= t


@pytest.mark.parametrize("method", ["bca", "t", "percentile"])
def test_mean_ci_is_the_vectorised_interval(method):
    x = np.random.default_rng(6).gamma(2.0, size=12)
    est = stats.mean_ci(x, method=method, n_boot=500, seed=4)
    ci, _ = stats._mean_intervals(x[None, :], method, 500, 0.95, np.random.default_rng(4))
    assert est.ci == pytest.approx(tuple(ci[0]), abs=1e-12)


def test_t_interval_and_p_match_scipy():
    x = np.random.default_rng(8).normal(0.4, 1.0, size=9)
    est = stats.mean_ci(x, method="t", level=0.9)
    ref = sps.ttest_1samp(x, 0.0)
    assert est.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert est.ci == pytest.approx(tuple(ref.confidence_interval(0.9)), rel=1e-9)
    assert stats.mean_ci(x).p == est.p  # the p-value does not depend on the interval method


def test_bca_is_asymmetric_on_skewed_data():
    """BCa follows the skew (longer upper arm for a right-skewed sample); t is symmetric."""
    x = np.random.default_rng(9).lognormal(0.0, 1.0, size=15)
    est = stats.mean_ci(x, seed=2)
    lo, hi = est.ci
    assert hi - est.value > 1.3 * (est.value - lo)


def test_bca_falls_back_to_t_when_degenerate_and_zero_variance_has_no_p():
    est = stats.mean_ci([1.0, 2.0, 4.0], n_boot=0)  # an empty bootstrap distribution
    assert est.reason == "bootstrap distribution degenerate: t interval"
    assert est.ci == pytest.approx(stats.mean_ci([1.0, 2.0, 4.0], method="t").ci)
    assert stats.mean_ci([1.0, 2.0, 4.0], method="percentile", n_boot=0).ci is None
    flat = stats.mean_ci([2.0, 2.0, 2.0])
    assert flat.ci == (2.0, 2.0) and flat.p is None and "zero variance" in flat.reason


def test_paired_diff_passes_the_method_and_unknown_method_raises():
    a, b = np.arange(8.0), np.arange(8.0) * 0.5
    assert stats.paired_diff_ci(a, b, method="t") == stats.mean_ci(a - b, method="t")
    with pytest.raises(ValueError, match="unknown interval method"):
        stats.mean_ci(a, method="normal")  # type: ignore[arg-type]


# --- trend test --------------------------------------------------------------------------------

FRACTIONS = np.array([0.0, 0.25, 0.5, 1.0])


def _dose_response(slope: float, n_q: int, seed: int) -> np.ndarray:
    """[conditions x questions]: a question effect (large), the slope, and noise."""
    rng = np.random.default_rng(seed)
    return slope * FRACTIONS[:, None] + rng.normal(0, 3, (1, n_q)) + rng.normal(0, 1, (4, n_q))


def test_trend_test_is_the_pooled_slope_and_covers_the_true_one():
    y = _dose_response(2.0, 20, seed=0)
    est = stats.trend_test(FRACTIONS, y)
    pooled = np.polyfit(np.repeat(FRACTIONS, 20), y.ravel(), 1)[0]
    assert est.value == pytest.approx(pooled, abs=1e-12) and est.n == 20
    assert est.ci[0] <= 2.0 <= est.ci[1] and est.ci[0] > 0 and est.p < 0.01


def test_trend_test_zero_slope_and_coverage():
    null = [stats.trend_test(FRACTIONS, _dose_response(0.0, 20, s), n_boot=500).p for s in range(3)]
    assert all(p > 0.05 for p in null)
    hits = sum(
        (lambda e: e.ci[0] <= 1.0 <= e.ci[1])(
            stats.trend_test(FRACTIONS, _dose_response(1.0, 12, s), n_boot=400, seed=s)
        )
        for s in range(40)
    )
    assert hits >= 34  # 95% CI: expect ~38 of 40


def test_trend_test_missing_values_and_shapes():
    y = _dose_response(1.0, 5, seed=1)
    y[1:, 0] = np.nan  # question 0 has one point: no slope
    y[2, 1] = np.nan  # question 1 keeps three points
    est = stats.trend_test(FRACTIONS, y, method="t")
    slopes = [np.polyfit(FRACTIONS[np.isfinite(c)], c[np.isfinite(c)], 1)[0] for c in y.T[1:]]
    assert est.n == 4 and est.value == pytest.approx(np.mean(slopes), abs=1e-12)
    none = stats.trend_test([0.5, 0.5], np.ones((2, 3)))
    assert none.value is None and "distinct x" in none.reason
    with pytest.raises(ValueError, match="conditions x questions"):
        stats.trend_test(FRACTIONS, np.ones((3, 5)))


# --- cluster-bootstrapped correlation ---------------------------------------------------------


def _clustered_points(n_q: int, per_q: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points whose x and y share a per-question effect each (independent across x and y), so
    their true correlation is 0 but points of one question move together."""
    rng = np.random.default_rng(seed)
    q = np.repeat(np.arange(n_q), per_q)
    x = rng.normal(0, 1, n_q)[q] + 0.3 * rng.normal(size=q.size)
    y = rng.normal(0, 1, n_q)[q] + 0.3 * rng.normal(size=q.size)
    return x, y, q


def test_clustered_correlation_is_pearson_and_wider_than_naive():
    x, y, q = _clustered_points(12, 5, seed=3)
    c = stats.clustered_correlation(x, y, [f"q{i}" for i in q])
    naive = stats.correlation(x, y)
    assert c.r == pytest.approx(sps.pearsonr(x, y).statistic, abs=1e-12)
    assert (c.n, c.n_clusters, c.method, c.reason) == (60, 12, "pearson", None)
    assert c.ci[1] - c.ci[0] > 1.8 * (naive.ci[1] - naive.ci[0])
    assert c.p > naive.p


def test_clustered_p_agrees_with_its_interval():
    for seed in range(6):
        x, y, q = _clustered_points(10, 4, seed)
        for method in ("bca", "percentile"):
            c = stats.clustered_correlation(x, y, q, method=method, n_boot=800, seed=seed)
            excludes = not (c.ci[0] <= 0.0 <= c.ci[1])
            if abs(c.p - 0.05) > 0.01:  # away from the boundary, where interpolation can differ
                assert excludes == (c.p < 0.05), (seed, method, c)


def test_clustered_correlation_false_positives_stay_near_level():
    """True r = 0 with strong clustering: the naive pair bootstrap rejects far too often, the
    cluster bootstrap about at its level."""
    naive = clustered = 0
    for seed in range(40):
        x, y, q = _clustered_points(15, 4, 100 + seed)
        naive += stats.correlation(x, y, n_boot=0).p < 0.05
        clustered += stats.clustered_correlation(x, y, q, n_boot=400, seed=seed).p < 0.05
    assert naive >= 6 and clustered <= 4  # at level: ~2 of 40; seen: 8 naive, 0 clustered


def test_clustered_correlation_descriptive_below_six_clusters_and_edge_cases():
    x, y, q = _clustered_points(5, 3, seed=1)
    c = stats.clustered_correlation(x, y, q)
    assert c.r is not None and c.p is None and c.ci is None and c.n_clusters == 5
    assert c.reason == "descriptive only: 5 clusters < 6"
    x[:] = 1.0
    assert stats.clustered_correlation(x, y, q).reason == "zero variance in x"
    y[3:] = np.nan
    assert stats.clustered_correlation(y, y, q).n == 3
    with pytest.raises(ValueError, match="differ in length"):
        stats.clustered_correlation(x, y, q[:-1])
