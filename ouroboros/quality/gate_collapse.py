"""Collapse family of the scorecard: per numeric column the spread ratio on the real data's rank-normal scale
(Mood's rank test of scale), the tail mass beyond the real 1%/99% quantiles (beta-binomial) and the Wasserstein
distance (warning); per categorical column the share of real categories kept, overall and rare (Poisson-binomial).
The raw variance ratio is kept as a plain score (`collapse.variance_ratio.<col>`, no limit): the collapse study
tracks it, but a column's largest values decide it."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import special, stats

from ouroboros.config import GateConfig
from ouroboros.quality.collapse import _w1
from ouroboros.quality.encoding import finite_values
from ouroboros.quality.gate_schema import level_counts
from ouroboros.quality.judge import Judge
from ouroboros.quality.stats import count_shortfall_p, scale_p, tail_loss_p
from ouroboros.schema import ColumnKind, TableSchema

SCALE_ROWS = 100_000  # rows per side Mood's test ranks (the ratio itself uses every row)
MIN_LEVEL_ROWS = 10  # a category enters the survival tests when real_train shows it this often (its share is known)


def _values(s: pl.Series) -> np.ndarray:
    return finite_values(s)


def score_collapse(j: Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None,
                   schema: TableSchema, config: GateConfig) -> None:
    rng = np.random.default_rng(config.seed + 40)
    for spec in schema.columns:
        if spec.kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER):
            h = _values(holdout[spec.name]) if holdout is not None else None
            _numeric(j, spec.name, _values(train[spec.name]), _values(syn[spec.name]), h, config, rng)
        elif spec.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
            _survival(j, spec.name, train[spec.name], syn[spec.name], config)
    s = j.scores
    for family in ("spread_ratio", "variance_ratio", "category_survival", "rare_category_survival", "tail_mass", "wasserstein"):
        # looked up by column name, not by parsing keys: a column called "a.b" has a key with three dots
        values = [s[k] for spec in schema.columns if (k := f"collapse.{family}.{spec.name}") in s]
        if values:
            low = family.endswith(("ratio", "survival"))
            s[f"collapse.{family}_{'min' if low else 'max'}"] = float(min(values) if low else max(values))


def normal_scores(real_sorted: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Values on the real data's rank-normal scale: the real mid-ECDF (ties take the middle of their step, so a
    spike of 47% at one value sits at one point, not at an end), then the standard normal quantile. A value beyond
    the real range scores as the real extreme value does: -0.01 in a column whose real minimum 0 holds 92% of rows
    sits on that spike, not 4 normal units below it (values outside the range are the contract's range rule's and
    the tail test's to judge)."""
    n = len(real_sorted)
    x = np.clip(x, real_sorted[0], real_sorted[-1])
    mid = (np.searchsorted(real_sorted, x, "left") + np.searchsorted(real_sorted, x, "right")) / (2.0 * n)
    return special.ndtri(np.clip(mid, 0.5 / n, 1.0 - 0.5 / n))


def spread_ratio(real_sorted: np.ndarray, x: np.ndarray) -> float:
    """Variance of x over that of the real values, both on the real data's rank-normal scale (NaN where the
    real values are constant). Each value's weight is bounded by its rank, so no single extreme value, nor the
    exact share of a spike at a cap, decides it; for normal data it is the variance ratio."""
    z_real = normal_scores(real_sorted, real_sorted)
    var_real = float(z_real.var(ddof=1))
    if not var_real > 0:
        return float("nan")
    return float(normal_scores(real_sorted, x).var(ddof=1) / var_real)


