"""Fidelity family of the scorecard: per-column shapes (blocking, KS or chi-square against real_train),
association retention per column and overall (blocking, against bootstrap draws of real rows of the batch's
size), pair trends and the overall quality score (warnings)."""

from __future__ import annotations

import numpy as np
import polars as pl

from ouroboros.config import GateConfig
from ouroboros.quality.encoding import Encoder, finite_values
from ouroboros.quality.fidelity import NUMERIC_KINDS, column_shape, cramers_v, ks_shape, pair_trends
from ouroboros.quality.gate_schema import level_counts
from ouroboros.quality.judge import Judge
from ouroboros.quality.stats import homogeneity_p, ks_p, shortfall_t_p
from ouroboros.schema import TableSchema

ASSOCIATION_DRAWS = 20  # bootstrap draws of real rows behind each association limit
ASSOCIATION_ROWS = 20_000  # rows per side the association tests use (a subsample beyond that)
# measured (bench_gate_power.py): at 200 rows the per-column tests refused 2.5% of fresh demo batches
MIN_ASSOCIATION_ROWS = 500


def sample(df: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    return df if df.height <= n else df.sample(n=n, seed=seed)


def score_shapes(j: Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None,
                 schema: TableSchema, config: GateConfig) -> None:
    """1 - KS (numeric, datetime) or 1 - TVD (categorical, boolean) per column, each tested for a difference."""
    shapes = []
    for spec in schema.columns:
        name = spec.name
        if spec.kind in NUMERIC_KINDS:
            r, s = np.sort(finite_values(train[name])), np.sort(finite_values(syn[name]))
            shape = ks_shape(r, s)
            p = ks_p(1.0 - shape, len(s), len(r))
            test = "two-sample KS"
            if holdout is not None:
                j.scores[f"shape.{name}.noise_floor"] = ks_shape(r, np.sort(finite_values(holdout[name])))
        else:
            shape = column_shape(train[name], syn[name], spec.kind)
            real = level_counts(train[name])
            batch = level_counts(syn[name])
            joined = real.join(batch, on="level", how="full", coalesce=True, suffix="_batch").fill_null(0)
            p, cells = homogeneity_p(joined["count"].to_numpy(), joined["count_batch"].to_numpy())
            test = f"chi-square over {cells} cells (levels rarer than 5 expected rows pooled)"
            if holdout is not None:
                j.scores[f"shape.{name}.noise_floor"] = column_shape(train[name], holdout[name], spec.kind)
        shapes.append(shape)
        floor = j.scores.get(f"shape.{name}.noise_floor")
        j.test("fidelity", f"shape.{name}", shape, config.min_column_shape, "below", p,
               f"the distribution of {name} differs from the real one (shape {shape:.3f})",
               f"{test} against real_train" + (f"; fresh real rows score {floor:.3f}" if floor is not None else ""))
    j.scores["fidelity.column_shapes"] = float(np.mean(shapes)) if shapes else 1.0
    floors = [v for k, v in j.scores.items() if k.startswith("shape.") and k.endswith(".noise_floor")]
    if floors:
        j.scores["fidelity.column_shapes.noise_floor"] = float(np.mean(floors))


def _v(ca: np.ndarray, wa: int, cb: np.ndarray, wb: int) -> float:
    return cramers_v_codes(ca, wa, cb, wb)


def cramers_v_codes(ca: np.ndarray, wa: int, cb: np.ndarray, wb: int) -> float:
    """Bias-corrected Cramér's V (Bergsma, 2013) of two code arrays."""
    n = len(ca)
    table = np.bincount(ca * wb + cb, minlength=wa * wb).reshape(wa, wb).astype(np.float64)
    table = table[table.sum(1) > 0][:, table.sum(0) > 0]
    r, k = table.shape
    if n < 3 or r < 2 or k < 2:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    phi2 = max(0.0, float(((table - expected) ** 2 / expected).sum() / n) - (k - 1) * (r - 1) / (n - 1))
    rc, kc = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denom = min(kc - 1, rc - 1)
    return float(np.sqrt(phi2 / denom)) if denom > 0 else 0.0


def score_pairs(j: Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None,
                schema: TableSchema, encoder: Encoder, config: GateConfig) -> None:
    kinds = {c.name: c.kind for c in schema.columns}
    train_s = sample(train, config.pair_rows, config.seed)
    syn_s = sample(syn, config.pair_rows, config.seed + 1)
    trends = pair_trends(train_s, syn_s, encoder, kinds)
    j.scores["fidelity.pair_trends.rows"] = float(syn_s.height)
    if not trends:
        j.scores["fidelity.quality_score"] = j.scores["fidelity.column_shapes"]
        j.skip("fidelity.association_retention", "fewer than two columns: no pairs")
        return
    floors = pair_trends(train_s, holdout, encoder, kinds) if holdout is not None else {}
    for (a, b), v in trends.items():
        j.scores[f"fidelity.pair.{a}|{b}"] = v
        if (a, b) in floors:
            j.scores[f"fidelity.pair.{a}|{b}.noise_floor"] = floors[(a, b)]
    j.scores["fidelity.pair_trends"] = float(np.mean(list(trends.values())))
    worst = min(trends, key=trends.get)
    j.scores["fidelity.pair_trends_min"] = trends[worst]
    if floors:
        j.scores["fidelity.pair_trends.noise_floor"] = float(np.mean(list(floors.values())))
    j.scores["fidelity.quality_score"] = (j.scores["fidelity.column_shapes"] + j.scores["fidelity.pair_trends"]) / 2
    floor = j.scores.get("fidelity.pair_trends.noise_floor", 1.0)
    j.warn_below("fidelity", "fidelity.pair_trends", min(config.min_pair_trend, floor - 0.05),
                 f"pair trends {j.scores['fidelity.pair_trends']:.3f} against {floor:.3f} for fresh real rows; "
                 f"weakest pair {worst[0]}|{worst[1]} at {trends[worst]:.3f}")
    j.warn_below("fidelity", "fidelity.quality_score", config.warn_quality_score,
                 f"overall quality score {j.scores['fidelity.quality_score']:.3f} (mean of column shapes and pair "
                 "trends)")
    _associations(j, syn, train, holdout, encoder, list(trends), config)


def _associations(j: Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None,
                  encoder: Encoder, pairs: list[tuple[str, str]], config: GateConfig) -> None:
    """Share of the real associations (Cramér's V of clearly associated pairs) the batch keeps, overall and per
    column, against the same share in bootstrap draws of real_train rows of the batch's size."""
    rows = min(syn.height, ASSOCIATION_ROWS)
    ref = sample(train, ASSOCIATION_ROWS * 2, config.seed + 3)
    real_codes = encoder.codes(ref)
    real_v = {(a, b): _v(real_codes[a][0], real_codes[a][1], real_codes[b][0], real_codes[b][1]) for a, b in pairs}
    strong = [p for p, v in real_v.items() if v >= config.association_min_v]
    j.scores["fidelity.associated_pairs"] = float(len(strong))
    if not strong:
        j.skip("fidelity.association_retention", f"no column pair of real_train has Cramér's V >= "
                                                 f"{config.association_min_v}: nothing to retain")
        return
    if rows < MIN_ASSOCIATION_ROWS:
        j.skip("fidelity.association_retention", f"the batch has {syn.height} rows; judging associations needs "
                                                 f"{MIN_ASSOCIATION_ROWS} (below that, Cramér's V of real samples is "
                                                 "too skewed for its bootstrap band to hold at the gate's level)")
        return
    syn_codes = encoder.codes(sample(syn, rows, config.seed + 4))

    def retention(codes: dict, idx: np.ndarray | None) -> dict[str, float]:
        v = {}
        for a, b in strong:
            ca, cb = codes[a][0], codes[b][0]
            if idx is not None:
                ca, cb = ca[idx], cb[idx]
            v[(a, b)] = _v(ca, codes[a][1], cb, codes[b][1])
        out = {"*": sum(v.values()) / sum(real_v[p] for p in strong)}
        for c in {c for p in strong for c in p}:
            mine = [p for p in strong if c in p]
            out[c] = sum(v[p] for p in mine) / sum(real_v[p] for p in mine)
        return out

    observed = retention(syn_codes, None)
    rng = np.random.default_rng(config.seed + 5)
    draws = [retention(real_codes, rng.integers(0, ref.height, rows)) for _ in range(ASSOCIATION_DRAWS)]
    # the reference V is itself a sample of ref.height rows: widen the draws' spread by that share
    widen = np.sqrt(1 + rows / ref.height)
    for col, value in observed.items():
        d = np.array([x[col] for x in draws])
        # resampled rows carry the sample's own chance association, which fresh rows lack: centre the draws at
        # their mean or at full retention, whichever is lower, so that bias never refuses an honest batch
        d = min(d.mean(), 1.0) + (d - d.mean()) * widen
        key = "fidelity.association_retention" + ("" if col == "*" else f".{col}")
        what = "between columns" if col == "*" else f"of {col} with other columns"
        j.scores[f"{key}.noise_low"] = float(np.quantile(d, 0.05))
        j.test("fidelity", key, value, config.min_association_retention, "below", shortfall_t_p(value, d),
               f"the batch keeps only {value:.0%} of the associations {what} (Cramér's V of "
               f"{sum(col == '*' or col in p for p in strong)} clearly associated real pairs): marginals may be "
               "right but the joint distribution is not",
               f"real rows of this size keep {d.mean():.0%} (sd {d.std(ddof=1):.2f}, {ASSOCIATION_DRAWS} draws)")
    if holdout is not None and holdout.height >= 10:
        h_codes = encoder.codes(holdout)
        hv = sum(_v(h_codes[a][0], h_codes[a][1], h_codes[b][0], h_codes[b][1]) for a, b in strong)
        j.scores["fidelity.association_retention.noise_floor"] = hv / sum(real_v[p] for p in strong)
    j.scores["fidelity.association_rows"] = float(rows)


__all__ = ["cramers_v", "score_pairs", "score_shapes"]
