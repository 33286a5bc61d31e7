"""Column shapes real tables have, through every family, scored by the gate's own column tests (issue 18 item 1).

One table at 5,000 training rows (`proving.spiky_table` plus a heavy-tailed column): hours with 47% of rows at
exactly 40, an amount 92% zeros with 0.48% at its cap of 99,999, a count 74% zeros, an 85%-null column that
depends on age, a lognormal weight and a Pareto-tailed claim amount. Each family is fitted for a few epochs
and its 5,000 sampled rows are held to:

- the gate's per-column tests (shape, tail mass, nulls) on the shaped columns: none refuses;
- every point mass, zero share and null share within four binomial standard errors of the real share
  (fresh real rows of this size stay inside it: the test on `real` rows below checks that);
- integer columns integer-valued, the heavy tail present (rows beyond the real 99th percentile).

The variance ratio is not asserted on: its effect size is being changed to a robust spread measure (issue 18
item 2); the gate's tail-mass test stays.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ouroboros.config import GateConfig
from ouroboros.generators import create
from ouroboros.quality.gate_collapse import score_collapse
from ouroboros.quality.gate_fidelity import score_shapes
from ouroboros.quality.gate_schema import score_schema
from ouroboros.quality.judge import Judge
from ouroboros.quality.proving import spiky_table
from ouroboros.quality.scorecard import gate_view

ROWS = 5000
EPOCHS = 30  # enough for these shapes on one core (each fit a few seconds); not tuned to pass
FAMILIES = {
    "copula": {},
    "vae": {"epochs": EPOCHS},
    "gan": {"epochs": EPOCHS},
    "diffusion": {"epochs": EPOCHS},
}
SHAPED = ["hours", "gain", "voicemail", "joint_income", "weight", "claim"]
# (column, value, what): point masses whose share must come back
MASSES = [("hours", 40, "spike inside a continuous column"), ("gain", 0, "zero inflation"),
          ("gain", 99_999, "a rare cap"), ("voicemail", 0, "zero-inflated count")]


def _table(seed: int) -> pl.DataFrame:
    df = spiky_table(2 * ROWS, seed)
    rng = np.random.default_rng(seed + 1)
    return df.with_columns(claim=pl.Series((rng.pareto(1.6, df.height) + 1.0) * 500.0))  # infinite variance


@pytest.fixture(scope="module")
def data():
    df = _table(0)
    return df[:ROWS], df[ROWS:]


_BATCHES: dict = {}


def _batch(family: str, data) -> pl.DataFrame:
    train, holdout = data
    if family not in _BATCHES:
        if family == "real":  # fresh real rows: what honest data of this size scores
            _BATCHES[family] = _table(7)[:ROWS]
        else:
            _BATCHES[family] = create(family, seed=0, **FAMILIES[family]).fit(train).sample(ROWS, seed=1)
    return _BATCHES[family]


def _tolerance(p: float) -> float:
    """Four standard errors of the difference of two binomial shares of ROWS rows each."""
    return 4.0 * np.sqrt(2 * max(p * (1 - p), 1e-4) / ROWS)


@pytest.mark.parametrize("family", ["real", *FAMILIES])
def test_gate_column_tests_pass_on_every_shape(family, data):
    train, holdout = data
    syn, tr, ho, schema = gate_view(_batch(family, data), train, holdout, None, ())
    j = Judge(GateConfig().false_refusal_rate)
    assert score_schema(j, syn, tr, ho, schema, GateConfig())
    score_shapes(j, syn, tr, ho, schema, GateConfig())
    score_collapse(j, syn, tr, ho, schema, GateConfig())
    card = j.verdict()
    refused = sorted(f.indicator for f in card.failures
                     if any(f.indicator.endswith(f".{c}") for c in SHAPED) and "variance_ratio" not in f.indicator)
    assert refused == [], f"{family}: the gate's column tests refused {refused}"


@pytest.mark.parametrize("family", ["real", *FAMILIES])
def test_point_masses_zeros_and_nulls_keep_their_share(family, data):
    train, _ = data
    batch = _batch(family, data)
    for column, value, what in MASSES:
        real = float((train[column] == value).mean())
        got = float((batch[column] == value).mean())
        assert abs(got - real) <= _tolerance(real), f"{family}: {what} ({column} == {value}) {got:.4f} vs {real:.4f}"
        assert got > 0, f"{family}: {what} ({column} == {value}) vanished"
    real_null = train["joint_income"].null_count() / ROWS
    got_null = batch["joint_income"].null_count() / ROWS
    assert abs(got_null - real_null) <= _tolerance(real_null), f"{family}: null share {got_null:.3f} vs {real_null:.3f}"


@pytest.mark.parametrize("family", ["real", *FAMILIES])
def test_counts_stay_integer_and_heavy_tails_stay_heavy(family, data):
    train, _ = data
    batch = _batch(family, data)
    for column in ("hours", "voicemail", "age", "weight"):
        x = batch[column].drop_nulls().to_numpy().astype(float)
        assert np.all(x == np.round(x)), f"{family}: {column} has non-integer values"
    for column in ("claim", "gain"):
        q99 = train[column].quantile(0.99)
        beyond = float((batch[column] > q99).mean())
        assert beyond >= 0.004, f"{family}: only {beyond:.4f} of {column} beyond the real 99th percentile"


@pytest.mark.parametrize("family", ["real", *FAMILIES])
def test_a_mostly_null_column_keeps_its_association(family, data):
    """The 85%-null column depends on age (Spearman 0.97 among its observed rows): modelled jointly, not apart."""
    train, _ = data
    batch = _batch(family, data)

    def rho(df: pl.DataFrame) -> float:
        d = df.drop_nulls(["joint_income"])
        return float(np.corrcoef(d["age"].rank().to_numpy(), d["joint_income"].rank().to_numpy())[0, 1])

    assert rho(batch) >= rho(train) - 0.25, f"{family}: association {rho(batch):.2f} vs {rho(train):.2f} real"