def _numeric(j: Judge, name: str, r: np.ndarray, s: np.ndarray, h: np.ndarray | None, config: GateConfig,
             rng: np.random.Generator) -> None:
    key = f"collapse.spread_ratio.{name}"
    if len(r) < 3 or len(s) < 3:
        j.skip(key, f"fewer than 3 values of {name} (batch {len(s)}, real {len(r)})")
        return
    var_r = float(r.var(ddof=1))
    if var_r <= 0:
        j.skip(key, f"{name} is constant in real_train")
        return
    r_sorted, s_sorted = np.sort(r), np.sort(s)
    # the raw moment, a plain score: what the collapse study tracks, never a limit (its largest values decide it)
    j.scores[f"collapse.variance_ratio.{name}"] = float(s.var(ddof=1) / var_r)
    ratio = spread_ratio(r_sorted, s_sorted)
    if h is not None and len(h) > 2:
        j.scores[f"{key}.noise_floor"] = spread_ratio(r_sorted, h)
    sub_s = s if len(s) <= SCALE_ROWS else rng.choice(s, SCALE_ROWS, replace=False)
    sub_r = r if len(r) <= SCALE_ROWS else rng.choice(r, SCALE_ROWS, replace=False)
    if ratio < 1:
        p = min(1.0, 2 * scale_p(sub_s, sub_r, "less"))
        j.test("collapse", key, ratio, config.min_variance_ratio, "below", p,
               f"{name} lost spread: variance {ratio:.2f}x the real one on the real rank-normal scale",
               "Mood's two-sided rank test of scale against real_train")
    else:
        p = min(1.0, 2 * scale_p(sub_s, sub_r, "greater"))
        j.test("collapse", key, ratio, config.max_variance_ratio, "above", p,
               f"{name} spread blew up: variance {ratio:.2f}x the real one on the real rank-normal scale",
               "Mood's two-sided rank test of scale against real_train")
    # tails: rows strictly beyond the real 1%/99% quantiles
    lo, hi = np.quantile(r_sorted, (0.01, 0.99))
    k_real = int(np.searchsorted(r_sorted, lo, "left") + len(r) - np.searchsorted(r_sorted, hi, "right"))
    x = int(np.searchsorted(s_sorted, lo, "left") + len(s) - np.searchsorted(s_sorted, hi, "right"))
    real_tail, syn_tail = k_real / len(r), x / len(s)
    key = f"collapse.tail_mass.{name}"
    j.scores[f"{key}.noise_floor"] = real_tail
    if k_real == 0:
        j.skip(key, f"no real_train value of {name} lies beyond its 1%/99% quantiles (few distinct values)")
    else:
        j.test("collapse", key, syn_tail, config.min_tail_ratio * real_tail, "below", tail_loss_p(x, len(s), k_real, len(r)),
               f"{name} lost its tails: {syn_tail:.2%} of rows beyond the real 1%/99% quantiles (real: {real_tail:.2%})",
               f"real rows of this size hold about {real_tail:.2%} there (beta-binomial)")
        j.scores[key] = syn_tail
        j.warn_above("collapse", key, config.warn_max_tail_ratio * real_tail + 3 * np.sqrt(real_tail / len(s)),
                     f"{name} has heavier tails than real: {syn_tail:.2%} beyond the real 1%/99% quantiles "
                     f"(real: {real_tail:.2%})")
    std = float(np.sqrt(var_r))
    w = _w1(r_sorted, s_sorted) / std
    wk = f"collapse.wasserstein.{name}"
    j.scores[wk] = w
    floor = 0.0
    if h is not None and len(h) > 1:
        scale = np.sqrt((1.0 / len(s) + 1.0 / len(r)) / (1.0 / len(h) + 1.0 / len(r)))
        floor = float(_w1(r_sorted, np.sort(h)) / std * scale)
        j.scores[f"{wk}.noise_floor"] = floor
    j.warn_above("collapse", wk, max(config.warn_wasserstein, 3 * floor),
                 f"{name} moved {w:.3f} real std (Wasserstein) from the real data")


def _survival(j: Judge, name: str, real: pl.Series, syn: pl.Series, config: GateConfig) -> None:
    """Share of the real categories (shown at least MIN_LEVEL_ROWS times by real_train) present in the batch,
    overall and for the rare ones; each category shows up in a real sample of n rows with chance 1-(1-p)^n."""
    counts = level_counts(real)
    if counts.height == 0:
        return
    n_t = int(counts["count"].sum())
    counts = counts.filter(pl.col("count") >= MIN_LEVEL_ROWS)
    key = f"collapse.category_survival.{name}"
    if counts.height == 0:
        j.skip(key, f"no category of {name} occurs {MIN_LEVEL_ROWS} times in real_train")
        return
    # a lower confidence bound of each share (one-sided 95%): a level real_train shows 10 times may be rarer than
    # 10 / n, and judging its absence by the point estimate would refuse honest batches
    k = counts["count"].to_numpy()
    p = stats.beta.ppf(0.05, k, n_t - k + 1)
    present = counts["level"].is_in(syn.cast(pl.String).drop_nulls().unique()).to_numpy()
    n_s = syn.len() - syn.null_count()
    seen = 1.0 - (1.0 - p) ** n_s
    for family, mask, limit in (("category_survival", np.ones(len(p), dtype=bool), config.min_category_survival),
                                ("rare_category_survival", k / n_t < config.rare_category_share,
                                 config.min_rare_category_survival)):
        key_ = f"collapse.{family}.{name}"
        if not mask.any():
            continue
        kept = int(present[mask].sum())
        value = kept / mask.sum()
        expected = float(seen[mask].mean())
        j.scores[f"{key_}.noise_floor"] = expected
        j.scores[f"{key_.replace('survival', 'count')}"] = float(mask.sum())
        j.test("collapse", key_, value, limit, "below", count_shortfall_p(kept, seen[mask]),
               f"{name} kept only {value:.0%} of its {'rare ' if 'rare' in family else ''}real categories "
               f"({mask.sum()} with at least {MIN_LEVEL_ROWS} real rows)",
               f"a real sample of {n_s} rows keeps {expected:.0%} (Poisson-binomial)")
