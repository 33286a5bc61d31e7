"""Differentially private encoder statistics: every data-dependent number the generators' encoder needs.

The encoder of the neural generators learns, per column, a category list, a range, mixture modes or
quantiles, and whether nulls occur. Without privacy these are exact statistics of the real rows (a category
seen once would be a level the generator can emit). Here each of them either comes from the user's public
declaration (`dp.public`) or is released with noise, spending a share of ε:

- categories: a stable histogram (Laplace counts over the values seen, kept only above a threshold of
  1 + ln(1 / δ_col) / ε_col), so a value held by a handful of rows is dropped with probability 1 - δ_col;
- numeric range: a Laplace histogram over fixed, data-independent logarithmic bins (±10^(k/4)), the range
  being the outermost bins whose noisy count clears a threshold;
- shape (mixture modes, quantiles): a Laplace histogram of 128 bins fixed by that range (declared or noisy),
  in asinh space so skewed columns keep resolution, bins below 2/ε zeroed; mixtures are fitted on points drawn
  from it, quantiles read off its CDF;
- nulls: every column gets a null level (data-independent); the model learns how often it is used.

Columns are composed sequentially (one row touches every column): each non-public column gets an equal share
of the preprocessing ε (and δ). The transform of a row then depends on that row and these released numbers
only, so DP-SGD's per-row sensitivity holds.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import ndtri

from ouroboros.generators.encoding import _Z_CLIP, ColumnCode, TableEncoder, _fit_levels, _fit_mixture, _numeric
from ouroboros.privacy.settings import DPSettings, PublicColumn
from ouroboros.schema import ColumnKind, ColumnSpec, TableSchema

SHAPE_BINS = 128
_LOG_EDGES = 10.0 ** (np.arange(-24, 80) / 4.0)  # 1e-6 .. ~1e20: any float or datetime magnitude


@dataclass(frozen=True)
class ColumnRelease:
    """How one column's encoder statistics were obtained."""

    column: str
    source: str  # "public" | "public range, noisy shape" | "noisy" | "none" (booleans: nothing to learn)
    epsilon: float
    delta: float


def _needs_release(spec: ColumnSpec, public: PublicColumn | None, discrete_limit: int) -> bool:
    """Booleans and declared category lists need nothing; a declared range spares the range but the shape of a
    continuous column (more than `discrete_limit` values in range) is still learnt with noise."""
    if spec.kind == ColumnKind.BOOLEAN or (public is not None and public.categories is not None):
        return False
    if spec.kind == ColumnKind.CATEGORICAL or public is None or public.min is None:
        return True
    integer = spec.kind in (ColumnKind.INTEGER, ColumnKind.DATETIME)
    return not (integer and math.ceil(public.max) - math.floor(public.min) + 1 <= discrete_limit)


def plan_budget(schema: TableSchema, settings: DPSettings, discrete_limit: int) -> tuple[float, list[str]]:
    """(ε of the preprocessing, columns that spend it); zero when every column's statistics are declared."""
    private = [c.name for c in schema.columns if _needs_release(c, settings.public.get(c.name), discrete_limit)]
    return (settings.epsilon * settings.preprocessing_share if private else 0.0), private


def _stable_histogram(values: list, eps: float, delta: float, rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """Values whose Laplace(1/ε) count clears 1 + ln(1/δ)/ε, with their noisy counts."""
    if not values:
        return [], np.zeros(0)
    keys, counts = np.unique(np.asarray(values, dtype=object), return_counts=True)
    noisy = counts + rng.laplace(0.0, 1.0 / eps, len(counts))
    keep = noisy > 1.0 + math.log(1.0 / delta) / eps
    order = np.argsort(-noisy[keep], kind="stable")
    return [keys[keep][i] for i in order], noisy[keep][order]


def _dp_range(x: np.ndarray, eps: float, rng: np.random.Generator) -> tuple[float, float] | None:
    """Range from a Laplace histogram over fixed signed log-scale bins (data-independent edges)."""
    edges = np.concatenate([-_LOG_EDGES[::-1], [0.0], _LOG_EDGES])
    counts = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)[0]
    noisy = counts + rng.laplace(0.0, 1.0 / eps, len(counts))
    # a bin must beat the largest of (bins) Laplace draws with high probability to count as occupied
    hit = np.flatnonzero(noisy > math.log(len(counts) / 0.05) / eps)
    if not len(hit):
        return None
    return float(edges[hit[0]]), float(edges[hit[-1] + 1])


