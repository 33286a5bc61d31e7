"""Rebalancing the target (study.target_share): class counts, stratified real rows, the reweighted gate, and a
rebalanced batch from a fitted generator."""

import numpy as np
import polars as pl
import pytest

from ouroboros.config import ConfigError, GateConfig, StudyConfig
from ouroboros.generators import create
from ouroboros.quality import evaluate
from ouroboros.quality.proving import variance_shrunk
from ouroboros.rebalance import class_counts, resolve_shares, sample_rebalanced, stratify
from tests.conftest import DEMO

SHARE = {"dead": 0.3}  # the demo's dead occupants are 4.5% of rows


@pytest.fixture(scope="module")
def parts():
    """real_train, real_holdout and a pool of fresh real rows none of the others holds."""
    df = pl.read_parquet(DEMO).sample(fraction=1.0, shuffle=True, seed=5)
    return df[:8000], df[8000:11000], df[11000:]


def test_resolve_shares_names_the_rest_in_real_proportions():
    y = pl.Series("y", ["a"] * 70 + ["b"] * 20 + ["c"] * 10)
    shares = resolve_shares(y, {"c": 0.5})
    assert shares["c"] == 0.5
    assert shares["a"] == pytest.approx(0.5 * 70 / 90) and shares["b"] == pytest.approx(0.5 * 20 / 90)
    assert sum(shares.values()) == pytest.approx(1.0)
    # YAML keys are text: a boolean or integer target is matched by its text
    assert resolve_shares(pl.Series("y", [True, False, False, False]), {"true": 0.5})[True] == 0.5
    assert resolve_shares(pl.Series("y", [1, 0, 0, 0]), {"1": 0.25})[0] == pytest.approx(0.75)


@pytest.mark.parametrize("share, words", [({"d": 0.5}, "not a level"), ({"c": 1.0}, "between 0 and 1"),
                                          ({"a": 0.6, "b": 0.5}, "sum to less than 1"),
                                          ({"a": 0.5, "b": 0.3, "c": 0.1}, "exactly 1")])
def test_resolve_shares_refuses_what_cannot_be_met(share, words):
    with pytest.raises(ConfigError, match=words) as err:
        resolve_shares(pl.Series("y", ["a", "b", "c", "a"]), share)
    assert "study.target_share" in str(err.value)


def test_a_float_target_cannot_be_rebalanced():
    with pytest.raises(ConfigError, match="float column"):
        resolve_shares(pl.Series("price", [1.5, 2.5]), {"1.5": 0.5})


def test_study_config_takes_target_share():
    assert StudyConfig(name="s", target_share={"yes": 0.5}).target_share == {"yes": 0.5}
    with pytest.raises(ValueError, match="verify"):
        StudyConfig(name="s", target_share={"yes": 0.5}, mitigation=["verify"])


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 1001])
def test_class_counts_add_up_and_follow_the_shares(n):
    shares = {"a": 0.5, "b": 1 / 3, "c": 1 / 6}
    counts = class_counts(n, shares)
    assert sum(counts.values()) == n
    assert all(abs(counts[k] - n * s) < 1 for k, s in shares.items())


def test_stratify_keeps_the_most_rows_with_exactly_the_mix(parts):
    train, _, _ = parts
    shares = resolve_shares(train["outcome"], SHARE)
    dead = int((train["outcome"] == "dead").sum())
    indexed = stratify(train.with_row_index("i"), "outcome", shares, seed=1)
    out = indexed.drop("i")
    assert int((out["outcome"] == "dead").sum()) == dead  # the scarce class is kept whole
    assert out.height == int(np.floor(dead / 0.3 + 1e-9))
    assert (out["outcome"] == "dead").mean() == pytest.approx(0.3, abs=1 / out.height)
    rows = indexed["i"].to_list()
    assert rows == sorted(set(rows)) and train[rows].equals(out)  # real rows, each once, in their order
    assert stratify(train, "outcome", shares, seed=1).equals(out)  # seeded


def _fresh_rebalanced(pool: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """n fresh real rows with the rebalanced mix: what a perfect generator with target_share would give."""
    counts = class_counts(n, resolve_shares(pool["outcome"], SHARE))
    return pl.concat([pool.filter(pl.col("outcome") == k).sample(c, seed=seed) for k, c in counts.items()]) \
        .sample(fraction=1.0, shuffle=True, seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fresh_real_rows_rebalanced_pass_the_reweighted_gate(parts, seed):
    train, holdout, pool = parts
    batch = _fresh_rebalanced(pool, 800, seed)
    card = evaluate(batch, train, holdout, GateConfig(), target="outcome", target_share=SHARE)
    assert card.passed, [f"{f.indicator} {f.value} {f.threshold}" for f in card.failures]


def test_without_reweighting_the_same_rebalanced_rows_are_refused(parts):
    train, holdout, pool = parts
    card = evaluate(_fresh_rebalanced(pool, 800, 0), train, holdout, GateConfig(), target="outcome")
    assert not card.passed
    assert any("outcome" in f.indicator for f in card.failures)


def test_a_bad_rebalanced_batch_is_still_refused(parts):
    train, holdout, pool = parts
    fresh = _fresh_rebalanced(pool, 800, 0)
    bad = variance_shrunk(fresh, train, fresh.height, "outcome", 0)
    card = evaluate(bad, train, holdout, GateConfig(), target="outcome", target_share=SHARE)
    assert not card.passed


def test_sample_rebalanced_gives_exact_counts(parts):
    train, _, _ = parts
    gen = create("copula", seed=0).fit(train)
    shares = resolve_shares(train["outcome"], SHARE)
    batch = sample_rebalanced(gen, 1000, 3, "outcome", shares)
    assert batch.height == 1000 and batch.columns == train.columns
    assert int((batch["outcome"] == "dead").sum()) == 300
    assert batch["outcome"][:300].n_unique() == 2  # shuffled: the classes are not in blocks
    assert sample_rebalanced(gen, 1000, 3, "outcome", shares).equals(batch)


def test_draw_batch_is_plain_sampling_without_target_share(parts):
    from ouroboros.rebalance import draw_batch

    train, _, _ = parts
    gen = create("copula", seed=0).fit(train)
    assert draw_batch(gen, 200, 5, "outcome", None, train["outcome"]).equals(gen.sample(200, seed=5))
    with pytest.raises(ConfigError, match="data.target"):
        draw_batch(gen, 200, 5, None, SHARE, None)
