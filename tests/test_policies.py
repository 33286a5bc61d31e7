"""Mixing policies: one plan, materialised as polars for the pipeline and as arrays for the reference chains."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ouroboros.policies import build_pool, build_pool_arrays, plan_pool


@pytest.mark.parametrize("policy", ["replace", "accumulate", "anchor"])
def test_polars_and_array_pools_hold_the_same_rows(policy):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(50, 2))
    batches = [rng.normal(size=(40, 2)) for _ in range(3)]
    frames = [pl.DataFrame(a, schema=["a", "b"], orient="row") for a in (real, *batches)]
    for k in range(4):
        pool = build_pool(policy, k, frames[0], frames[1:], lam=0.3, seed=2)
        rows, composition = build_pool_arrays(policy, k, real[None], [b[None] for b in batches], lam=0.3, seed=2)
        assert pool.composition == composition
        np.testing.assert_array_equal(pool.rows.to_numpy(), rows[0])


def test_anchor_keeps_the_pool_size_and_draws_distinct_rows():
    plan = plan_pool("anchor", 3, real_rows=100, batch_rows=[80, 80, 80], lam=0.2, seed=0)
    assert plan.composition == {"real": 16, "gen_2": 64}
    real_idx, syn_idx = plan.parts[0][1], plan.parts[1][1]
    assert len(set(real_idx.tolist())) == 16 and len(set(syn_idx.tolist())) == 64
    again = plan_pool("anchor", 3, real_rows=100, batch_rows=[80, 80, 80], lam=0.2, seed=0)
    np.testing.assert_array_equal(again.parts[0][1], real_idx)
    assert plan_pool("anchor", 1, 100, [80], lam=0.0).composition == {"real": 0, "gen_0": 80}
    assert plan_pool("anchor", 1, 100, [80], lam=1.0).composition == {"real": 80, "gen_0": 0}


def test_bad_plans_are_refused():
    with pytest.raises(ValueError, match="unknown mixing policy"):
        plan_pool("blend", 1, 10, [10])
    with pytest.raises(ValueError, match="needs the batches of generations 0..2"):
        plan_pool("replace", 3, 10, [10, 10])
    with pytest.raises(ValueError, match="lam must be in"):
        plan_pool("anchor", 1, 10, [10], lam=1.5)