def _shape_histogram(x: np.ndarray, lo: float, hi: float, eps: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(bin edges, noisy non-negative counts) of `x` on SHAPE_BINS bins equal in asinh((x - lo) / scale)."""
    scale = max((hi - lo) / 1000.0, 1e-12)
    top = math.asinh((hi - lo) / scale)
    u_edges = np.linspace(0.0, top, SHAPE_BINS + 1)
    edges = lo + np.sinh(u_edges) * scale
    edges[-1] = hi
    counts = np.histogram(np.clip(x, lo, hi), bins=edges)[0] if len(x) else np.zeros(SHAPE_BINS)
    noisy = counts + rng.laplace(0.0, 1.0 / eps, SHAPE_BINS)
    # counts a pure-noise bin reaches easily are zeroed: clipping at 0 alone would spread about 1/(2ε) phantom
    # rows into every empty bin
    noisy = np.where(noisy > 2.0 / eps, noisy, 0.0)
    if noisy.sum() <= 0:
        noisy = np.ones(SHAPE_BINS)
    return edges, noisy


def fit_private_encoder(encoder: TableEncoder, df: pl.DataFrame, schema: TableSchema, settings: DPSettings,
                        epsilon: float, delta: float, seed: int) -> tuple[TableSchema, list[ColumnRelease]]:
    """Fill `encoder.columns` from public declarations and noisy statistics spending (`epsilon`, `delta`).

    Returns the schema to keep with the generator (ranges and categories replaced by the released ones) and
    what each column's statistics came from."""
    rng = np.random.default_rng([seed, 7])
    _, private = plan_budget(schema, settings, encoder.discrete_limit)
    eps_col = epsilon / max(len(private), 1)
    delta_col = delta / max(len(private), 1)
    encoder.columns, releases, specs = [], [], []
    for spec in schema.columns:
        public = settings.public.get(spec.name)
        s = df[spec.name]
        null = public.nullable if public is not None else True
        code = ColumnCode(spec.name, spec.kind.value, "discrete", null=null)
        source, spent = ("none", 0.0) if spec.kind == ColumnKind.BOOLEAN else ("public", 0.0)
        lo = hi = None
        cats: tuple = ()
        if spec.kind == ColumnKind.BOOLEAN:
            _fit_levels(code, [False, True], np.ones(2), encoder.max_levels)
            cats = ("false", "true")
        elif spec.kind == ColumnKind.CATEGORICAL or (public is not None and public.categories is not None):
            if public is not None and public.categories is not None:
                levels = [str(v) for v in public.categories] if spec.kind == ColumnKind.CATEGORICAL \
                    else sorted(float(v) for v in public.categories)
                counts = np.ones(len(levels))
            else:
                source, spent = "noisy", eps_col
                levels, counts = _stable_histogram(s.cast(pl.String).drop_nulls().to_list(), eps_col, delta_col, rng)
            _fit_levels(code, list(levels), counts, encoder.max_levels, sort=spec.kind != ColumnKind.CATEGORICAL)
            if spec.is_numeric and levels:
                lo, hi = float(min(levels)), float(max(levels))
            cats = tuple(str(v) for v in levels) if spec.kind == ColumnKind.CATEGORICAL else ()
        else:
            x = _numeric(s)
            x = x[~np.isnan(x)]
            if public is not None and public.min is not None:
                lo, hi, eps_shape = public.min, public.max, (eps_col if spec.name in private else 0.0)
                if eps_shape:
                    source, spent = "public range, noisy shape", eps_col
            else:
                source, spent = "noisy", eps_col
                found = _dp_range(x, eps_col / 2, rng)
                lo, hi = found if found is not None else (0.0, 1.0)
                eps_shape = eps_col / 2
            integer = spec.kind in (ColumnKind.INTEGER, ColumnKind.DATETIME)
            if integer:
                lo, hi = math.floor(lo), math.ceil(hi)
            if integer and hi - lo + 1 <= encoder.discrete_limit:
                _fit_levels(code, [float(v) for v in range(int(lo), int(hi) + 1)], np.ones(int(hi - lo + 1)),
                            encoder.max_levels)
            else:
                _fit_shape(code, encoder, x, lo, hi, eps_shape, rng)
        if code.mode == "discrete" and code.null:
            code.levels.append(None)
        code.lo, code.hi = lo, hi
        encoder.columns.append(code)
        releases.append(ColumnRelease(spec.name, source, spent, delta_col if source == "noisy" else 0.0))
        specs.append(dataclasses.replace(spec, min=lo, max=hi, categories=cats, null_fraction=0.0))
    return dataclasses.replace(schema, columns=tuple(specs)), releases


def _fit_shape(code: ColumnCode, encoder: TableEncoder, x: np.ndarray, lo: float, hi: float, eps: float,
               rng: np.random.Generator) -> None:
    """Mixture modes or quantiles from a noisy histogram on [lo, hi] (uniform when eps is 0: public range only)."""
    if hi <= lo:
        hi = lo + 1.0
    if eps > 0:
        edges, counts = _shape_histogram(x, lo, hi, eps, rng)
    else:
        edges, counts = np.linspace(lo, hi, SHAPE_BINS + 1), np.ones(SHAPE_BINS)
    p = counts / counts.sum()
    if encoder.continuous == "mixture":
        code.mode = "mixture"
        k = rng.choice(SHAPE_BINS, size=encoder.fit_rows, p=p)
        points = rng.uniform(edges[k], edges[k + 1])
        code.means, code.stds, code.weights = _fit_mixture(points, encoder.max_modes, rng)
        reach = 0.98 * 4.0
        code.stds[0] = max(code.stds[0], (code.means[0] - lo) / reach)
        code.stds[-1] = max(code.stds[-1], (hi - code.means[-1]) / reach)
    else:
        code.mode = "quantile"
        cdf = np.concatenate([[0.0], np.cumsum(p)])
        probs = np.linspace(0.0, 1.0, encoder.quantile_points)
        code.quantiles = np.interp(probs, cdf, edges).tolist()
        m = max(float(counts.sum()), 2.0)
        code.quantile_u = ((probs * (m - 1) + 1) / (m + 1)).tolist()


def private_transform(encoder: TableEncoder, df: pl.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`encoder.transform` with every row encoded from its own values only.

    Numeric values are clipped to the released range first; the quantile mode's rank scores, which depend on
    the other rows, are replaced by the released quantile function."""
    cols = []
    for c in encoder.columns:
        s = df[c.name]
        if c.lo is not None and c.hi is not None and c.mode != "discrete" and s.dtype.is_numeric():
            s = s.clip(c.lo, c.hi)
        cols.append(s)
    df = pl.DataFrame(cols)
    num, codes = encoder.transform(df, seed=seed)
    for j, i in enumerate(encoder.scalar_columns):
        c = encoder.columns[i]
        if c.mode != "quantile":
            continue
        x = _numeric(df[c.name])
        u = np.interp(np.nan_to_num(x, nan=c.quantiles[0]), np.asarray(c.quantiles), np.asarray(c.quantile_u))
        z = np.clip(ndtri(u), -_Z_CLIP, _Z_CLIP)  # the clip the encoder applies to rank scores
        num[:, j] = np.where(np.isnan(x), 0.0, z).astype(np.float32)
    return num, codes
