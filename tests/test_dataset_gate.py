"""The dataset gate: fresh real entities pass at two sizes; each link fault is refused at 2,000 entities."""

from __future__ import annotations

import polars as pl
import pytest

from ouroboros.entity_split import entity_split
from ouroboros.quality.gate_dataset import judge_dataset
from tests.relational_data import copy_entities, draw, scramble_order, shuffle_children


@pytest.fixture(scope="module")
def real():
    return entity_split(draw(6000, seed=100), 0.25, 0)


@pytest.mark.parametrize("n", [500, 2000])
def test_fresh_real_entities_pass(real, n):
    """20 seeded draws of fresh entities from the real process: at most one refusal (the budget is 1% per batch;
    measured 0 of 20 at both sizes)."""
    train, hold = real
    refused = [s for s in range(20) if not judge_dataset(draw(n, seed=1000 + s, first_id=10**6), train, hold).passed]
    assert len(refused) <= 1, refused


@pytest.mark.parametrize("fault, expect", [
    ("shuffle", {"sibling:patients->visits:value", "association:patients->visits:age~mean value"}),
    ("scramble", {"trend:patients->visits:value", "smoothness:patients->visits:value"}),
    ("same_count", {"children_per_parent:patients->visits", "association:patients->visits:age~count"}),
    ("copy10", {"entity_copy"}),
])
def test_each_link_fault_is_refused_at_2000_entities(real, fault, expect):
    train, hold = real
    fresh = draw(2000, seed=2000, first_id=10**6)
    batch = {"shuffle": lambda: shuffle_children(fresh, 0), "scramble": lambda: scramble_order(fresh, 0),
             "same_count": lambda: draw(2000, seed=2000, first_id=10**6, fixed_children=4),
             "copy10": lambda: copy_entities(fresh, train, 0.1, 0)}[fault]()
    verdict = judge_dataset(batch, train, hold)
    assert not verdict.passed
    assert expect <= {c.name for c in verdict.failed}
    assert judge_dataset(fresh, train, hold).passed  # the same draw unfaulted passes


def test_broken_keys_are_refused_before_any_statistic(real):
    train, hold = real
    fresh = draw(300, seed=7, first_id=10**6)
    visits = fresh.tables["visits"]
    orphaned = visits.with_columns(pl.when(pl.int_range(pl.len()) < 3).then(-1).otherwise(pl.col("patient_id"))
                                   .alias("patient_id"))
    v = judge_dataset(fresh.replace({**fresh.tables, "visits": orphaned}), train, hold)
    assert [c.name for c in v.failed] == ["foreign_key:patients->visits"] and v.failed[0].statistic == 3
    dup = pl.concat([visits, visits.head(2)])
    v = judge_dataset(fresh.replace({**fresh.tables, "visits": dup}), train, hold)
    assert [c.name for c in v.failed] == ["primary_key:visits"]


def test_whole_gate_runs_each_tables_flat_gate_and_passes_fresh_entities(real):
    """Links plus each table's flat gate, the 1% budget shared three ways: 10 fresh draws of 500 entities pass
    (measured 10 of 10); a batch whose visits lost their spread is refused by the visits table's flat gate."""
    from ouroboros.quality.gate_dataset import judge_whole  # noqa: PLC0415

    train, hold = real
    verdicts = [judge_whole(draw(500, seed=50 + s, first_id=10**6), train, hold) for s in range(10)]
    assert sum(not v.passed for v in verdicts) <= 1
    assert set(verdicts[0].tables) == {"patients", "visits"} and verdicts[0].links.alpha < 0.01 / 3
    fresh = draw(2000, seed=2000, first_id=10**6)
    v = fresh.tables["visits"]
    squeezed = v.with_columns(pl.col("cost").mean() + 0.3 * (pl.col("cost") - pl.col("cost").mean()))
    verdict = judge_whole(fresh.replace({**fresh.tables, "visits": squeezed}), train, hold)
    assert not verdict.passed and not verdict.tables["visits"].passed and verdict.tables["patients"].passed
