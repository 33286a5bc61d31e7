"""Tables of other shapes than the demo go through fitting, sampling and the gate without a crash."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ouroboros.generators import create
from ouroboros.quality import evaluate
from ouroboros.split import train_holdout_split

N = 400


def _tables() -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(0)
    start = pl.datetime(2021, 1, 1)
    return {
        "only_categorical": pl.DataFrame({"a": rng.choice(["x", "y"], N), "b": rng.choice(["p", "q", "r"], N)}),
        "only_numeric": pl.DataFrame({"a": rng.normal(size=N), "b": rng.integers(0, 5, N)}),
        "single_column": pl.DataFrame({"a": rng.normal(size=N)}),
        "boolean_target": pl.DataFrame({"a": rng.normal(size=N), "t": rng.random(N) > 0.5}),
        "datetime_with_zone": pl.DataFrame({
            "a": rng.normal(size=N),
            "ts": pl.datetime_range(start, start + pl.duration(hours=N - 1), "1h", eager=True, time_zone="UTC")}),
        "all_null_string": pl.DataFrame({"a": rng.normal(size=N), "s": pl.Series([None] * N, dtype=pl.String)}),
        "categorical_dtype": pl.DataFrame({"a": rng.normal(size=N),
                                           "c": pl.Series(rng.choice(["u", "v"], N)).cast(pl.Categorical)}),
        "twelve_rows": pl.DataFrame({"a": rng.normal(size=12), "c": rng.choice(["u", "v"], 12)}),
    }


@pytest.mark.parametrize("name", sorted(_tables()))
def test_copula_and_gate_handle_table(name):
    df = _tables()[name]
    train, holdout = train_holdout_split(df, 0.4, seed=0)  # 12 rows: 0.25 leaves the holdout empty 3% of splits
    synthetic = create("copula", seed=0).fit(train).sample(train.height, seed=1)
    assert synthetic.schema == train.schema
    card = evaluate(synthetic, train, holdout, target=df.columns[-1])
    assert isinstance(card.passed, bool)
    assert card.scores and all(isinstance(v, float) for v in card.scores.values())
    assert {f.check for f in card.failures} <= {"contract", "fidelity", "privacy", "collapse"}
