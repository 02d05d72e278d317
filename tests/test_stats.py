"""persona.analysis.stats: bootstrap CIs and correlations (values, edge cases, seeding)."""

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
@pytest.mark.parametrize("n", [3, 4, 12, 100])
def test_correlation_matches_scipy(method, n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = 0.6 * x + rng.normal(size=n)
    x[0] = x[-1]  # a tie, for the rank code
    ref = (sps.pearsonr if method == "pearson" else sps.spearmanr)(x, y)
    c = stats.correlation(x, y, method, n_boot=500)
    assert c.r == pytest.approx(ref.statistic, abs=1e-12)
    assert c.p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    assert c.n == n and c.reason is None
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
    c = stats.correlation([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0])
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
