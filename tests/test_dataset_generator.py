"""The dataset generator: a tiny fit gives a dataset whose keys resolve and whose sequences are ordered."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ouroboros.dataset import TableSpec, validate_dataset
from ouroboros.generators.children import DatasetGenerator
from ouroboros.quality.gate_dataset import integrity_checks, judge_dataset
from tests.relational_data import draw


def test_tiny_fit_gives_valid_integrity_and_ordered_sequences():
    real = draw(300, seed=3)
    syn = DatasetGenerator(family="copula", seed=0).fit(real).sample(200, seed=1)
    p, v = syn.tables["patients"], syn.tables["visits"]
    assert p.height == 200 and p["patient_id"].n_unique() == 200 and v["visit_id"].n_unique() == v.height
    assert all(c.passed for c in integrity_checks(syn))
    assert v.columns == real.tables["visits"].columns and p.columns == real.tables["patients"].columns
    # days increase within each patient (gaps are drawn non-negative and accumulated)
    assert v.group_by("patient_id").agg((pl.col("day").diff().drop_nulls() >= 0).all())["day"].all()
    # the count model follows the parent: older patients have more visits, as in the real process
    n = p.join(v.group_by("patient_id").len(), on="patient_id", how="left").fill_null(0)
    assert np.corrcoef(n["age"], n["len"])[0, 1] > 0.2
    # same seed, same dataset
    again = DatasetGenerator(family="copula", seed=0).fit(real).sample(200, seed=1)
    assert again.tables["visits"].equals(v)


def test_plain_children_without_order():
    parent = pl.DataFrame({"id": [1, 2, 3, 4] * 10, "x": np.arange(40.0)}).with_columns(pl.int_range(40).alias("id"))
    kids = pl.DataFrame({"cid": range(80), "id": np.repeat(np.arange(40), 2), "y": np.arange(80.0)})
    ds = validate_dataset({"p": parent, "c": kids}, {"p": TableSpec("id"), "c": TableSpec("cid", "p")})
    syn = DatasetGenerator().fit(ds).sample(30, seed=0)
    assert all(c.passed for c in integrity_checks(syn)) and syn.tables["c"].height > 0


def three_levels(n: int, seed: int):
    """Customers, their accounts, the accounts' transactions: an account's balance sets how many transactions it
    has and how large they are; a customer's age sets how many accounts."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    n_acc = rng.poisson(age / 25)
    acc_owner = np.repeat(np.arange(n), n_acc)
    balance = rng.lognormal(2 + age[acc_owner] / 60, 0.4)
    n_tx = rng.poisson(balance / 3)
    tx_account = np.repeat(np.arange(len(balance)), n_tx)
    amount = balance[tx_account] * rng.uniform(0.05, 0.3, len(tx_account))
    tables = {"customers": pl.DataFrame({"customer_id": np.arange(n), "age": age}),
              "accounts": pl.DataFrame({"account_id": np.arange(len(balance)), "customer_id": acc_owner,
                                        "balance": balance}),
              "transactions": pl.DataFrame({"tx_id": np.arange(len(amount)), "account_id": tx_account,
                                            "amount": amount})}
    specs = {"customers": TableSpec("customer_id"), "accounts": TableSpec("account_id", "customers"),
             "transactions": TableSpec("tx_id", "accounts")}
    return validate_dataset(tables, specs)


def _per_account(ds):
    tx = ds.tables["transactions"].group_by("account_id").agg(pl.len().alias("n"), pl.col("amount").mean())
    acc = ds.tables["accounts"].join(tx, on="account_id", how="left").with_columns(pl.col("n").fill_null(0))
    return acc


def test_grandchildren_are_drawn_given_their_parent_row_and_saved_whole(tmp_path):
    """A table below a child (transactions of accounts of customers): each synthetic account is drawn with its
    number of transactions, and those transactions given the account, so the account-level links survive."""
    from scipy import stats

    from ouroboros.generators.children import load_dataset_generator

    real = three_levels(1500, seed=1)
    gen = DatasetGenerator("copula", seed=0).fit(real)
    syn = gen.sample(1500, seed=2)
    assert all(c.passed for c in integrity_checks(syn))
    assert not any(c.startswith("__") for t in syn.order for c in syn.tables[t].columns)
    r, s_ = _per_account(real), _per_account(syn)
    # transactions per account follow the account's balance, in the synthetic data as in the real
    rho_real = stats.spearmanr(r["balance"], r["n"]).statistic
    rho_syn = stats.spearmanr(s_["balance"], s_["n"]).statistic
    assert rho_real > 0.5 and abs(rho_syn - rho_real) < 0.15, (rho_real, rho_syn)
    # and the transactions' size follows the account they belong to (lost if they were matched to any account)
    both = s_.drop_nulls("amount")
    assert stats.spearmanr(both["balance"], both["amount"]).statistic > 0.5
    ratio = syn.tables["transactions"].height / real.tables["transactions"].height
    assert 0.8 < ratio < 1.25
    again = load_dataset_generator(gen.save(tmp_path / "g")).sample(1500, seed=2)
    assert all(again.tables[t].equals(syn.tables[t]) for t in syn.order)
    # the dataset gate judges both links of the tree
    names = {c.name.split(":")[0] + ":" + c.name.split(":")[1] for c in judge_dataset(syn, real, three_levels(
        500, seed=3)).checks if c.name.startswith("children_per_parent")}
    assert names == {"children_per_parent:customers->accounts", "children_per_parent:accounts->transactions"}


def test_copula_dataset_generator_passes_the_dataset_gate_on_the_test_process():
    """Measured: the copula-based generator's 2,000 entities pass every link check against 2,250 real_train
    entities (one seed; with one model for first events and one for later ones)."""
    from ouroboros.entity_split import entity_split  # noqa: PLC0415
    from ouroboros.quality.gate_dataset import judge_dataset  # noqa: PLC0415

    train, hold = entity_split(draw(3000, seed=100), 0.25, 0)
    syn = DatasetGenerator(family="copula").fit(train).sample(2000, seed=1)
    verdict = judge_dataset(syn, train, hold)
    assert verdict.passed, [(c.name, c.statistic, c.real) for c in verdict.failed]


def test_demo_dataset_loads_and_its_holdout_passes_the_gate():
    from ouroboros.demo_dataset import demo_dataset  # noqa: PLC0415
    from ouroboros.entity_split import entity_split  # noqa: PLC0415
    from ouroboros.quality.gate_dataset import judge_dataset  # noqa: PLC0415

    ds = demo_dataset()
    assert ds.tables["students"].height == 1721 and ds.tables["student_years"].height == 7230
    train, hold = entity_split(ds, 0.3, 0)
    assert judge_dataset(hold, train, hold).passed  # fresh real pupils (the holdout) against real_train


@pytest.mark.parametrize("family", ["vae", "gan", "diffusion"])
def test_neural_families_drive_the_dataset_generator(family):
    """Only fit/sample are used, so the torch families work too (2 epochs: integrity only, not quality)."""
    syn = DatasetGenerator(family=family, params={"epochs": 2}).fit(draw(300, seed=3)).sample(100, seed=1)
    assert all(c.passed for c in integrity_checks(syn)) and syn.tables["visits"].height > 0
