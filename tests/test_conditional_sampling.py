"""sample(n, conditions={...}) returns exactly n rows, all meeting the conditions, in every family (issue 18 item 6)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ouroboros.generators import GeneratorError, base, create

N = 2000
FAST = {
    "copula": {},
    "gan": {"epochs": 5, "batch_size": 200, "generator_dims": "64", "critic_dims": "64", "embedding_dim": 16},
    "vae": {"epochs": 5, "batch_size": 200, "encoder_dims": "64", "decoder_dims": "64", "latent_dim": 8},
    "diffusion": {"epochs": 5, "batch_size": 200, "dims": "64,64", "steps": 10},
}


def _table() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    z = rng.normal(size=N)
    churn = np.where(z + rng.normal(scale=0.5, size=N) > 1.2, "yes", "no")  # about 12% yes, driven by z
    return pl.DataFrame({
        "minutes": np.exp(5 + 0.5 * z),
        "calls": rng.poisson(3, N) + (churn == "yes") * 2,
        "plan": rng.choice(["basic", "plus", "max"], N, p=[0.6, 0.3, 0.1]),
        "intl": rng.random(N) < 0.2,
        "churn": churn,
    })


_FITTED: dict = {}


@pytest.fixture(params=list(FAST))
def fitted(request):
    family = request.param
    if family not in _FITTED:
        _FITTED[family] = create(family, seed=0, **FAST[family]).fit(_table())
    return family, _FITTED[family]


@pytest.mark.parametrize("conditions", [{"churn": "yes"}, {"intl": True}, {"plan": "max", "churn": "no"}])
def test_every_row_meets_the_conditions_at_the_requested_count(fitted, conditions):
    family, gen = fitted
    out = gen.sample(500, seed=4, conditions=conditions)
    assert out.height == 500 and out.columns == _table().columns
    for name, value in conditions.items():
        assert (out[name] == value).all(), f"{family}: {name} != {value!r} in some rows"
    assert out.schema == _table().schema
    again = gen.sample(500, seed=4, conditions=conditions)
    assert out.equals(again), f"{family}: the same seed gave different conditioned rows"


def test_exact_conditioning_draws_from_the_models_own_conditional():
    """The copula conditions its Gaussian exactly: its churn == yes rows look like the churners among its
    unconditioned rows (what rejection would give), and like the real churners more than like all rows."""
    from scipy.stats import ks_2samp

    real = _table()
    gen = create("copula", seed=0).fit(real)
    exact = gen.sample(2000, seed=1, conditions={"churn": "yes"})["minutes"].to_numpy()
    free = gen.sample(20_000, seed=2).filter(pl.col("churn") == "yes")["minutes"].to_numpy()
    assert ks_2samp(exact, free).pvalue > 0.01
    real_yes = real.filter(pl.col("churn") == "yes")["minutes"].median()
    assert abs(np.log(np.median(exact) / real_yes)) < abs(np.log(real["minutes"].median() / real_yes))


def test_a_condition_too_rare_for_rejection_is_refused_clearly(monkeypatch):
    gen = _FITTED.get("vae") or create("vae", seed=0, **FAST["vae"]).fit(_table())
    monkeypatch.setattr(base, "REJECTION_BUDGET", 2)  # at most 2 rows drawn per row asked for
    with pytest.raises(GeneratorError, match="too few .* by rejection sampling"):
        gen.sample(300, seed=0, conditions={"plan": "max"})  # about 10% of rows


@pytest.mark.parametrize(("conditions", "message"), [
    ({"nope": "x"}, "not a modelled column"),
    ({"churn": "maybe"}, "never takes the value 'maybe'"),
    ({"minutes": 100.0}, "conditions take categorical, boolean or integer"),
    ({"intl": "yes"}, "must be True or False"),
    ({"calls": 10_000}, "in its real range"),
])
def test_bad_conditions_name_the_column_and_what_to_do(conditions, message):
    gen = _FITTED.get("copula") or create("copula", seed=0).fit(_table())
    with pytest.raises(GeneratorError, match=message):
        gen.sample(10, conditions=conditions)
