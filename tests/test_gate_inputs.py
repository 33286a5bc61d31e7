"""Issue 19: inputs that used to slip past the gate or crash it. Each test builds the bad input from a generated
table (`ouroboros.quality.proving`), seeded, and asserts what the gate does with it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ouroboros.config import GateConfig
from ouroboros.quality import evaluate
from ouroboros.quality.judge import Judge
from ouroboros.quality.proving import mixed_table

FAST = GateConfig(knn_rows=300, detection_rows=1000, privacy_rows=800, utility_rows=1000)


@pytest.fixture(scope="module")
def table_5000():
    df = mixed_table(6 * 5000, seed=31)
    return df[:4 * 5000], df[4 * 5000:5 * 5000], df[5 * 5000:]


def _shrunk(batch: pl.DataFrame, column: str, variance: float) -> pl.DataFrame:
    x = pl.col(column)
    return batch.with_columns(x.mean() + (x - x.mean()) * np.sqrt(variance))


def _set(batch: pl.DataFrame, column: str, row: int, value: float) -> pl.DataFrame:
    return batch.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column))
                              .alias(column))


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_one_non_finite_value_does_not_approve_a_refused_batch(table_5000, bad):
    train, holdout, batch = table_5000
    shrunk = _shrunk(batch, "p", 0.85)
    card = evaluate(shrunk, train, holdout, FAST, target="default")
    assert "spread_ratio.p" in {f.indicator for f in card.failures}
    poisoned = evaluate(_set(shrunk, "p", 3, bad), train, holdout, FAST, target="default")
    failed = {f.indicator: f for f in poisoned.failures}
    assert not poisoned.passed
    assert "spread_ratio.p" in failed  # judged on the finite values, as before
    assert "non_finite.p" in failed and "p" in failed["non_finite.p"].reason
    assert "1 " in failed["non_finite.p"].reason


def test_a_non_finite_value_alone_is_refused_naming_the_column(table_5000):
    train, holdout, batch = table_5000
    card = evaluate(_set(batch, "income", 0, float("inf")), train, holdout, FAST, target="default")
    (fault,) = card.failures
    assert fault.check == "contract" and fault.indicator == "non_finite.income"
    assert "income" in fault.reason and "inf" in fault.reason
    assert evaluate(batch, train, holdout, FAST, target="default").passed  # the same batch without it passes


def test_non_finite_values_real_data_has_too_are_judged_by_their_rate(table_5000):
    """Where real_train itself holds inf, a batch at the same rate is no fault; one at ten times the rate is."""
    train, holdout, batch = table_5000
    every = 200
    train = train.with_columns(pl.when(pl.int_range(pl.len()) % every == 0).then(float("inf"))
                               .otherwise(pl.col("income")).alias("income"))
    same = batch.with_columns(pl.when(pl.int_range(pl.len()) % every == 1).then(float("inf"))
                              .otherwise(pl.col("income")).alias("income"))
    card = evaluate(same, train, holdout, FAST, target="default")
    assert card.passed, [f.reason for f in card.failures]
    assert np.isfinite(card.scores["collapse.variance_ratio.income"])  # judged on the finite values
    many = batch.with_columns(pl.when(pl.int_range(pl.len()) % (every // 10) == 1).then(float("inf"))
                              .otherwise(pl.col("income")).alias("income"))
    assert "non_finite.income" in {f.indicator for f in evaluate(many, train, holdout, FAST, target="default").failures}


def test_a_statistic_that_is_not_finite_refuses_with_its_own_reason():
    j = Judge(0.01)
    j.test("collapse", "collapse.variance_ratio.x", float("nan"), 0.9, "below", 0.5, "x lost spread", "Mood")
    j.test("fidelity", "shape.y", 0.95, 0.8, "below", float("nan"), "y differs", "KS")
    card = j.verdict()
    assert not card.passed
    reasons = {f.indicator: f.reason for f in card.failures}
    assert set(reasons) == {"variance_ratio.x", "shape.y"}
    assert "not finite" in reasons["variance_ratio.x"] and "statistic" in reasons["variance_ratio.x"]
    assert "p-value" in reasons["shape.y"]


def test_a_soft_limit_that_cannot_be_measured_warns():
    j = Judge(0.01)
    j.scores["collapse.wasserstein.x"] = float("inf")
    j.warn_above("collapse", "collapse.wasserstein.x", 0.2, "x moved")
    (w,) = j.verdict().warnings
    assert w.indicator == "collapse.wasserstein.x" and "not finite" in w.reason


@pytest.mark.parametrize(("target", "constant"), [("default", "no"), ("p", 1.5)])
def test_a_target_with_one_value_skips_utility_with_the_reason(table_5000, target, constant):
    """A constant prediction's loss is 0 there: skill (1 - loss / 0) is no number; utility is skipped, not crashed."""
    train, holdout, batch = (df.with_columns(pl.lit(constant).alias(target)) for df in table_5000)
    card = evaluate(batch, train, holdout, FAST, target=target)
    assert "utility.skill_retention" in card.skipped
    assert "no skill to keep" in card.skipped["utility.skill_retention"]
    assert "utility.skill_retention" not in {f.indicator for f in card.failures}


