"""What proves the gate: generated tables of several shapes, and the subtle faults real generators make, each
applied to fresh real rows. Used by the tests and by benchmarks/bench_gate_power.py."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from ouroboros.quality.encoding import Encoder
from ouroboros.quality.gate_fidelity import cramers_v_codes
from ouroboros.schema import ColumnKind, infer_schema

# -- tables ---------------------------------------------------------------------------------------------


def _zipf_levels(u: np.ndarray, levels: int, exponent: float, prefix: str) -> np.ndarray:
    """Levels of a Zipf-like law, chosen by the quantile of a latent score u (so they carry its associations)."""
    p = 1.0 / np.arange(1, levels + 1) ** exponent
    cut = np.quantile(u, np.cumsum(p / p.sum())[:-1])
    return np.array([f"{prefix}{j}" for j in range(levels)])[np.searchsorted(cut, u)]


def mixed_table(rows: int, seed: int) -> pl.DataFrame:
    """Correlated numeric columns (normal, heavy-tailed, wide integers), categoricals with rare levels, a boolean,
    a column with a few nulls and a binary target driven by the features. Columns named like polars' own."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, 6)) @ np.linalg.cholesky(0.6 * np.eye(6) + 0.4).T
    income = np.exp(10 + 0.6 * z[:, 1])
    score = 600 + 80 * z[:, 2] + rng.normal(scale=20, size=rows)
    logit = 1.2 * z[:, 0] - 0.8 * z[:, 3] + rng.normal(scale=0.5, size=rows)
    with_nulls = np.where(rng.random(rows) < 0.01, np.nan, z[:, 4] * 3)
    return pl.DataFrame({
        "age": np.clip(np.round(40 + 12 * z[:, 0]), 18, 90).astype(np.int32),
        "income": income,
        "count": score.round().astype(np.int64),  # named like value_counts' output column
        "p": z[:, 3] + 0.3 * rng.normal(size=rows),
        "balance": pl.Series(with_nulls, nan_to_null=True),
        "region": _zipf_levels(z[:, 5] + rng.normal(scale=0.8, size=rows), 12, 1.3, "r"),
        "segment": _zipf_levels(z[:, 2] + rng.normal(scale=0.5, size=rows), 6, 1.0, "s"),
        "channel": rng.choice(["web", "branch", "phone"], rows, p=[0.6, 0.3, 0.1]),
        "flag": z[:, 4] + rng.normal(size=rows) > 0.5,
        "default": np.where(logit > 0.8, "yes", "no"),
    })


def wide_levels_table(rows: int, seed: int) -> pl.DataFrame:
    """A many-level column (thousands of Zipf levels, many seen once), a 51-level state column, a small count
    column of few distinct values, a datetime and a numeric target."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, 3))
    visits = rng.poisson(np.exp(0.3 * z[:, 0]))
    start = np.datetime64("2020-01-01") + (rng.exponential(300, rows)).astype("timedelta64[D]")
    job = rng.zipf(1.3, rows)
    return pl.DataFrame({
        "state": _zipf_levels(z[:, 1] + rng.normal(size=rows), 51, 0.8, "st"),
        "job_title": np.char.add("job", np.minimum(job, 50_000).astype(str)),
        "n": visits.astype(np.int64),
        "opened": start,
        "tenure": rng.gamma(2.0, 3.0, rows) * (1 + 0.2 * z[:, 0]).clip(0.2),
        "q": z[:, 2],
        "amount": 100 * np.exp(0.5 * z[:, 1]) + 40 * visits + 30 * z[:, 2] + rng.normal(scale=20, size=rows),
    })


def spiky_table(rows: int, seed: int) -> pl.DataFrame:
    """Shapes of real survey and account tables that raw moments misjudge: hours with 47% of rows at exactly 40,
    an amount that is 92% zeros with 0.48% at its cap of 99,999, a count that is 74% zeros, a column that is 85%
    null, a weight of many distinct values (most rows unique, as in a census table), a categorical with rare levels
    and a binary target driven by them."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, 3))
    hours = np.where(rng.random(rows) < 0.47, 40, np.clip(np.round(40 + 12 * z[:, 0]), 1, 99)).astype(np.int64)
    u = rng.random(rows)
    gain = np.where(u < 0.92, 0.0, np.minimum(np.exp(8 + 1.0 * z[:, 1] + rng.normal(scale=0.5, size=rows)), 41_000))
    gain = np.where(u > 1 - 0.0048, 99_999.0, gain).round()
    voicemail = np.where(rng.random(rows) < 0.74, 0, rng.normal(28, 7, rows).clip(1).round()).astype(np.int64)
    joint = np.where(rng.random(rows) < 0.85, np.nan, np.exp(11 + 0.5 * z[:, 2]))
    logit = 0.05 * (hours - 40) + 1.5 * (gain > 0) + 0.8 * z[:, 2] + rng.normal(scale=0.7, size=rows)
    return pl.DataFrame({
        "age": np.clip(np.round(38 + 13 * z[:, 2] + 3 * z[:, 0]), 17, 90).astype(np.int64),
        "weight": np.round(np.exp(12 + 0.4 * rng.normal(size=rows))).astype(np.int64),
        "hours": hours,
        "gain": gain,
        "voicemail": voicemail,
        "joint_income": pl.Series(joint, nan_to_null=True),
        "sector": _zipf_levels(z[:, 0] + rng.normal(scale=0.8, size=rows), 14, 1.3, "sec"),
        "high": np.where(logit > 1.0, "yes", "no"),
    })


# -- faults -------------------------------------------------------------------------------------------------

Fault = Callable[[pl.DataFrame, pl.DataFrame, int, str, int], pl.DataFrame]


