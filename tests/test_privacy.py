"""Differential privacy: the DP-SGD step, the accountant's ε, private encoder statistics, the gate's ε limit,
the chain's ε and the membership attack. Tiny seeded tables, few steps."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
import torch
from opacus.accountants import RDPAccountant
from torch import nn

from ouroboros.generators import GeneratorError, create, load
from ouroboros.privacy.chain import chain_entry
from ouroboros.privacy.clipping import GhostClipper, PrivateOptimizer
from ouroboros.privacy.gate import apply_epsilon_limit
from ouroboros.privacy.training import ALPHAS
from ouroboros.quality.membership import dp_advantage_bound, membership_attack
from ouroboros.quality.scorecard import Scorecard


def awkward_table(n: int = 300, seed: int = 0) -> pl.DataFrame:
    """Mixed kinds with nulls, an unusual column name, and one category held by a single row."""
    rng = np.random.default_rng(seed)
    x = rng.lognormal(3, 1, n)
    x[rng.random(n) < 0.1] = np.nan
    names = rng.choice(["north", "south", "east"], n, p=[0.6, 0.3, 0.1]).tolist()
    names[17] = "Jane Q. Rareperson"  # in one real row only
    return pl.DataFrame({
        "amount €": pl.Series(x, nan_to_null=True),
        "visits": pl.Series(rng.integers(0, 6, n), dtype=pl.Int16),
        "region": names,
        "flag": (rng.random(n) < 0.2).tolist(),
        "when": pl.Series(rng.integers(1_600_000_000, 1_700_000_000, n) * 1_000_000).cast(pl.Datetime("us")),
    })


# -- the DP-SGD step -------------------------------------------------------------------------------------------

class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(7, 4, mode="sum")
        self.lin = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x, ids):
        return self.out(torch.tanh(self.lin(x) + self.bag(ids)))


def test_clipped_sum_equals_explicit_per_row_gradients():
    """The ghost norms and clipped sum match per-row gradients computed one row at a time (noise off)."""
    torch.manual_seed(0)
    model = _Tiny()
    x, ids = torch.randn(6, 3) * 3, torch.tensor([[0, 3], [1, 4], [2, 2], [0, 5], [1, 6], [2, 3]])
    y = torch.randn(6, 1)
    clip = 0.5
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(6):
        model.zero_grad()
        ((model(x[i:i + 1], ids[i:i + 1]) - y[i:i + 1]) ** 2).sum().backward()
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
        for n, p in model.named_parameters():
            expected[n] += p.grad * min(1.0, clip / (norm.item() + 1e-6))
    opt = PrivateOptimizer(torch.optim.SGD(model.parameters(), lr=0.0), GhostClipper("tiny", model), clip, 0.0, 6)
    loss = ((model(x, ids) - y) ** 2).mean()
    opt.zero_grad()  # between forward and backward, as the generators' loops do
    loss.backward()
    opt.step()
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad * 6, expected[n], atol=1e-5), n


def test_private_layers_are_restricted():
    with pytest.raises(GeneratorError, match="BatchNorm1d"):
        GhostClipper("critic", nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))


# -- fits ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["vae", "diffusion", "gan"])
def test_dp_fit_reports_the_epsilon_its_accountant_computed(family, tmp_path):
    df = awkward_table()
    gen = create(family, seed=1, epochs=2, batch_size=60, dp={"epsilon": 2.0, "max_grad_norm": 0.5}).fit(df)
    p = gen.privacy
    assert p["epsilon_requested"] == 2.0 and p["max_grad_norm"] == 0.5
    assert p["delta"] == min(1e-5, 1 / df.height)
    assert p["steps"] == 2 * round(df.height / 60) and p["sample_rate"] == pytest.approx(60 / df.height)
    # recompute the training ε from the reported noise, sampling rate and steps with Opacus' accountant
    acc = RDPAccountant()
    acc.history = [(p["noise_multiplier"], p["sample_rate"], p["steps"])]
    train_delta = p["delta"] / 2  # half of δ goes to the noisy encoder statistics
    assert p["epsilon_training"] == pytest.approx(acc.get_epsilon(delta=train_delta, alphas=ALPHAS), rel=1e-6)
    assert p["epsilon_spent"] == pytest.approx(p["epsilon_training"] + p["epsilon_preprocessing"])
    assert p["epsilon_spent"] <= 2.0 + 1e-9 and p["epsilon_spent"] > 1.9  # the budget is used, not exceeded
    assert p["private_modules"] == (["critic"] if family == "gan" else ["model"])
    # the report travels with the saved generator
    again = load(gen.save(tmp_path / family))
    assert again.privacy == p and again.sample(20, seed=3).height == 20


def test_smaller_epsilon_adds_more_noise():
    df = awkward_table()
    sigma = {eps: create("vae", seed=0, epochs=2, batch_size=60, dp={"epsilon": eps}).fit(df).privacy["noise_multiplier"]
             for eps in (1.0, 8.0)}
    assert sigma[1.0] > 2 * sigma[8.0]


def test_undeclared_rare_category_does_not_leak(tmp_path):
    df = awkward_table()
    gen = create("vae", seed=0, epochs=2, batch_size=60, dp={"epsilon": 3.0}).fit(df)
    rows = gen.sample(3000, seed=5)
    assert "Jane Q. Rareperson" not in rows["region"].to_list()
    assert set(rows["region"].drop_nulls()) <= {"north", "south", "east"}
    # nor in the saved artefact (schema, encoder, params)
    folder = gen.save(tmp_path / "g")
    assert not any("Rareperson" in f.read_text(errors="ignore") for f in folder.iterdir() if f.suffix == ".json")
    # the exact real extremes are not kept either: the released range is a coarse noisy bin edge
    real_max = df["amount €"].max()
    assert gen.schema.column("amount €").max != real_max


def test_declared_public_schema_spends_nothing_on_it_and_may_keep_rare_categories():
    df = awkward_table()
    public = {"visits": {"min": 0, "max": 5}, "region": {"categories": ["north", "south", "east",
                                                                      "Jane Q. Rareperson", "west"]}}
    gen = create("gan", seed=0, epochs=1, batch_size=60, dp={"epsilon": 3.0, "public": public}).fit(df)
    assert gen.privacy["columns"] == {"amount €": "noisy", "visits": "public", "region": "public", "flag": "none",
                                      "when": "noisy"}
    # a declared range spares the range; a continuous column's shape is still learnt with noise
    public.update({"amount €": {"min": 0, "max": 2000}, "when": {"min": 1.6e15, "max": 1.7e15}})
    gen = create("gan", seed=0, epochs=1, batch_size=60, dp={"epsilon": 3.0, "public": public}).fit(df)
    assert gen.privacy["columns"]["amount €"] == "public range, noisy shape"
    assert gen.schema.column("amount €").max == 2000
    # with every statistic declared, the whole budget goes to training
    public.update({"amount €": {"categories": [1.0, 10.0, 100.0]}, "when": {"categories": [1.6e15, 1.7e15]}})
    gen = create("gan", seed=0, epochs=1, batch_size=60, dp={"epsilon": 3.0, "public": public}).fit(df)
    assert gen.privacy["epsilon_preprocessing"] == 0.0
    assert set(gen.privacy["columns"].values()) <= {"public", "none"}
    assert gen.schema.column("region").categories == ("north", "south", "east", "Jane Q. Rareperson", "west")
    assert gen.schema.column("visits").min == 0 and gen.schema.column("visits").max == 5


def test_bad_dp_settings_name_the_setting():
    df = awkward_table(50)
    with pytest.raises(GeneratorError, match="dp: epsilon is required"):
        create("vae", dp={"delta": 1e-6}).fit(df)
    with pytest.raises(GeneratorError, match=r"dp.delta=0.1 is not below 1 / rows"):
        create("vae", dp={"epsilon": 1.0, "delta": 0.1}).fit(df)
    with pytest.raises(GeneratorError, match=r"unknown key\(s\) \['epsilion'\]"):
        create("vae", dp={"epsilon": 1.0, "epsilion": 2}).fit(df)
    with pytest.raises(GeneratorError, match=r"dp.public names column\(s\) \['nope'\]"):
        create("vae", dp={"epsilon": 1.0, "public": {"nope": {"min": 0, "max": 1}}}).fit(df)
    with pytest.raises(GeneratorError, match="too small"):
        create("vae", epochs=50, batch_size=50, dp={"epsilon": 1e-4}).fit(df)


# -- gate and chains --------------------------------------------------------------------------------------

def test_max_epsilon_refuses_a_non_dp_batch_and_one_that_spent_too_much():
    plain = {"privacy": None, "chain_epsilon": None}
    card = apply_epsilon_limit(Scorecard(passed=True), plain, max_epsilon=5.0)
    assert not card.passed and card.failures[0].check == "privacy"
    assert "without differential privacy" in card.failures[0].reason
    dp = {"privacy": {"epsilon_requested": 3.0, "epsilon_spent": 2.99, "delta": 1e-5, "noise_multiplier": 1.1,
                      "max_grad_norm": 1.0}, "chain_epsilon": 2.99}
    assert apply_epsilon_limit(Scorecard(passed=True), dp, max_epsilon=5.0).passed
    assert not apply_epsilon_limit(Scorecard(passed=True), dp, max_epsilon=2.0).passed
    # without the option nothing is refused, but the ε is on the card
    card = apply_epsilon_limit(Scorecard(passed=True), dp, max_epsilon=None)
    assert card.passed and card.scores["privacy.dp.epsilon_spent"] == 2.99


def test_chain_epsilon_composes_over_generations_that_see_real_rows():
    dp = {"epsilon_spent": 2.0}
    g0 = chain_entry(0, dp, {"real": 100}, {})
    assert g0["chain_epsilon"] == 2.0
    # replace: generation 1 learns from generation 0's DP rows only: post-processing, free
    g1 = chain_entry(1, dp, {"gen_0": 100}, {0: g0})
    assert g1["chain_epsilon"] == 2.0 and g1["epsilon_own"] == 0.0
    # anchor: real rows re-enter the pool, so generation 1 spends its ε again
    a1 = chain_entry(1, dp, {"real": 20, "gen_0": 80}, {0: g0})
    assert a1["chain_epsilon"] == 4.0
    # accumulate: ancestors shared by several parents count once
    c2 = chain_entry(2, dp, {"real": 100, "gen_0": 100, "gen_1": 100}, {0: g0, 1: a1})
    assert c2["chain_epsilon"] == 6.0
    # a generator that saw real rows without DP makes the chain unbounded (stored as null)
    assert chain_entry(1, dp, {"gen_0": 100}, {0: chain_entry(0, None, {"real": 100}, {})})["chain_epsilon"] is None
    assert json.loads(json.dumps(c2)) == c2


def test_chain_delta_composes_where_epsilon_does():
    dp = {"epsilon_spent": 2.0, "delta": 1e-5}
    g0 = chain_entry(0, dp, {"real": 100}, {})
    assert g0["chain_delta"] == pytest.approx(1e-5)
    assert chain_entry(1, dp, {"gen_0": 100}, {0: g0})["chain_delta"] == pytest.approx(1e-5)  # post-processing
    a1 = chain_entry(1, dp, {"real": 20, "gen_0": 80}, {0: g0})
    assert a1["chain_delta"] == pytest.approx(2e-5)
    c2 = chain_entry(2, dp, {"real": 100, "gen_0": 100, "gen_1": 100}, {0: g0, 1: a1})
    assert c2["chain_delta"] == pytest.approx(3e-5)  # each generation's δ once, as its ε
    # without DP on real rows δ is unbounded too (null), as is an old record that carried no δ
    assert chain_entry(1, dp, {"gen_0": 100}, {0: chain_entry(0, None, {"real": 100}, {})})["chain_delta"] is None
    old = {k: v for k, v in g0.items() if k not in ("chain_delta", "delta_by_generation")}
    assert chain_entry(1, dp, {"gen_0": 100}, {0: old})["chain_delta"] is None


# -- membership attack ----------------------------------------------------------------------------------------

def test_membership_attack_flags_copies_and_not_fresh_samples():
    rng = np.random.default_rng(0)
    members, non_members = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    leak = membership_attack(members + rng.normal(0, 0.01, members.shape), members, non_members)
    assert leak["privacy.membership.auc"] > 0.95 and leak["privacy.membership.advantage"] > 0.8
    fresh = membership_attack(rng.normal(size=(300, 4)), members, non_members)
    assert abs(fresh["privacy.membership.auc"] - 0.5) < fresh["privacy.membership.auc.noise_high"] - 0.5
    assert fresh["privacy.membership.advantage"] < fresh["privacy.membership.advantage.noise_high"]
    assert dp_advantage_bound(1.0, 0.0) == pytest.approx((math.e - 1) / (math.e + 1))


def test_identifier_and_text_columns_reveal_nothing_under_dp(tmp_path):
    df = awkward_table().with_columns(
        pl.Series("customer_id", [f"CUST-{i:05d}" for i in range(300)]),
        pl.Series("note", [f"called about invoice {i} from Rareperson" for i in range(300)]))
    gen = create("vae", seed=0, id_columns=["customer_id", "note"], epochs=1, batch_size=60,
                 dp={"epsilon": 3.0}).fit(df)
    rows = gen.sample(50, seed=2)
    assert rows.columns == df.columns and not rows["customer_id"].str.starts_with("CUST").any()
    assert not rows["note"].str.contains("invoice|Rareperson").any()
    folder = gen.save(tmp_path / "g")
    saved = " ".join(f.read_text(errors="ignore") for f in folder.iterdir() if f.suffix == ".json")
    assert "Rareperson" not in saved and "CUST" not in saved and load(folder).privacy == gen.privacy
