"""Derived columns (ouroboros/generators/derived.py): a column that is an exact function of another is computed.

Real tables carry transforms of their own columns (randhie: linc = log(income), lnmeddol = log(meddol) null at
0, coins fixed by plan; caravan: the main type fixed by the subtype; anes96: logpopul = log(popul)). Modelled,
the pair breaks the function on most rows and a classifier separates synthetic rows by that alone (randhie's
meddol|lnmeddol pair alone: detection AUC 0.958 under the copula, 0.505 derived). Here one table of that shape
(a lognormal amount and its log, null where the amount is 0; a 12-level subtype and its 4-level main type; an
age and `age < 18`) through the copula and the VAE: the function holds on every synthetic row, and the gate's
column tests do not refuse the derived columns. And what is no function (a noisy copy; a small sample) is
modelled as before.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ouroboros.config import GateConfig
from ouroboros.generators import create, load
from ouroboros.generators.derived import derive, find_derived
from ouroboros.quality.gate_fidelity import score_shapes
from ouroboros.quality.gate_schema import score_schema
from ouroboros.quality.judge import Judge
from ouroboros.quality.scorecard import gate_view
from ouroboros.schema import infer_schema

ROWS = 3000
MAIN = {f"s{i}": f"m{i % 4}" for i in range(12)}


def _table(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    amount = np.where(rng.random(n) < 0.3, 0.0, np.round(rng.lognormal(5, 1, n), 2))
    sub = rng.choice(list(MAIN), n)
    age = rng.integers(0, 90, n)
    return pl.DataFrame({
        "amount": amount,
        "lnamount": [float(np.log(a)) if a > 0 else None for a in amount],
        "subtype": sub,
        "maintype": [MAIN[s] for s in sub],
        "age": age,
        "child": (age < 18).astype(np.int64),
        "noisy": amount + rng.normal(0, 1, n),  # near the amount, but not a function of it
        "score": rng.normal(0, 1, n) + 0.01 * age,
    })


@pytest.fixture(scope="module")
def data():
    df = _table(2 * ROWS, 0)
    return df[:ROWS], df[ROWS:]


def test_finds_transforms_recodes_and_thresholds_not_noise(data):
    train, _ = data
    found = {(d.name, d.parent, d.how) for d in find_derived(train, infer_schema(train))}
    assert ("lnamount", "amount", "monotone") in found
    assert ("maintype", "subtype", "lookup") in found
    assert ("child", "age", "monotone") in found or ("child", "age", "lookup") in found
    assert not {d for d in found if d[0] in ("noisy", "score", "amount", "subtype", "age")}, found


def test_a_small_sample_is_not_read_as_a_function():
    # 30 rows of two independent 12-level columns: a lookup needs ROWS_PER_KEY rows per parent value
    rng = np.random.default_rng(3)
    df = pl.DataFrame({"a": rng.integers(0, 12, 30), "b": rng.integers(0, 12, 30)})
    assert find_derived(df, infer_schema(df)) == []


def test_dates_and_decimals_take_no_part_and_the_generator_saves(tmp_path):
    # a quarter fixed by a month date: a lookup on a date would be matched by text and saved as JSON, which holds
    # no date; the pair stays modelled, and the fitted generator saves and loads
    import datetime as dt

    rng = np.random.default_rng(5)
    months = [dt.date(2020, m, 1) for m in range(1, 13)]
    pick = rng.integers(0, 12, 2000)
    df = pl.DataFrame({"month": [months[i] for i in pick], "quarter": [(months[i].month - 1) // 3 + 1 for i in pick],
                       "x": rng.normal(size=2000)})
    assert find_derived(df, infer_schema(df)) == []
    gen = create("copula", seed=0).fit(df)
    gen.save(tmp_path / "g")
    assert load(tmp_path / "g").sample(20, seed=1).schema == df.schema
    # and a Decimal price fixing a count: JSON holds no Decimal either
    from decimal import Decimal

    dec = pl.DataFrame({"n": pick, "price": pl.Series([Decimal(int(v)) * Decimal("1.50") for v in pick],
                                                      dtype=pl.Decimal(10, 2)), "x": df["x"]})
    assert find_derived(dec, infer_schema(dec)) == []
    create("copula", seed=0).fit(dec).save(tmp_path / "d")
    assert load(tmp_path / "d").sample(20, seed=1).schema == dec.schema


def test_derive_maps_unseen_values_to_the_nearest_point(data):
    train, _ = data
    cols = find_derived(train, infer_schema(train))
    out = derive(pl.DataFrame({"amount": [0.0, 148.4132], "subtype": ["s5", "s5"], "age": [17.4, 18.2]}),
                 [d for d in cols if d.name in ("lnamount", "maintype", "child")])
    assert out["lnamount"][0] is None and abs(out["lnamount"][1] - 5.0) < 0.01
    assert out["maintype"].to_list() == ["m1", "m1"]
    assert out["child"].to_list() == [1, 0]


@pytest.mark.parametrize("family,params", [("copula", {}), ("vae", {"epochs": 10})])
def test_the_function_holds_on_every_synthetic_row(family, params, data, tmp_path):
    train, holdout = data
    gen = create(family, seed=0, **params).fit(train)
    assert {d.name for d in gen.derived} >= {"lnamount", "maintype"}
    assert "lnamount" not in gen.inner.schema.names  # not modelled
    syn = gen.sample(ROWS, seed=1)
    assert syn.columns == train.columns and syn.schema == train.schema
    # below the smallest real positive amount the nearest real point may be the 0 (null): the rule, not a fault
    pos = syn.filter(pl.col("amount") >= train.filter(pl.col("amount") > 0)["amount"].min())
    np.testing.assert_allclose(pos["lnamount"].to_numpy(), np.log(pos["amount"].to_numpy()), atol=0.05)
    assert syn.filter(pl.col("amount") == 0)["lnamount"].null_count() == syn.filter(pl.col("amount") == 0).height
    assert syn.select("subtype", "maintype").unique().height == 12
    assert all(MAIN[s] == m for s, m in syn.select("subtype", "maintype").unique().rows())
    assert ((syn["age"] < 18).cast(pl.Int64) == syn["child"]).all()
    # the gate's column tests on the derived columns
    g, tr, ho, schema = gate_view(syn, train, holdout, None, ())
    j = Judge(GateConfig().false_refusal_rate)
    assert score_schema(j, g, tr, ho, schema, GateConfig())
    score_shapes(j, g, tr, ho, schema, GateConfig())
    refused = [f.indicator for f in j.verdict().failures
               if any(f.indicator.endswith(f".{c}") for c in ("lnamount", "maintype", "child"))]
    assert refused == []
    # saved and loaded, it still derives
    gen.save(tmp_path / "g")
    again = load(tmp_path / "g").sample(50, seed=2)
    assert all(MAIN[s] == m for s, m in again.select("subtype", "maintype").rows())


def test_a_condition_on_a_derived_column_is_met(data):
    train, _ = data
    gen = create("copula", seed=0).fit(train)
    out = gen.sample(200, seed=3, conditions={"maintype": "m2"})
    assert out.height == 200 and (out["maintype"] == "m2").all()
    assert out["subtype"].is_in(["s2", "s6", "s10"]).all()


def test_no_derivation_under_differential_privacy():
    gen = create("vae", seed=0, epochs=1, dp={"epsilon": 10.0, "delta": 1e-5})
    df = _table(600, 1)
    try:
        gen.fit(df)
    except Exception as err:  # noqa: BLE001 - the DP settings are not what this asserts on
        pytest.skip(f"dp fit unavailable here: {err}")
    assert gen.derived == []
