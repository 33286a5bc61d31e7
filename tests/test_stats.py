"""ouroboros/quality/stats.py against scipy, one test function at a time: the same p-values as scipy's own tests
where scipy has them, and a seeded null simulation per test: fresh samples from one distribution are rejected at
level a with rate at most a (within binomial noise: the one-sided 99.9% Clopper-Pearson bound must reach a)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ouroboros.quality.stats import (
    auc_p,
    binomial_excess_p,
    count_shortfall_p,
    ks_critical,
    ks_p,
    rate_excess_p,
    scale_p,
    tail_loss_p,
)

LEVEL = 0.05
SIMS = 600


def assert_at_most_level(rejected: int, sims: int = SIMS, level: float = LEVEL) -> None:
    """A rejection rate consistent with at most `level`: its lower 99.9% confidence bound stays below it."""
    lower = stats.beta.ppf(0.001, rejected, sims - rejected + 1) if rejected else 0.0
    assert lower <= level, f"{rejected}/{sims} rejected at level {level}"


def test_binomial_tests_match_binomtest():
    for x, n, rate in [(1, 10, 0.05), (7, 40, 0.1), (30, 1500, 0.01), (0, 20, 0.3), (20, 20, 0.5)]:
        want = stats.binomtest(x, n, rate, alternative="greater").pvalue if x else 1.0
        assert binomial_excess_p(x, n, rate) == pytest.approx(want, rel=1e-12)
    # the conditional two-sample form: x of x + y events in the batch, n_x / (n_x + n_y) expected
    for x, n_x, y, n_y in [(3, 1000, 1, 4000), (30, 1500, 0, 6000), (1, 1484, 0, 6000), (12, 500, 40, 2000)]:
        want = stats.binomtest(x, x + y, n_x / (n_x + n_y), alternative="greater").pvalue
        assert rate_excess_p(x, n_x, y, n_y) == pytest.approx(want, rel=1e-12)
    assert rate_excess_p(0, 100, 5, 100) == 1.0


def test_rate_excess_null_rejects_at_most_level():
    rng = np.random.default_rng(1)
    rate, n_x, n_y = 0.01, 1000, 4000
    rejected = sum(rate_excess_p(int(rng.binomial(n_x, rate)), n_x, int(rng.binomial(n_y, rate)), n_y) < LEVEL
                   for _ in range(SIMS))
    assert_at_most_level(rejected)
    # and it has power: three times the rate is found
    assert rate_excess_p(30, n_x, 40, n_y) < 1e-4


def test_count_shortfall_is_the_exact_poisson_binomial():
    rng = np.random.default_rng(2)
    for k in (1, 12, 300, 4000):  # the old copy switched to a normal approximation above 3,000 events
        p = rng.random(k)
        for kept in (0, int(p.sum()) - 3, int(p.sum()), k):
            kept = max(kept, 0)
            assert count_shortfall_p(kept, p) == pytest.approx(min(1.0, stats.poisson_binom.cdf(kept, p)), abs=1e-12)
    # against an exact convolution of the Bernoulli laws, independent of scipy
    p = np.array([0.9, 0.5, 0.99, 0.2, 0.7])
    dist = np.array([1.0])
    for q in p:
        dist = np.convolve(dist, [1 - q, q])
    for kept in range(len(p) + 1):
        assert count_shortfall_p(kept, p) == pytest.approx(dist[:kept + 1].sum(), abs=1e-12)
    assert count_shortfall_p(0, np.array([])) == 1.0


def test_count_shortfall_null_rejects_at_most_level():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.5, 1.0, 40)
    rejected = sum(count_shortfall_p(int((rng.random(40) < p).sum()), p) < LEVEL for _ in range(SIMS))
    assert_at_most_level(rejected)


def test_ks_matches_ks_2samp():
    rng = np.random.default_rng(4)
    for n, m, shift in [(200, 800, 0.15), (1000, 4000, 0.08), (3000, 3000, 0.05), (500, 2000, 0.0)]:
        a, b = rng.normal(shift, 1, n), rng.normal(0, 1, m)
        res = stats.ks_2samp(a, b, method="asymp")
        assert ks_p(res.statistic, n, m) == pytest.approx(res.pvalue, rel=0.1, abs=1e-4)
        exact = stats.ks_2samp(a[:100], b[:150], method="exact")
        assert ks_p(exact.statistic, 100, 150) == pytest.approx(exact.pvalue, rel=0.15, abs=2e-3)
    # the critical distance is the inverse of the p-value
    assert ks_p(ks_critical(0.01, 1000, 4000), 1000, 4000) == pytest.approx(0.01, rel=1e-6)


def test_ks_null_rejects_at_most_level():
    rng = np.random.default_rng(5)
    rejected = 0
    for _ in range(SIMS):
        a, b = rng.normal(size=300), rng.normal(size=1200)
        rejected += ks_p(stats.ks_2samp(a, b).statistic, 300, 1200) < LEVEL
    assert_at_most_level(rejected)
    # ties (a spiky column): still no more than the level
    rejected = 0
    for _ in range(SIMS):
        a, b = np.where(rng.random(300) < 0.5, 40, rng.integers(1, 99, 300)), \
            np.where(rng.random(1200) < 0.5, 40, rng.integers(1, 99, 1200))
        rejected += ks_p(stats.ks_2samp(a, b).statistic, 300, 1200) < LEVEL
    assert_at_most_level(rejected)


def test_scale_test_is_moods():
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 0.8, 500), rng.normal(0, 1, 2000)
    for alt in ("less", "greater"):
        assert scale_p(a, b, alt) == pytest.approx(stats.mood(a, b, alternative=alt).pvalue, rel=1e-12)
    assert scale_p(a, b, "less") < 0.05 < scale_p(a, b, "greater")
    assert scale_p(a[:2], b, "less") == 1.0


def test_scale_null_rejects_at_most_level_with_and_without_ties():
    rng = np.random.default_rng(7)
    for spiky in (False, True):
        rejected = 0
        for _ in range(SIMS):
            a, b = rng.lognormal(size=300), rng.lognormal(size=1200)  # heavy tails: a rank test is not fooled
            if spiky:  # 47% of rows at one value, as hours at 40
                a = np.where(rng.random(300) < 0.47, 1.0, a)
                b = np.where(rng.random(1200) < 0.47, 1.0, b)
            # the gate's two-sided form: twice the one-sided p in the direction of the effect
            rejected += min(1.0, 2 * min(scale_p(a, b, "less"), scale_p(a, b, "greater"))) < LEVEL
        assert_at_most_level(rejected)


def test_auc_p_is_the_mann_whitney_normal_approximation():
    rng = np.random.default_rng(8)
    for n, m, shift in [(50, 50, 0.3), (400, 400, 0.1), (1000, 1000, 0.0)]:
        pos, neg = rng.normal(shift, 1, n), rng.normal(0, 1, m)
        res = stats.mannwhitneyu(pos, neg, alternative="greater", method="asymptotic", use_continuity=False)
        auc = res.statistic / (n * m)
        assert auc_p(auc, n, m) == pytest.approx(res.pvalue, rel=1e-9)
    # scores with ties: ours leaves out the tie correction, so it is conservative (larger p) there
    pos, neg = rng.integers(0, 4, 300), rng.integers(0, 4, 300) - 0.2 * (rng.random(300) < 0.3)
    res = stats.mannwhitneyu(pos, neg, alternative="greater", method="asymptotic", use_continuity=False)
    assert auc_p(res.statistic / 300 ** 2, 300, 300) >= res.pvalue * 0.999


def test_auc_null_rejects_at_most_level():
    rng = np.random.default_rng(9)
    n = 200
    rejected = 0
    for _ in range(SIMS):
        u = stats.mannwhitneyu(rng.normal(size=n), rng.normal(size=n)).statistic
        rejected += auc_p(u / n ** 2, n, n) < LEVEL
    assert_at_most_level(rejected)


def test_tail_loss_null_rejects_at_most_level():
    """Rows of a fresh sample beyond real_train's 1%/99% quantiles: beta-binomial, as the gate uses it."""
    rng = np.random.default_rng(10)
    n, n_real = 1000, 4000
    rejected = 0
    for _ in range(SIMS):
        r, s = np.sort(rng.normal(size=n_real)), rng.normal(size=n)
        lo, hi = np.quantile(r, (0.01, 0.99))
        k_real = int(np.searchsorted(r, lo, "left") + n_real - np.searchsorted(r, hi, "right"))
        x = int(((s < lo) | (s > hi)).sum())
        rejected += tail_loss_p(x, n, k_real, n_real) < LEVEL
    assert_at_most_level(rejected)
    assert tail_loss_p(0, n, 80, n_real) < 1e-6  # tails clipped away: found