def wide_numeric(df: pl.DataFrame) -> list[str]:
    """Numeric columns with many distinct values (at least 20): where spread and tails are seen."""
    return [c for c, t in df.schema.items() if t.is_numeric() and df[c].n_unique() >= 20]


def _cast_like(x: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return (x if dtype.is_float() else x.round()).cast(dtype)


def variance_shrunk(pool, train, n, target, seed):
    """Variance shrunk to 80% around the mean in the wide numeric columns."""
    fresh = pool[:n]
    return fresh.with_columns([_cast_like(pl.col(c).mean() + (pl.col(c) - pl.col(c).mean()) * np.sqrt(0.8),
                                          fresh.schema[c]) for c in wide_numeric(train) if c != target])


def tails_clipped(pool, train, n, target, seed):
    """Wide numeric columns clipped at the real 1% and 99% quantiles."""
    fresh = pool[:n]
    return fresh.with_columns([pl.col(c).clip(train[c].quantile(0.01), train[c].quantile(0.99))
                               for c in wide_numeric(train) if c != target])


def rare_dropped(pool, train, n, target, seed):
    """Rows of the rare categories (under 2% of real rows) left out: the batch never shows them."""
    keep = pl.lit(True)
    for c, t in train.schema.items():
        if t in (pl.String, pl.Boolean) and c != target:
            counts = train[c].drop_nulls().cast(pl.String).rename("level").to_frame().group_by("level").len("k")
            rare = counts.filter(pl.col("k") < 0.02 * train.height)["level"]
            keep = keep & ~pl.col(c).cast(pl.String).is_in(rare).fill_null(False)
    kept = pool.filter(keep)
    return kept[:n] if kept.height >= n else kept.sample(n, with_replacement=True, seed=seed)


def exact_copies(pool, train, n, target, seed):
    """10% of the rows exact copies of training rows."""
    k = n // 10
    return pl.concat([pool[:n - k], train.sample(k, seed=seed)])


def near_copies(pool, train, n, target, seed):
    """10% of the rows training rows with noise of 1% of a std on every numeric column."""
    k = n // 10
    rng = np.random.default_rng(seed)
    rows = train.sample(k, seed=seed)
    noisy = [_cast_like(pl.col(c) + pl.Series(rng.normal(scale=0.01 * (train[c].std() or 1.0), size=k)), t)
             for c, t in rows.schema.items() if t.is_numeric()]
    return pl.concat([pool[:n - k], rows.with_columns(noisy)])


def mode_collapse(pool, train, n, target, seed):
    """20% of the rows one and the same row."""
    k = n // 5
    return pl.concat([pool[:n - k], pool[n:n + 1].select(pl.all().repeat_by(k).explode())])


def target_destroyed(pool, train, n, target, seed):
    """The target shuffled: its marginal intact, its relation to the features gone."""
    return pool[:n].with_columns(pl.col(target).shuffle(seed=seed))


def most_associated(train: pl.DataFrame) -> str:
    """The column with the largest summed Cramér's V to the others in real_train."""
    schema = infer_schema(train)
    enc = Encoder.fit(train, schema)
    codes = enc.codes(train.sample(min(train.height, 20_000), seed=0))
    cols = list(codes)
    total = dict.fromkeys(cols, 0.0)
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            v = cramers_v_codes(codes[a][0], codes[a][1], codes[b][0], codes[b][1])
            total[a] += v
            total[b] += v
    return max(total, key=total.get)


def column_shuffled(pool, train, n, target, seed):
    """The single most associated column shuffled."""
    return pool[:n].with_columns(pl.col(most_associated(train)).shuffle(seed=seed))


FAULTS: dict[str, tuple[Fault, tuple[str, ...]]] = {
    # fault -> (how to make it, score key prefixes that must be among the reasons it is refused)
    "variance_80": (variance_shrunk, ("collapse.spread_ratio.",)),
    "tails_clipped": (tails_clipped, ("collapse.tail_mass.",)),
    "rare_dropped": (rare_dropped, ("collapse.rare_category_survival.", "collapse.category_survival.")),
    "exact_copies_10": (exact_copies, ("privacy.exact_copy_excess",)),
    "near_copies_10": (near_copies, ("privacy.near_copy_excess",)),
    "mode_collapse_20": (mode_collapse, ("joint.mode_share_excess",)),
    "target_destroyed": (target_destroyed, ("utility.skill_retention", "fidelity.association_retention.")),
    "column_shuffled": (column_shuffled, ("fidelity.association_retention",)),
}


def caught_for(card, prefixes: tuple[str, ...]) -> bool:
    """Whether a scorecard refused the batch for one of the fault's own reasons."""
    keys = {_key(f) for f in card.failures}
    return any(k.startswith(prefixes) for k in keys)


def _key(f) -> str:
    return f.indicator if f.indicator.startswith(("fidelity.", "shape.", "joint.", "utility.", "privacy.")) \
        else f"{f.check}.{f.indicator}"


def applicable(fault: str, train: pl.DataFrame, target: str) -> str | None:
    """Why a fault cannot be made on this table (None: it can)."""
    schema = infer_schema(train)
    if fault in ("variance_80", "tails_clipped") and not [c for c in wide_numeric(train) if c != target]:
        return "no wide numeric column"
    if fault == "rare_dropped":
        rare = False
        for spec in schema.columns:
            if spec.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN) and spec.name != target:
                counts = train[spec.name].drop_nulls().cast(pl.String).rename("level").to_frame().group_by("level").len("k")
                rare |= bool(counts.filter(pl.col("k") < 0.02 * train.height).height)
        if not rare:
            return "no category under 2%"
    return None
