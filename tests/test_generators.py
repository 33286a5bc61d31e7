"""Contract tests every generator family must pass, on a tiny seeded mixed table (a few epochs, fast)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ouroboros.generators import FAMILIES, GeneratorError, create, load

FAMILY_LIST = ["copula", "gan", "vae", "diffusion"]
# tiny models so the whole file runs in seconds; quality is not what these tests check
FAST = {
    "copula": {},
    "gan": {"epochs": 2, "batch_size": 100, "generator_dims": "32", "critic_dims": "32", "embedding_dim": 16},
    "vae": {"epochs": 2, "batch_size": 100, "encoder_dims": "32", "decoder_dims": "32", "latent_dim": 8},
    "diffusion": {"epochs": 2, "batch_size": 100, "dims": "32,32", "steps": 5},
}
N = 200


def _table(n: int = N, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(2020, 1, 1)
    hc = [f"title_{i}" for i in rng.zipf(1.5, n) % 150]  # > max_levels distinct values, a long tail
    return pl.DataFrame(
        {
            "amount": np.concatenate([rng.normal(10, 2, n // 2), rng.normal(100, 10, n - n // 2)]),
            "age": pl.Series([None if rng.random() < 0.3 else int(v) for v in rng.integers(18, 90, n)],
                             dtype=pl.Int32),
            "grade": pl.Series(rng.integers(1, 6, n), dtype=pl.Int8),
            "flag": rng.random(n) < 0.3,
            "city": [None if rng.random() < 0.3 else c for c in rng.choice(["ams", "ber", "cph"], n).tolist()],
            "title": hc,
            "when": [start + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 365, n)],
            "empty": pl.Series([None] * n, dtype=pl.Float64),
        }
    )


@pytest.fixture(scope="module")
def real() -> pl.DataFrame:
    return _table()


_FITTED: dict = {}


@pytest.fixture(params=FAMILY_LIST)
def fitted(request, real):
    family = request.param
    if family not in _FITTED:
        params = {**FAST[family], "seed": 3}
        if family != "copula":
            params["max_levels"] = 16
        _FITTED[family] = create(family, **params).fit(real)
    return family, _FITTED[family]


def test_registry_lists_all_families():
    assert set(FAMILY_LIST) <= set(FAMILIES)


def test_samples_keep_columns_dtypes_ranges_and_categories(fitted, real):
    family, gen = fitted
    syn = gen.sample(400, seed=1)
    assert syn.columns == real.columns, family
    assert syn.schema == real.schema, family
    assert syn.height == 400
    for name in ("age", "grade"):
        col = syn[name].drop_nulls()
        assert col.min() >= real[name].min() and col.max() <= real[name].max(), (family, name)
    when = syn["when"].drop_nulls()
    assert when.min() >= real["when"].min() and when.max() <= real["when"].max(), family
    assert syn["flag"].dtype == pl.Boolean and syn["flag"].null_count() == 0
    assert set(syn["city"].drop_nulls().to_list()) <= set(real["city"].drop_nulls().to_list()), family
    assert set(syn["title"].to_list()) <= set(real["title"].to_list()), family  # "other" decodes to real titles


def test_nulls_where_and_only_where_the_real_table_has_them(fitted, real):
    family, gen = fitted
    syn = gen.sample(400, seed=2)
    for name in real.columns:
        if real[name].null_count() == 0:
            assert syn[name].null_count() == 0, (family, name)
        else:
            assert syn[name].null_count() > 0, (family, name)
    assert syn["empty"].null_count() == syn.height


def test_same_seed_same_rows_and_save_load_round_trip(fitted, tmp_path):
    family, gen = fitted
    a = gen.sample(150, seed=5)
    assert a.equals(gen.sample(150, seed=5)), family
    assert not a.equals(gen.sample(150, seed=6)), family
    restored = load(gen.save(tmp_path / family))
    assert type(restored) is type(gen)
    assert restored.sample(150, seed=5).equals(a), family


@pytest.mark.parametrize("family", FAMILY_LIST)
def test_fit_is_deterministic_run_after_run(family, real):
    params = {**FAST[family], "seed": 11}
    a = create(family, **params).fit(real.head(60)).sample(50, seed=1)
    b = create(family, **params).fit(real.head(60)).sample(50, seed=1)
    assert a.equals(b), family


@pytest.mark.parametrize("family", ["gan", "vae", "diffusion"])
def test_fit_reports_progress_per_epoch(family, real):
    seen: list[tuple[int, dict]] = []
    create(family, **FAST[family]).fit(real.head(60), callback=lambda e, losses: seen.append((e, losses)))
    assert [e for e, _ in seen] == [0, 1]
    assert all(losses and all(np.isfinite(v) for v in losses.values()) for _, losses in seen)


def test_fitting_leaves_the_callers_torch_rng_alone(real):
    torch = pytest.importorskip("torch")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    create("vae", **FAST["vae"]).fit(real.head(60)).sample(10, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_unknown_family_is_refused():
    with pytest.raises(GeneratorError, match="unknown generator family 'gann'"):
        create("gann")


@pytest.mark.parametrize(
    ("family", "params", "message"),
    [
        ("gan", {"epochs": 0}, "epochs"),
        ("gan", {"pac": 7}, "batch_size"),
        ("gan", {"generator_dims": "256,x"}, "generator_dims"),
        ("gan", {"critic_lr": -1.0}, "critic_lr"),
        ("vae", {"latent_dim": 0}, "latent_dim"),
        ("vae", {"lr": "fast"}, "lr"),
        ("vae", {"learning_rate": 0.1}, "unknown parameter"),
        ("diffusion", {"steps": 0}, "steps"),
        ("diffusion", {"min_steps_per_epoch": 0}, "min_steps_per_epoch"),
        ("vae", {"precision": "fp16"}, "precision"),
        ("gan", {"precision": "bf16"}, "precision"),
        ("vae", {"temperature": 0.0}, "temperature"),
        ("diffusion", {"device": "tpu"}, "device"),
        ("copula", {"quantile_points": 1}, "quantile_points"),
    ],
)
def test_bad_parameters_name_the_parameter(family, params, message):
    with pytest.raises(GeneratorError, match=message):
        create(family, **params)


@pytest.mark.parametrize("family", FAMILY_LIST)
def test_misuse_is_refused(family, real):
    gen = create(family, **FAST[family])
    with pytest.raises(GeneratorError, match="before sample"):
        gen.sample(5)
    with pytest.raises(GeneratorError, match="polars DataFrame"):
        gen.fit(real.to_pandas())


def test_cuda_request_without_gpu_fails_clearly(real):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(GeneratorError, match="CUDA"):
        create("vae", device="cuda", **FAST["vae"]).fit(real.head(30))


@pytest.mark.parametrize("continuous", ["mixture", "quantile"])
def test_encoding_round_trips_the_real_table(real, continuous):
    from ouroboros.generators.encoding import TableEncoder
    from ouroboros.schema import infer_schema

    enc = TableEncoder(continuous=continuous, max_levels=16).fit(real, infer_schema(real), seed=0)
    num, codes = enc.transform(real, seed=0)
    assert num.dtype == np.float32 and codes.shape == (real.height, len(enc.groups))
    back = enc.decode(num, codes, seed=0)
    for name in ("age", "grade", "flag", "city", "empty"):
        assert back[name].cast(real[name].dtype).equals(real[name]), name
    assert np.allclose(back["amount"].to_numpy(), real["amount"].to_numpy(), rtol=1e-3, atol=0.05)
    kept = real["title"].is_in(pl.Series([v for v in enc.columns[5].levels if v is not None]).implode())
    assert (back["title"] == real["title"]).filter(kept).all()  # frequent titles exactly; the tail by frequency


# -- quality: does each family learn a bimodal marginal and a correlated pair? ----------------------------

# small models that still learn the test table in a few hundred steps; a sign error in any loss leaves
# them far outside the bounds below
QUALITY = {
    "copula": {},
    "gan": {"epochs": 60, "batch_size": 100, "embedding_dim": 16},
    "vae": {"epochs": 30, "batch_size": 100, "encoder_dims": "64,64", "decoder_dims": "64,64", "latent_dim": 8},
    "diffusion": {"epochs": 30, "batch_size": 100, "dims": "64,64", "steps": 20},
}
# bounds on the KS statistic of the bimodal column and on the error of the x-y correlation (real: 0.8).
# Two honest 1,000-row samples of the same distribution differ by a KS of about 0.04 (0.06 at the 95th
# percentile) and a correlation of about 0.02; a model that learned nothing scores a KS near 0.5 on the
# bimodal column (one mode or a blur between them) and a correlation error near 0.8 (independent columns).
# The GAN maps its continuous outputs onto the training marginals after fitting, so its KS mostly checks that
# map; a sign error in its critic or adversarial loss shows in the correlation (error 1.8), one in its condition
# loss in the categorical column: total variation distance 0.50 where two honest 1,000-row samples differ by
# about 0.02 (0.05 at the 95th percentile; every family scores 0.013 to 0.024).
MAX_KS = {"copula": 0.08, "gan": 0.08, "vae": 0.10, "diffusion": 0.10}
MAX_CORR_ERROR = {"copula": 0.05, "gan": 0.10, "vae": 0.08, "diffusion": 0.08}
MAX_TVD = 0.06


def _quality_table(n: int = 1000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    mode = rng.random(n) < 0.5
    x = rng.normal(0, 1, n)
    return pl.DataFrame({
        "bimodal": np.where(mode, rng.normal(-2, 0.5, n), rng.normal(2, 0.5, n)),
        "x": x,
        "y": 0.8 * x + 0.6 * rng.normal(0, 1, n),
        "group": np.where(mode, rng.choice(["a", "b"], n, p=[0.8, 0.2]), rng.choice(["b", "c"], n, p=[0.3, 0.7])),
    })


# The GAN's correlation error on this small table varies with the seed (0.04 to 0.14 over five seeds on a CPU),
# so it is judged by the median of three fits; a sign error still fails every one of them.
QUALITY_SEEDS = {"gan": (0, 1, 2)}


def _quality(family: str, seeds: tuple[int, ...] = (0,), **overrides) -> tuple[float, float, float]:
    """(KS of the bimodal column, x-y correlation error, category TVD), each the median over `seeds`."""
    from scipy.stats import ks_2samp

    real = _quality_table()
    scores = []
    for seed in seeds:
        syn = create(family, seed=seed, **{**QUALITY[family], **overrides}).fit(real).sample(real.height, seed=1)
        ks = ks_2samp(real["bimodal"].to_numpy(), syn["bimodal"].to_numpy()).statistic
        corr = abs(np.corrcoef(real["x"], real["y"])[0, 1] - np.corrcoef(syn["x"], syn["y"])[0, 1])
        share = [(df["group"] == g).mean() for df in (real, syn) for g in ("a", "b", "c")]
        tvd = 0.5 * sum(abs(share[i] - share[i + 3]) for i in range(3))
        scores.append((ks, corr, tvd))
    ks, corr, tvd = np.median(np.array(scores, dtype=np.float64), axis=0)
    return float(ks), float(corr), float(tvd)


@pytest.mark.parametrize("family", FAMILY_LIST)
def test_family_learns_a_bimodal_column_and_a_correlated_pair(family):
    ks, corr, tvd = _quality(family, QUALITY_SEEDS.get(family, (0,)))
    assert tvd <= MAX_TVD, f"{family}: the categorical column's shares are off by {tvd:.3f} (bound {MAX_TVD})"
    assert ks <= MAX_KS[family], f"{family}: KS {ks:.3f} on the bimodal column (bound {MAX_KS[family]})"
    assert corr <= MAX_CORR_ERROR[family], f"{family}: x-y correlation off by {corr:.3f} (bound {MAX_CORR_ERROR[family]})"


# precision "auto" picks bf16 on CPUs with AVX512-BF16 and fp32 elsewhere: both must learn, wherever the suite runs
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("family", ["vae", "diffusion"])
def test_family_learns_in_either_precision(family, precision):
    ks, corr, _ = _quality(family, precision=precision)
    assert ks <= MAX_KS[family], f"{family}: KS {ks:.3f} on the bimodal column (bound {MAX_KS[family]})"
    assert corr <= MAX_CORR_ERROR[family], f"{family}: x-y correlation off by {corr:.3f} (bound {MAX_CORR_ERROR[family]})"