def test_a_target_level_real_train_never_showed_is_named_not_mapped_to_a_class(table_5000):
    train, holdout, batch = table_5000
    odd = batch.with_columns(pl.when(pl.int_range(pl.len()) < 40).then(pl.lit("maybe")).otherwise(pl.col("default"))
                             .alias("default"))
    card = evaluate(odd, train, holdout, FAST, target="default")
    assert card.scores["utility.unknown_target_rows.batch"] == 40
    (warning,) = [w for w in card.warnings if w.indicator == "utility.unknown_target_levels.default"]
    assert "maybe" in warning.reason and warning.value == 40
    assert "categories.default" in {f.indicator for f in card.failures}  # 40 unseen-level rows: beyond noise
    assert np.isfinite(card.scores["utility.tstr.skill"])


def test_every_key_score_of_the_evaluate_printout_is_one_the_scorecard_writes(table_5000):
    from pipelines.evaluate import KEY_SCORES, compact

    train, holdout, batch = table_5000
    card = evaluate(batch[:1000], train, holdout, FAST, target="default")
    assert [k for k in KEY_SCORES if k not in card.scores] == []
    assert "utility.skill_gap" in compact(card)


def test_columns_with_a_dot_in_their_name_enter_the_collapse_summaries(table_5000):
    train, holdout, batch = (df.rename({"p": "p.value", "region": "region.code"}) for df in table_5000)
    card = evaluate(_shrunk(batch, "p.value", 0.5), train, holdout, FAST, target="default")
    s = card.scores
    assert s["collapse.variance_ratio_min"] == pytest.approx(s["collapse.variance_ratio.p.value"], abs=1e-12)
    assert s["collapse.variance_ratio.p.value"] < 0.6
    survival = [v for k, v in s.items() if k.startswith("collapse.category_survival.") and not k.endswith("floor")]
    assert s["collapse.category_survival_min"] == min(survival)
    assert "collapse.category_survival.region.code" in s


def test_detection_halves_do_not_follow_row_order(table_5000):
    """A batch whose first half is fresh real rows and second half is broken: with halves by position the
    classifier fits only on good rows and sees the broken ones only when scoring. Shuffled, it is caught."""
    train, holdout, batch = table_5000
    m = 1000
    broken = batch[m:2 * m].with_columns(pl.col("income") * 3, pl.col("count") + 150)
    card = evaluate(pl.concat([batch[:m], broken]), train, holdout, FAST.model_copy(update={"detection_rows": m}),
                    target="default")
    assert card.scores["joint.detection_rows"] == m
    assert card.scores["joint.detection_auc"] > 0.6
