"""The stable train/holdout split: a row's side is a function of the row (or its key), never of the table."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import polars as pl
import pytest

from ouroboros.split import SplitError, class_balance, holdout_mask, row_unit, train_holdout_split


def awkward(n: int, seed: int) -> pl.DataFrame:
    """Floats with -0.0 and nulls, tz-aware datetimes, dates, booleans, unicode and dotted names, repeats."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = -0.0
    return pl.DataFrame({
        "x y": pl.Series(x).set(pl.Series(rng.random(n) < 0.1), None),
        "n.count": rng.integers(0, 5, n),  # few values: many rows repeat exactly
        "größe": rng.choice(["ä", "b c", "", "日本"], n),
        "flag": rng.random(n) < 0.3,
        "when": [datetime(2024, 1, 1, tzinfo=timezone.utc).replace(hour=int(h)) for h in rng.integers(0, 3, n)],
        "day": [date(2020, 1, 1 + int(d)) for d in rng.integers(0, 3, n)],
        "y": rng.choice(["yes", "no", "rare"], n, p=[0.6, 0.37, 0.03]),
    })


def _counts(df: pl.DataFrame) -> dict[int, int]:
    """Copies of each distinct row (rows are identified by content; repeats count one by one)."""
    return dict(zip(*df.hash_rows(seed=1).value_counts().to_dict(as_series=False).values()))


def moved_rows(versions: list[pl.DataFrame], split) -> int:
    """Rows that left real_train for a later real_holdout: copies of a row in train that later versions lack."""
    moved, before = 0, {}
    for table in versions:
        train, _ = split(table)
        now = _counts(train)
        moved += sum(max(0, n - now.get(h, 0)) for h, n in before.items())
        before = now
    return moved


def permutation_split(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The old rule: a seeded random draw over today's table."""
    mask = pl.Series(np.random.default_rng(0).permutation(df.height) < int(df.height * 0.25))
    return df.filter(~mask), df.filter(mask)


def test_no_row_ever_in_train_is_in_a_later_holdout_as_the_table_grows():
    versions = [awkward(400, 0)]
    for i, extra in enumerate((37, 250, 1, 600)):  # appends of every size, some repeating earlier rows exactly
        new = awkward(extra, i + 1)
        repeats = versions[-1].sample(n=min(extra, 20), seed=i)
        versions.append(pl.concat([versions[-1], new, repeats]))
    assert moved_rows(versions, lambda t: train_holdout_split(t, 0.25, seed=0)) == 0
    assert moved_rows(versions, permutation_split) > 50  # the test has teeth: a fresh draw per version leaks
    # a table of few distinct rows (2 x 3 categories, 400 rows) is still split near the fraction
    few = pl.DataFrame({"a": np.resize(["x", "y"], 400), "b": np.resize(["p", "q", "r"], 400)})
    assert 60 < train_holdout_split(few, 0.25, seed=0)[1].height < 140
    # and the holdout of each version is exactly the previous holdout plus some of the appended rows
    for before, after in zip(versions, versions[1:]):
        held_before = train_holdout_split(before, 0.25, seed=0)[1]
        held_after = train_holdout_split(after, 0.25, seed=0)[1]
        assert held_after.head(held_before.height).equals(held_before)


def test_side_depends_on_values_only_not_on_order_or_neighbours():
    df = awkward(300, 3)
    mask = holdout_mask(df, 0.3, seed=5)
    shuffled_columns = df.select(list(reversed(df.columns)))
    np.testing.assert_array_equal(holdout_mask(shuffled_columns, 0.3, seed=5), mask)
    order = np.random.default_rng(0).permutation(df.height)  # identical copies may trade numbers, nothing else
    np.testing.assert_array_equal(np.sort(row_unit(df[order.tolist()], 5)), np.sort(row_unit(df, 5)))
    unique = df.unique(maintain_order=True)
    np.testing.assert_array_equal(holdout_mask(unique[order[order < unique.height].tolist()], 0.3, 5),
                                  holdout_mask(unique, 0.3, 5)[order[order < unique.height]])
    np.testing.assert_array_equal(holdout_mask(df.head(10), 0.3, seed=5), mask[:10])
    # -0.0 and 0.0 are one value; the copies of a repeated row are numbered, so they split like other rows
    assert row_unit(pl.DataFrame({"a": [0.0]}), 0) == row_unit(pl.DataFrame({"a": [-0.0]}), 0)
    copies = pl.DataFrame({"a": ["x"] * 400 + ["y"] * 400})
    assert 0.2 < holdout_mask(copies, 0.3, seed=0).mean() < 0.4
    np.testing.assert_array_equal(holdout_mask(copies.head(10), 0.3, 0), holdout_mask(copies, 0.3, 0)[:10])
    assert not np.array_equal(holdout_mask(df, 0.3, seed=6), mask)  # another seed is another rule


def test_key_decides_the_side_and_keeps_a_key_together():
    rng = np.random.default_rng(1)
    customers = [f"C{i:04d}" for i in rng.integers(0, 200, 1000)]
    df = pl.DataFrame({"customer": customers, "amount": rng.normal(size=1000)})
    train, holdout = train_holdout_split(df, 0.2, seed=0, key="customer")
    assert not set(train["customer"]) & set(holdout["customer"])  # no customer on both sides
    edited = df.with_columns(pl.col("amount") * 3)  # a corrected value does not move its row
    np.testing.assert_array_equal(holdout_mask(edited, 0.2, 0, key="customer"), holdout_mask(df, 0.2, 0, key="customer"))
    assert not np.array_equal(holdout_mask(edited, 0.2, 0), holdout_mask(df, 0.2, 0))  # content hashing would
    two = holdout_mask(df, 0.2, 0, key=["customer", "amount"])
    assert 0.1 < two.mean() < 0.3
    with pytest.raises(SplitError, match=r"data.key names column\(s\) \['client'\]"):
        train_holdout_split(df, 0.2, 0, key="client")
    with pytest.raises(SplitError, match="data.key column 'customer' has 1 null value"):
        train_holdout_split(df.with_columns(pl.Series("customer", [None, *customers[1:]])), 0.2, 0, key="customer")


def test_every_class_is_split_at_the_fraction_within_binomial_noise(demo):
    train, holdout = train_holdout_split(demo, 0.2, seed=0)
    assert train.height + holdout.height == demo.height
    balance = class_balance(train, holdout, "outcome")
    assert {b["class"] for b in balance} == {"alive", "dead"}
    for b in balance:
        n = b["train"] + b["holdout"]
        assert abs(b["holdout_share"] - 0.2) < 4 * np.sqrt(0.2 * 0.8 / n), b  # stratified in expectation


def test_bad_splits_are_refused_with_the_setting_named():
    with pytest.raises(SplitError, match="holdout_fraction"):
        train_holdout_split(awkward(10, 0), 1.5, seed=0)
    with pytest.raises(SplitError, match="left real_holdout empty"):
        train_holdout_split(pl.DataFrame({"a": [1, 2]}), 0.01, seed=0)
    with pytest.raises(SplitError, match="1 row"):
        train_holdout_split(pl.DataFrame({"a": [1]}), 0.2, seed=0)
