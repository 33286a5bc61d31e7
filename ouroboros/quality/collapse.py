"""Collapse indicators of one batch against the fixed real anchor (real_train), each with the band two
independent real samples of the same sizes would show (`noise_low`/`noise_high`) or the value a fresh real
sample scores (`noise_floor`), so drift can be told from sampling noise."""

from __future__ import annotations

import numpy as np
import polars as pl

from ouroboros.quality.fidelity import ks_shape

TAILS = (0.01, 0.99)
Z = 3.0  # band half-width in standard errors
GRID = 2000  # quantile grid of the 1-D Wasserstein distance


def _w1(a_sorted: np.ndarray, b_sorted: np.ndarray) -> float:
    """1-D Wasserstein-1 distance from quantile functions on a fixed grid (O(grid) after sorting)."""
    u = (np.arange(GRID) + 0.5) / GRID
    qa = a_sorted[np.minimum((u * len(a_sorted)).astype(np.int64), len(a_sorted) - 1)]
    qb = b_sorted[np.minimum((u * len(b_sorted)).astype(np.int64), len(b_sorted) - 1)]
    return float(np.abs(qa - qb).mean())


def numeric_indicators(real: np.ndarray, synthetic: np.ndarray, holdout: np.ndarray | None) -> dict[str, float]:
    """Shape, variance ratio, tail mass and Wasserstein distance of one numeric column (NaN-free inputs)."""
    r, s = np.sort(real), np.sort(synthetic)
    n_r, n_s = len(r), len(s)
    out: dict[str, float] = {"shape": ks_shape(r, s)}
    if n_r < 2 or n_s < 2:
        return out
    var_r = r.var(ddof=1)
    if var_r > 0:
        out["variance_ratio"] = float(s.var(ddof=1) / var_r)
        centred = r - r.mean()
        kurtosis = float((centred ** 4).mean() / (centred ** 2).mean() ** 2)
        se = np.sqrt(max(kurtosis - 1.0, 0.1) * (1.0 / n_s + 1.0 / n_r))
        out["variance_ratio.noise_low"], out["variance_ratio.noise_high"] = float(np.exp(-Z * se)), float(np.exp(Z * se))
    lo, hi = np.quantile(r, TAILS)
    real_tail = (np.searchsorted(r, lo, side="left") + n_r - np.searchsorted(r, hi, side="right")) / n_r
    syn_tail = (np.searchsorted(s, lo, side="left") + n_s - np.searchsorted(s, hi, side="right")) / n_s
    sd = np.sqrt(real_tail * (1 - real_tail) * (1.0 / n_s + 1.0 / n_r))
    out.update({"tail_mass": float(syn_tail), "tail_mass.noise_floor": float(real_tail),
                "tail_mass.noise_low": float(max(0.0, real_tail - Z * sd)),
                "tail_mass.noise_high": float(real_tail + Z * sd)})
    std = float(np.sqrt(var_r)) or 1.0
    out["wasserstein"] = _w1(r, s) / std
    if holdout is not None and len(holdout) > 1:
        h = np.sort(holdout)
        # a fresh real sample's distance, rescaled from the holdout's size to the batch's (W1 ~ 1/sqrt(n))
        scale = np.sqrt((1.0 / n_s + 1.0 / n_r) / (1.0 / len(h) + 1.0 / n_r))
        out["wasserstein.noise_floor"] = float(_w1(r, h) / std * scale)
        out["shape.noise_floor"] = ks_shape(r, h)
    return out


def survival(real: pl.Series, synthetic: pl.Series, rare_share: float) -> dict[str, float]:
    """Share of the real categories present in the batch, overall and for the rare ones (real share below
    `rare_share`), with the band a real sample of the batch's size would show."""
    counts = real.cast(pl.String).drop_nulls().alias("level").value_counts(name="n")
    levels = counts["level"].to_list()
    if not levels:
        return {}
    p = counts["n"].to_numpy() / counts["n"].sum()
    present = set(synthetic.cast(pl.String).drop_nulls().unique().to_list())
    kept = np.array([lvl in present for lvl in levels])
    n_s = synthetic.len() - synthetic.null_count()
    out: dict[str, float] = {}
    for name, mask in (("category_survival", np.ones(len(p), dtype=bool)), ("rare_category_survival", p < rare_share)):
        if not mask.any():
            continue
        k = mask.sum()
        seen = 1.0 - (1.0 - p[mask]) ** n_s  # chance each category shows up in a real sample of n_s rows
        expected = seen.sum() / k
        sd = np.sqrt((seen * (1 - seen)).sum()) / k
        out[name] = float(kept[mask].mean())
        out[f"{name}.noise_floor"] = float(expected)
        out[f"{name}.noise_low"] = float(max(0.0, expected - Z * sd))
        out[f"{name}.noise_high"] = float(min(1.0, expected + Z * sd))
        out[f"{name}.count"] = float(k)
    return out
