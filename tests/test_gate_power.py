"""The gate on tables it was not tuned to: fresh real rows pass at every size, each subtle fault a generator makes
is refused for its own reason, privacy is judged against every training row, and what could not be judged is
listed with its reason. Generated tables of two shapes (`ouroboros.quality.proving`), seeded."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ouroboros.config import GateConfig
from ouroboros.quality import evaluate, gate_privacy
from ouroboros.quality.encoding import Encoder
from ouroboros.quality.proving import FAULTS, caught_for, mixed_table, wide_levels_table
from ouroboros.quality.stats import rate_excess_p
from ouroboros.schema import infer_schema

FAST = GateConfig(knn_rows=300, detection_rows=1000, privacy_rows=800, utility_rows=1000)


def _split(df: pl.DataFrame, rows: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """real_train four times the batch, real_holdout as large as the batch, then the batch: disjoint rows."""
    return df[:4 * rows], df[4 * rows:5 * rows], df[5 * rows:6 * rows]


@pytest.mark.parametrize(("rows", "make", "target"), [(30, mixed_table, "default"), (300, wide_levels_table, "amount"),
                                                      (3000, mixed_table, "default"),
                                                      (10_000, wide_levels_table, "amount")])
def test_fresh_real_rows_pass_at_every_size(rows, make, target):
    train, holdout, batch = _split(make(6 * rows, seed=rows), rows)
    card = evaluate(batch, train, holdout, FAST, target=target)
    assert card.passed, [f.reason for f in card.failures]
    assert card.scores["gate.tests"] >= 10


def test_a_null_where_real_train_has_none_is_no_fault():
    train, holdout, batch = _split(mixed_table(6 * 1484, seed=3), 1484)
    assert train["p"].null_count() == 0
    one_null = batch.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("p")).alias("p"))
    card = evaluate(one_null, train, holdout, FAST, target="default")
    assert card.passed, [f.reason for f in card.failures]
    assert card.scores["gate.p.contract.nulls.p"] > 0.1  # one null in 1,484 rows: no evidence of anything
    many = batch.with_columns(pl.when(pl.int_range(pl.len()) % 10 == 0).then(None).otherwise(pl.col("p")).alias("p"))
    refused = evaluate(many, train, holdout, FAST, target="default")
    assert "nulls.p" in {f.indicator for f in refused.failures}


def test_many_level_column_is_judged_against_its_own_noise():
    """Thousands of job titles: two real samples differ a lot (shape far below 0.8) and show levels real_train
    lacks; neither is a fault. A generator inventing a level in 5% of rows is."""
    train, holdout, batch = _split(wide_levels_table(6 * 1000, seed=11), 1000)
    card = evaluate(batch, train, holdout, FAST, target="amount")
    s = card.scores
    assert s["shape.job_title"] < 0.8 and s["shape.job_title.noise_floor"] < 0.8
    assert s["contract.unknown_categories.job_title"] > 0
    assert card.passed, [f.reason for f in card.failures]
    invented = batch.with_columns(pl.when(pl.int_range(pl.len()) % 20 == 0).then(pl.lit("st_bug"))
                                  .otherwise(pl.col("state")).alias("state"))
    refused = evaluate(invented, train, holdout, FAST, target="amount")
    (fault,) = [f for f in refused.failures if f.indicator == "categories.state"]
    assert "st_bug" in fault.reason


@pytest.fixture(scope="module")
def table_5000():
    rows = 5000
    df = mixed_table(8 * rows, seed=21)
    return df[:4 * rows], df[4 * rows:5 * rows], df[5 * rows:], rows


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_subtle_fault_is_refused_for_its_own_reason(table_5000, fault):
    train, holdout, pool, rows = table_5000
    make, reasons = FAULTS[fault]
    batch = make(pool, train, rows, "default", 5)
    card = evaluate(batch, train, holdout, FAST, target="default")
    assert not card.passed
    assert caught_for(card, reasons), (reasons, [f.indicator for f in card.failures])


def test_jittered_copies_are_refused(table_5000):
    """Training rows with noise of 0.15 std on every numeric column: no copy, exact or near, but every row sits
    nearer to real_train than fresh rows do."""
    train, holdout, _, _ = table_5000
    rows = train.sample(2000, seed=1)
    rng = np.random.default_rng(2)
    jitter = [(pl.col(c) + pl.Series(rng.normal(scale=0.15 * train[c].std(), size=rows.height))).cast(t)
              for c, t in rows.schema.items() if t.is_float()]
    jitter += [(pl.col(c) + pl.Series(np.round(rng.normal(scale=0.15 * train[c].std(), size=rows.height)))).cast(t)
               for c, t in rows.schema.items() if t.is_integer()]
    card = evaluate(rows.with_columns(jitter), train, holdout, FAST, target="default")
    failed = {f.indicator for f in card.failures}
    assert "privacy.closer_to_train_excess" in failed
    assert card.scores["privacy.exact_copy_rate"] == 0.0
    assert card.scores["privacy.closer_to_train_share"] > 0.95 > 0.85 > card.scores["privacy.closer_to_train_share.noise_floor"]


def test_distances_reach_every_training_row(monkeypatch):
    """Chunked exact search finds the nearest of all real_train rows, not of a sample: a copy of the very last
    training row is at distance 0, and chunking changes nothing."""
    train = mixed_table(5000, seed=4)
    enc = Encoder.fit(train, infer_schema(train))
    queries = enc.matrix(pl.concat([train[-1:], mixed_table(50, seed=5)]))
    whole = gate_privacy.nearest_two(queries, enc.matrix(train))
    monkeypatch.setattr(gate_privacy, "TRAIN_CHUNK", 333)
    monkeypatch.setattr(gate_privacy, "CELLS", 10_000)
    chunked = gate_privacy.nearest_in_frame(queries, train, enc)
    assert chunked[0, 0] == 0.0
    np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-4)


def test_sub_checks_too_small_to_judge_are_listed_with_their_reason():
    train, holdout, batch = _split(mixed_table(6 * 30, seed=8), 30)
    card = evaluate(batch, train, holdout, FAST, target="default")
    assert "rows per side" in card.skipped["joint.detection_auc"]
    assert "rows" in card.skipped["utility.skill_retention"]
    assert card.skipped_for("fidelity") and not card.skipped_for("privacy")


def test_zero_baseline_rates_use_the_binomial_not_zero():
    assert rate_excess_p(1, 1484, 0, 6000) > 0.1  # one null where real_train had none: chance
    assert rate_excess_p(30, 1500, 0, 6000) < 1e-15  # thirty: a generator's doing
