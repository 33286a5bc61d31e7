"""Fidelity: per-column shapes, pair trends and the overall quality score (as SDMetrics' Quality Report:
the mean of the column-shape and pair-trend means)."""

from __future__ import annotations

import numpy as np
import polars as pl

from ouroboros.quality.encoding import Encoder, finite_values, numeric_values
from ouroboros.schema import ColumnKind

NUMERIC_KINDS = (ColumnKind.CONTINUOUS, ColumnKind.INTEGER, ColumnKind.DATETIME)


def ks_shape(a_sorted: np.ndarray, b_sorted: np.ndarray) -> float:
    """1 - two-sample KS statistic of two sorted, NaN-free arrays."""
    if len(a_sorted) == 0 or len(b_sorted) == 0:
        return float(len(a_sorted) == len(b_sorted))
    grid = np.concatenate([a_sorted, b_sorted])
    fa = np.searchsorted(a_sorted, grid, side="right") / len(a_sorted)
    fb = np.searchsorted(b_sorted, grid, side="right") / len(b_sorted)
    return float(1.0 - np.abs(fa - fb).max())


def tv_shape(real: pl.Series, synthetic: pl.Series) -> float:
    """1 - total variation distance of the level frequencies (null counts as a level)."""
    def shares(s: pl.Series) -> pl.DataFrame:  # own column names: any series name is safe
        return (s.cast(pl.String).fill_null("\x00null").rename("level").to_frame().group_by("level")
                .agg((pl.len() / s.len()).alias("share")))

    joined = shares(real).join(shares(synthetic), on="level", how="full", coalesce=True, suffix="_b").fill_null(0.0)
    return float(1.0 - 0.5 * (joined["share"] - joined["share_b"]).abs().sum())


def column_shape(real: pl.Series, synthetic: pl.Series, kind: ColumnKind) -> float:
    """1 - KS statistic for numeric columns, 1 - total variation distance for the rest."""
    if kind in NUMERIC_KINDS:
        return ks_shape(np.sort(finite_values(real)), np.sort(finite_values(synthetic)))
    return tv_shape(real, synthetic)


def pair_trends(real: pl.DataFrame, synthetic: pl.DataFrame, encoder: Encoder,
                kinds: dict[str, ColumnKind]) -> dict[tuple[str, str], float]:
    """Per column pair: correlation similarity (1 - |r_real - r_syn| / 2) for two numeric columns,
    contingency similarity (1 - TVD of the joint table on the real data's bins) otherwise."""
    cols = [c for c in encoder.columns if c in kinds]
    numeric = [c for c in cols if kinds[c] in NUMERIC_KINDS]
    corr_r, corr_s = _corr(real, numeric), _corr(synthetic, numeric)
    codes_r, codes_s = encoder.codes(real), encoder.codes(synthetic)
    out: dict[tuple[str, str], float] = {}
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            if a in corr_r and b in corr_r:
                ib = numeric.index(b)
                ra, sa = corr_r[a][ib], corr_s[a][ib]
                if np.isfinite(ra) and np.isfinite(sa):
                    out[(a, b)] = float(1.0 - abs(ra - sa) / 2.0)
                    continue
            out[(a, b)] = _contingency_similarity(codes_r[a][0], codes_r[b][0], codes_s[a][0], codes_s[b][0],
                                                  codes_r[a][1], codes_r[b][1])
    return out


def _corr(df: pl.DataFrame, cols: list[str]) -> dict[str, np.ndarray]:
    """Pearson correlations over rows where both values are present (pairwise complete, vectorised)."""
    if len(cols) < 2:
        return {}
    x = np.stack([numeric_values(df[c]) for c in cols], axis=1)
    present = np.isfinite(x)
    if present.all():
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.corrcoef(x, rowvar=False)
    else:
        x0 = np.where(present, x, 0.0)
        m = present.astype(np.float64)
        n = m.T @ m
        sx, sxx, sxy = x0.T @ m, (x0 ** 2).T @ m, x0.T @ x0
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sxy / n - (sx / n) * (sx.T / n)
            var_a = sxx / n - (sx / n) ** 2
            r = cov / np.sqrt(var_a * var_a.T)
    r = np.atleast_2d(r)
    return {c: r[i] for i, c in enumerate(cols)}


def _contingency_similarity(ra: np.ndarray, rb: np.ndarray, sa: np.ndarray, sb: np.ndarray,
                            width: int, depth: int) -> float:
    p = np.bincount(ra * depth + rb, minlength=width * depth) / max(len(ra), 1)
    q = np.bincount(sa * depth + sb, minlength=width * depth) / max(len(sa), 1)
    return float(1.0 - 0.5 * np.abs(p - q).sum())


def cramers_v(df: pl.DataFrame, encoder: Encoder, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], float]:
    """Bias-corrected Cramér's V (Bergsma, 2013) of each pair on the real data's bins: association strength
    that reads about 0 for independent columns whatever the sample size."""
    codes = encoder.codes(df)
    n = df.height
    out = {}
    for a, b in pairs:
        (ca, wa), (cb, wb) = codes[a], codes[b]
        table = np.bincount(ca * wb + cb, minlength=wa * wb).reshape(wa, wb).astype(np.float64)
        table = table[table.sum(1) > 0][:, table.sum(0) > 0]
        r, k = table.shape
        if n < 3 or r < 2 or k < 2:
            out[(a, b)] = 0.0
            continue
        expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
        phi2 = float(((table - expected) ** 2 / expected).sum() / n)
        phi2 = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
        rc, kc = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
        denom = min(kc - 1, rc - 1)
        out[(a, b)] = float(np.sqrt(phi2 / denom)) if denom > 0 else 0.0
    return out
