"""Recursive generations: published collapse results reproduced with the project's own chain and policies.

The reference experiments run many independent chains at once through `run_reference_chains`, which is
the same `chain` loop and the same policy plans as `run_study`; `test_array_path_is_the_table_path`
pins that the two draw identical batches, so the fast path is no separate re-implementation.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.special import digamma

from ouroboros.collapse import GaussianReference, run_reference_chains, run_study, variance_ratio
from ouroboros.config import GateConfig
from ouroboros.generators import FAMILIES, GeneratorError, create, load
from ouroboros.quality import evaluate
from tests.wiring import WIRING_GATE

N = 100  # samples per generation, as in both papers
# small k-NN and detection subsamples keep the full scorecard at about a second per batch
FAST_GATE = {"knn_rows": 50, "detection_rows": 50}
# chain mechanics need a chain the gate approves at every generation; a copula chain on the demo may be refused at
# any generation (association, detection or utility), so those limits are off where only wiring is tested
WIRING = {**FAST_GATE, **WIRING_GATE}


def _real_chains(chains: int, seed: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((chains, n, 1))


def expected_log_factor(n: int) -> float:
    """E[log(chi2(n-1)/(n-1))] = digamma((n-1)/2) + log(2/(n-1))."""
    return float(digamma((n - 1) / 2) + np.log(2 / (n - 1)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shumailov_replace_variance_collapses_at_the_analytic_rate(seed):
    """Shumailov et al., Nature 2024: refit a 1-D Gaussian on N=100 samples of the previous generation.

    Derivation. Generation k fits the unbiased variance s_k^2 of the N rows the previous model drew,
    which were i.i.d. N(m_{k-1}, s_{k-1}^2); Cochran's theorem gives (N-1) s_k^2 / s_{k-1}^2 ~ chi2(N-1),
    independent of everything before. So s_k^2 = s_{k-1}^2 * X_k with X_k i.i.d. chi2(N-1)/(N-1), and
    the scorecard's variance ratio of batch t-1 (the t-th generation) against real_train is the
    product X_1 ... X_t. Its logarithm is a sum of t i.i.d. terms with mean
    mu = E[log X] = digamma((N-1)/2) + log(2/(N-1)) (~ -0.0101 for N = 100) and variance
    trigamma((N-1)/2) ~ 0.0204, so by the central limit theorem it is near-normal and its median is near
    its mean: median ratio ~ exp(t * mu) = 0.363 after t = 100 generations. Note E[X] = 1: the variance
    is unbiased at every step, yet the typical chain collapses (the mean of the product stays 1 only
    through rare chains that blow up).
    """
    real = _real_chains(1000, seed)
    result = run_reference_chains(real, policy="replace", generations=100, seed=seed)
    analytic = np.exp(100 * expected_log_factor(N))
    assert analytic == pytest.approx(0.363, abs=0.002)
    observed = float(np.median(result.variance_ratio[:, 99, 0]))
    assert observed == pytest.approx(analytic, rel=0.20), (observed, analytic)
    # the whole curve follows exp(t * mu), not only its end point
    t = np.array([10, 25, 50])
    curve = np.median(result.variance_ratio[:, t - 1, 0], axis=0)
    np.testing.assert_allclose(curve, np.exp(t * expected_log_factor(N)), rtol=0.2)
    # most chains lost variance: P(sum of logs < 0) = Phi(1.01 / sqrt(100 * 0.0204)) ~ 0.76
    assert np.mean(result.variance_ratio[:, 99, 0] < 1.0) > 0.7


@pytest.mark.parametrize("seed", [0, 1])
def test_gerstgrasser_accumulate_keeps_the_variance(seed):
    """Gerstgrasser et al., 2024: accumulating real + every earlier batch bounds the error, no collapse.

    Generation k's pool holds the N real rows plus N rows of each earlier generation; the newest batch
    is a shrinking share of the pool, so the fitted variance is a convergent series of perturbations
    around the real one. The median variance ratio stays at or above 0.9 through 200 generations, while
    `replace` on the very same real rows falls to ~0.13 (exp(200 mu)).
    """
    real = _real_chains(300, seed)
    acc = run_reference_chains(real, policy="accumulate", generations=200, seed=seed)
    median = np.median(acc.variance_ratio[:, :, 0], axis=0)
    assert median.min() >= 0.9, median.min()
    assert acc.compositions[199] == {"real": N, **{f"gen_{j}": N for j in range(199)}}
    rep = run_reference_chains(real, policy="replace", generations=200, seed=seed)
    assert np.median(rep.variance_ratio[:, 199, 0]) < 0.25


def test_anchor_with_fresh_real_rows_holds_the_variance():
    """20% fresh real rows per generation (anchor, lambda 0.2) is enough to stop the variance decaying."""
    real = _real_chains(500, 3)
    result = run_reference_chains(real, policy="anchor", generations=100, lam=0.2, seed=3)
    median = np.median(result.variance_ratio[:, :, 0], axis=0)
    assert median.min() >= 0.85 and median[-1] == pytest.approx(1.0, abs=0.1)
    assert result.compositions[5] == {"real": 20, "gen_4": 80}


def test_replace_mean_random_walks_away_from_the_real_mean():
    """The other half of the collapse: the fitted mean is a random walk, its spread grows like sqrt(t/N)."""
    real = _real_chains(1000, 4)
    result = run_reference_chains(real, policy="replace", generations=64, seed=4)
    spread = result.mean_shift[:, :, 0].std(axis=0)
    assert spread[63] > 2.5 * spread[3]


@pytest.mark.parametrize("policy", ["replace", "accumulate", "anchor"])
def test_array_path_is_the_table_path(policy):
    """One chain through polars, generators and the scorecard equals the vectorised chain exactly."""
    real = _real_chains(1, 7, n=60)
    frame = pl.DataFrame({"x": real[0, :, 0]})
    table = run_study(frame, frame.head(10), family="gaussian", policy=policy, generations=3, lam=0.25, seed=5,
                      gate=False, gate_config=GateConfig(**FAST_GATE))
    arrays = run_reference_chains(real, policy=policy, generations=3, lam=0.25, seed=5)
    ratios = [g.scorecard.scores["collapse.variance_ratio.x"] for g in table.generations]
    np.testing.assert_allclose(ratios, arrays.variance_ratio[0, :, 0], rtol=1e-10)
    assert [g.composition for g in table.generations] == arrays.compositions


def test_variance_ratio_is_the_scorecards_indicator():
    rng = np.random.default_rng(0)
    real, syn = rng.normal(0, 2, (200, 2)), rng.normal(0, 1, (150, 2))
    card = evaluate(pl.DataFrame(syn, schema=["a", "b"], orient="row"),
                    pl.DataFrame(real, schema=["a", "b"], orient="row"), pl.DataFrame(schema={"a": pl.Float64,
                                                                                              "b": pl.Float64}))
    ours = variance_ratio(syn, real)
    assert card.scores["collapse.variance_ratio.a"] == pytest.approx(ours[0])
    assert card.scores["collapse.variance_ratio.b"] == pytest.approx(ours[1])


# -- the reference generator ------------------------------------------------------------------------

def test_gaussian_is_a_registered_family_that_round_trips(tmp_path):
    assert "gaussian" in FAMILIES
    rng = np.random.default_rng(1)
    x = rng.multivariate_normal([1.0, -2.0], [[2.0, 0.8], [0.8, 1.0]], size=4000)
    frame = pl.DataFrame(x, schema=["a", "b"], orient="row")
    gen = create("gaussian", seed=3).fit(frame)
    assert isinstance(gen.inner, GaussianReference)  # create() wraps every family (ouroboros.identifiers)
    np.testing.assert_allclose(gen._cov, np.cov(x, rowvar=False), rtol=1e-10)  # unbiased, ddof=1
    syn = gen.sample(20000, seed=9)
    np.testing.assert_allclose(syn.to_numpy().mean(axis=0), [1.0, -2.0], atol=0.08)
    np.testing.assert_allclose(np.cov(syn.to_numpy(), rowvar=False), [[2.0, 0.8], [0.8, 1.0]], atol=0.12)
    assert load(gen.save(tmp_path / "g")).sample(50, seed=2).equals(gen.sample(50, seed=2))


def test_gaussian_refuses_what_it_cannot_model(small_demo):
    with pytest.raises(GeneratorError, match="numeric columns only"):
        create("gaussian").fit(small_demo)
    with pytest.raises(GeneratorError, match="ddof"):
        create("gaussian", ddof=2)


# -- studies on the demo table, through the gate ------------------------------------------------------

@pytest.fixture(scope="module")
def demo_split(request):
    demo = request.getfixturevalue("small_demo")
    return demo.head(480), demo.tail(120)


def test_study_records_pool_composition_and_scorecards(demo_split):
    train, holdout = demo_split
    result = run_study(train, holdout, family="copula", policy="accumulate", generations=3, rows=200, seed=1,
                       gate_config=GateConfig(**WIRING))
    assert result.stopped_at is None and result.tripped_on is None
    assert [g.composition for g in result.generations] == [
        {"real": 480}, {"real": 480, "gen_0": 200}, {"real": 480, "gen_0": 200, "gen_1": 200}]
    assert all(g.passed for g in result.generations)
    assert "fidelity.column_shapes" in result.generations[2].scorecard.scores
    table = result.table()
    assert set(table["generation"].to_list()) == {0, 1, 2}


def test_gate_stops_the_chain_at_the_first_failed_batch(demo_split):
    train, holdout = demo_split
    # a limit the copula cannot meet: it keeps most, not 99%, of the demo's associations between columns
    strict = GateConfig(**FAST_GATE, min_association_retention=0.99)
    result = run_study(train, holdout, family="copula", policy="replace", generations=3, rows=500, seed=1,
                       gate_config=strict)
    assert result.stopped_at == 0 and len(result.generations) == 1
    assert result.tripped_on is not None
    failed = {f.indicator for f in result.generations[0].scorecard.failures}
    assert any(i.startswith("fidelity.association_retention") for i in failed), failed
    ungated = run_study(train, holdout, family="copula", policy="replace", generations=2, rows=500, seed=1,
                        gate_config=strict, gate=False)
    assert ungated.stopped_at is None and len(ungated.generations) == 2
    assert not ungated.generations[1].passed


def test_study_is_deterministic(demo_split):
    train, holdout = demo_split
    fast = GateConfig(**FAST_GATE)
    a = run_study(train, holdout, family="copula", policy="anchor", generations=2, seed=4, keep_batches=True,
                  gate_config=fast, gate=False)
    b = run_study(train, holdout, family="copula", policy="anchor", generations=2, seed=4, keep_batches=True,
                  gate_config=fast, gate=False)
    assert a.generations[1].batch.equals(b.generations[1].batch)
    assert a.generations[1].composition == {"real": 96, "gen_0": 384}
