"""Reversible table encoding shared by the neural generators: a numeric block and a block of category codes.

Every column becomes at most one scalar and at most one categorical *group* (a softmax over levels):

- ``mixture`` (continuous, many distinct values): mode-specific normalisation. A 1-D Gaussian mixture
  with a sparsity prior on its weights is fitted on a bounded subsample; each value becomes the
  mode it was drawn from (a group, with an extra level for null) and its offset inside that mode,
  ``(x - mu_k) / (4 sigma_k)`` (the scalar). Unused modes die out, so the group is as wide as the data needs.
- ``quantile`` (continuous; what the VAE, GAN and diffusion use): the normal score of the value's rank (the
  scalar) and, when the column has point masses or nulls, a *mixed* group (as CTAB-GAN+'s mixed-type encoding):
  level 0 "continuous", one level per point mass (a value far more frequent than the values around it, such as
  the 0 of a zero-inflated amount, the 40 of weekly hours or a cap of 99,999), and a last level for null. The
  ranks and the quantile table are of the continuous rows only. A spike or null row's scalar is never decoded
  (the level decides), so it is filled with a seeded draw from the scalar's Gaussian given the row's other
  scalars: no model has to learn a constant (which shrank the spread of the continuous rows) or a second,
  unrelated noise distribution (which cost the column's associations). Decoding takes the spike value or null
  when the level says so.
- ``discrete`` (categoricals, booleans, and numeric columns with few distinct values): one level per value,
  null as its own level. Above ``max_levels`` the most frequent ``max_levels - 1`` values keep a level and
  the rest share an "other" level that decodes to a real tail value drawn by its frequency.

Models see ``num`` (float32, rows x scalars) and ``codes`` (int64, rows x groups) and give back the same
two arrays; ``decode`` turns them into a polars frame with the real column names and dtypes, values
clipped to the real range and integers rounded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import ndtr, ndtri

from ouroboros.schema import ColumnKind, TableSchema

_SCALE = 4.0  # a mode's offset is measured in units of 4 standard deviations, so it stays inside (-1, 1)
_MIN_WEIGHT = 0.005  # mixture components lighter than this are dropped
_Z_CLIP = 5.0


@dataclass
class ColumnCode:
    """How one column is encoded; plain data so it round-trips through JSON."""

    name: str
    kind: str  # ColumnKind value
    mode: str  # "mixture" | "quantile" | "discrete"
    null: bool = False  # the column has nulls: a null level (discrete, mixture) or an observed/null group
    levels: list = field(default_factory=list)  # discrete: values in level order (None = null level)
    other: int = -1  # discrete: index of the "other" level, -1 when every value has its own level
    tail_values: list = field(default_factory=list)  # values behind the "other" level ...
    tail_probs: list = field(default_factory=list)  # ... and their frequencies among themselves
    means: list = field(default_factory=list)  # mixture: one per kept mode
    stds: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    quantiles: list = field(default_factory=list)  # quantile: value at evenly spaced probabilities
    quantile_u: list = field(default_factory=list)  # ... and the rank score each of them has
    spikes: list = field(default_factory=list)  # quantile: point-mass values, levels 1..len(spikes) of the group
    lo: float | None = None  # real range, for clipping
    hi: float | None = None

    @property
    def has_scalar(self) -> bool:
        return self.mode in ("mixture", "quantile")

    @property
    def group_size(self) -> int:
        """Width of this column's categorical group (0: none)."""
        if self.mode == "discrete":
            return len(self.levels)
        if self.mode == "mixture":
            return len(self.means) + int(self.null)
        return 1 + len(self.spikes) + int(self.null) if (self.spikes or self.null) else 0


@dataclass(frozen=True)
class Group:
    """One categorical group of the encoded table."""

    column: int  # index into the encoder's columns
    size: int
    # "levels" (a discrete column: conditionable), "modes" (a mixture's modes), "nulls" (quantile: observed / null),
    # "spikes" (quantile: continuous / each point mass / null if any)
    role: str


class TableEncoder:
    """Fit once on real data; `transform` to (num, codes), `decode` back to a polars frame."""

    def __init__(
        self,
        continuous: str = "mixture",
        max_modes: int = 10,
        max_levels: int = 64,
        discrete_limit: int = 32,
        fit_rows: int = 5000,
        quantile_points: int = 1001,
        spikes: bool = True,
    ) -> None:
        if continuous not in ("mixture", "quantile"):
            raise ValueError(f"continuous must be 'mixture' or 'quantile', got {continuous!r}")
        self.continuous = continuous
        self.max_modes = max_modes
        self.max_levels = max_levels
        self.discrete_limit = discrete_limit
        self.fit_rows = fit_rows
        self.quantile_points = quantile_points
        self.spikes = spikes  # quantile mode: give point masses their own level (False: the plain rank encoding)
        self.columns: list[ColumnCode] = []

    # -- layout -----------------------------------------------------------------------------------

    @property
    def scalar_columns(self) -> list[int]:
        return [i for i, c in enumerate(self.columns) if c.has_scalar]

    @property
    def groups(self) -> list[Group]:
        out = []
        for i, c in enumerate(self.columns):
            if c.group_size:
                role = {"discrete": "levels", "mixture": "modes", "quantile": "spikes" if c.spikes else "nulls"}[c.mode]
                out.append(Group(i, c.group_size, role))
        return out

    @property
    def n_scalars(self) -> int:
        return len(self.scalar_columns)

    @property
    def group_sizes(self) -> list[int]:
        return [g.size for g in self.groups]

    # -- fit --------------------------------------------------------------------------------------

    def fit(self, df: pl.DataFrame, schema: TableSchema, seed: int = 0) -> TableEncoder:
        """Choose and fit the encoding of every column of `df` (described by `schema`)."""
        rng = np.random.default_rng(seed)
        self.columns = []
        for spec in schema.columns:
            s = df[spec.name]
            code = ColumnCode(spec.name, spec.kind.value, "discrete", null=s.null_count() > 0, lo=spec.min, hi=spec.max)
            if spec.is_numeric:
                values = _numeric(s)
                observed = values[~np.isnan(values)]
                code.null = len(observed) < len(values)
                uniq, counts = np.unique(observed, return_counts=True)
                if len(uniq) <= self.discrete_limit:
                    _fit_levels(code, list(uniq.tolist()), counts, self.max_levels)
                elif self.continuous == "mixture":
                    code.mode = "mixture"
                    sub = observed if len(observed) <= self.fit_rows else rng.choice(observed, self.fit_rows, False)
                    code.means, code.stds, code.weights = _fit_mixture(sub, self.max_modes, rng)
                    # the subsample may miss the extremes: widen the outer modes so every real value round-trips
                    lo, hi = float(observed.min()), float(observed.max())
                    reach = 0.98 * _SCALE
                    code.stds[0] = max(code.stds[0], (code.means[0] - lo) / reach)
                    code.stds[-1] = max(code.stds[-1], (hi - code.means[-1]) / reach)
                else:
                    code.mode = "quantile"
                    code.spikes = find_spikes(uniq, counts) if self.spikes else []
                    rest = observed[~np.isin(observed, code.spikes)]
                    if len(rest) < 2:  # (almost) nothing but point masses: the scalar is never decoded
                        rest = observed
                    # value and rank score u = r / (n + 1) of evenly spaced order statistics (all of them
                    # when there are few) of the continuous rows, so decoding inverts encoding at the data points
                    m = len(rest)
                    probs = np.linspace(0.0, 1.0, min(m, self.quantile_points))
                    code.quantiles = np.quantile(rest, probs).tolist()
                    code.quantile_u = ((probs * (m - 1) + 1) / (m + 1)).tolist()
            elif spec.kind == ColumnKind.BOOLEAN:
                counts = np.array([(s == False).sum(), (s == True).sum()])  # noqa: E712 - polars elementwise
                _fit_levels(code, [False, True], counts, self.max_levels)
            else:
                # fixed names: a column called "count" would collide with value_counts' own output column
                vc = s.cast(pl.String).drop_nulls().alias("level").value_counts(name="freq")
                vc = vc.sort(["freq", "level"], descending=[True, False])
                _fit_levels(code, vc["level"].to_list(), vc["freq"].to_numpy(), self.max_levels, sort=False)
            if code.mode == "discrete" and code.null:
                code.levels.append(None)
            self.columns.append(code)
        return self

    # -- transform --------------------------------------------------------------------------------

    def transform(self, df: pl.DataFrame, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Encode `df` into (num float32 [rows, scalars], codes int64 [rows, groups])."""
        rng = np.random.default_rng(seed)
        n = df.height
        num, codes, filled = [], [], []
        for c in self.columns:
            s = df[c.name]
            if c.mode == "discrete":
                codes.append(_level_codes(c, s))
                continue
            values = _numeric(s)
            isnull = np.isnan(values)
            if c.mode == "quantile":
                level = np.zeros(n, np.int64)
                for i, v in enumerate(c.spikes):
                    level[values == v] = i + 1
                level[isnull] = 1 + len(c.spikes)
                cont = level == 0
                # spike and null rows: noise, not a constant (a model would spend capacity on the constant and a
                # VAE's or diffusion model's continuous rows would be pulled towards it)
                z = rng.standard_normal(n) if (c.spikes or c.null) else np.zeros(n)
                if cont.any():
                    z[cont] = ndtri(_mid_ranks(values, ~cont) / (int(cont.sum()) + 1))
                num.append(np.clip(z, -_Z_CLIP, _Z_CLIP))
                filled.append(~cont if (c.spikes or c.null) else np.zeros(n, bool))
                if c.group_size:
                    codes.append(level)
                continue
            mu, sd = np.asarray(c.means), np.asarray(c.stds)
            x = np.where(isnull, mu[0], values)[:, None]
            # posterior over modes, then a seeded draw from it (as CTGAN does) so overlapping modes share rows
            dev = (x - mu) / sd
            logp = -0.5 * dev**2 - np.log(sd) + np.log(np.asarray(c.weights))
            # only modes that can represent the value without clipping, where there is one
            reach = np.abs(dev) <= 0.99 * _SCALE
            logp = np.where(reach | ~reach.any(axis=1, keepdims=True), logp, -np.inf)
            p = np.exp(logp - logp.max(axis=1, keepdims=True))
            cum = np.cumsum(p, axis=1)
            k = (cum < rng.uniform(0, 1, (n, 1)) * cum[:, -1:]).sum(axis=1)
            k = np.minimum(k, len(mu) - 1)
            alpha = np.clip((x[:, 0] - mu[k]) / (_SCALE * sd[k]), -0.99, 0.99)
            num.append(np.where(isnull, 0.0, alpha))
            filled.append(np.zeros(n, bool))
            codes.append(np.where(isnull, len(mu), k).astype(np.int64))
        if num and self.continuous == "quantile":
            num = list(_conditional_fill(np.column_stack(num), np.column_stack(filled), rng, self.fit_rows).T)
        num_arr = np.column_stack(num).astype(np.float32) if num else np.zeros((n, 0), np.float32)
        codes_arr = np.column_stack(codes).astype(np.int64) if codes else np.zeros((n, 0), np.int64)
        return num_arr, codes_arr

    def level_counts(self, codes: np.ndarray) -> list[np.ndarray]:
        """How often each level of each group occurs in `codes`."""
        return [np.bincount(codes[:, j], minlength=g.size) for j, g in enumerate(self.groups)]

    # -- decode -----------------------------------------------------------------------------------

    def decode(self, num: np.ndarray, codes: np.ndarray, seed: int = 0) -> pl.DataFrame:
        """Turn model output (num, codes) into a frame with the real columns, dtypes and ranges."""
        rng = np.random.default_rng(seed)
        num = np.asarray(num, dtype=np.float64)
        n = len(codes)
        si = gi = 0
        out = []
        for c in self.columns:
            kind = ColumnKind(c.kind)
            scalar = group = None
            if c.has_scalar:
                scalar, si = num[:, si], si + 1
            if c.group_size:
                group, gi = np.clip(codes[:, gi], 0, c.group_size - 1), gi + 1
            if c.mode == "discrete":
                levels = np.asarray(c.levels, dtype=object)
                values = levels[group]
                if c.other >= 0:
                    is_other = group == c.other
                    values[is_other] = rng.choice(
                        np.asarray(c.tail_values, dtype=object), int(is_other.sum()), p=np.asarray(c.tail_probs)
                    )
                out.append(_series(c, kind, values, n))
                continue
            if c.mode == "quantile":
                u = ndtr(np.clip(scalar, -_Z_CLIP, _Z_CLIP))
                x = np.interp(u, np.asarray(c.quantile_u), np.asarray(c.quantiles))
                isnull = group == 1 + len(c.spikes) if group is not None else np.zeros(n, bool)
                if c.spikes:
                    spiked = (group >= 1) & ~isnull
                    x = np.where(spiked, np.asarray(c.spikes + [0.0])[np.clip(group - 1, 0, len(c.spikes))], x)
            else:
                mu, sd = np.asarray(c.means), np.asarray(c.stds)
                k = np.minimum(group, len(mu) - 1)
                x = np.clip(scalar, -1.0, 1.0) * _SCALE * sd[k] + mu[k]
                isnull = group == len(mu)
            x = np.where(isnull, np.nan, x)
            out.append(_series(c, kind, x, n))
        return pl.DataFrame(out)

    # -- persistence ------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        settings = {k: getattr(self, k) for k in (
            "continuous", "max_modes", "max_levels", "discrete_limit", "fit_rows", "quantile_points", "spikes")}
        return {"settings": settings, "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict) -> TableEncoder:
        enc = cls(**d["settings"])
        enc.columns = [ColumnCode(**c) for c in d["columns"]]
        return enc

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: Path) -> TableEncoder:
        return cls.from_dict(json.loads(path.read_text()))


# -- helpers ----------------------------------------------------------------------------------------


def _numeric(s: pl.Series) -> np.ndarray:
    """Numbers (datetimes as their physical integer) as float64 with NaN for null and non-finite."""
    values = s.to_physical().cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
    values[~np.isfinite(values)] = np.nan
    return values


SPIKE_SHARE = 0.0025  # a point mass holds at least this share of the observed rows ...
SPIKE_ROWS = 10  # ... and at least this many rows ...
SPIKE_RATIO = 5.0  # ... and this many times the typical count of the distinct values around it
SPIKE_WINDOW = 5  # neighbours on each side that give the typical count
MAX_SPIKES = 16  # the most frequent point masses kept, so a group stays narrow


def find_spikes(values: np.ndarray, counts: np.ndarray) -> list[float]:
    """Point masses of a numeric column: values far more frequent than the distinct values around them.

    `values` are the sorted distinct values and `counts` their rows. A value repeated in many rows
    among values that occur about once (the 0 of an amount, a top-coded 99,999) is a point mass; in an integer
    column whose every value repeats (ages), a value is one only where it towers over its neighbours (weekly
    hours at 40, an age clipped at 17). Compared with the neighbours' median count, not a fixed share, so a
    smooth integer column is left to the continuous encoding however few distinct values it has.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if len(values) < 3 or total <= 0:
        return []
    picked = []
    for i in np.argsort(-counts, kind="stable"):
        c = counts[i]
        if c < max(SPIKE_SHARE * total, SPIKE_ROWS) or len(picked) >= MAX_SPIKES:
            break
        around = np.concatenate([counts[max(0, i - SPIKE_WINDOW):i], counts[i + 1:i + 1 + SPIKE_WINDOW]])
        if c >= SPIKE_RATIO * float(np.median(around)):
            picked.append(float(values[i]))
    return sorted(picked)


def _fit_levels(code: ColumnCode, values: list, counts: np.ndarray, max_levels: int, sort: bool = True) -> None:
    """Levels of a discrete column: every value, or the most frequent ones plus an "other" level."""
    code.mode = "discrete"
    counts = np.asarray(counts, dtype=np.float64)
    if len(values) <= max_levels:
        code.levels = list(values)
        return
    order = np.argsort(-counts, kind="stable") if sort else np.arange(len(values))
    keep, tail = order[: max_levels - 1], order[max_levels - 1 :]
    code.levels = [values[i] for i in keep] + ["\x00other"]
    code.other = max_levels - 1
    code.tail_values = [values[i] for i in tail]
    code.tail_probs = (counts[tail] / counts[tail].sum()).tolist()


def _level_codes(c: ColumnCode, s: pl.Series) -> np.ndarray:
    """Level index of every row of a discrete column (unknown values go to "other", or the nearest level)."""
    n_known = len(c.levels) - int(c.null)
    null_code = len(c.levels) - 1 if c.null else 0
    fallback = c.other if c.other >= 0 else 0
    if ColumnKind(c.kind) in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER, ColumnKind.DATETIME):
        values = _numeric(s)
        levels = np.asarray(c.levels[:n_known], dtype=np.float64)
        idx = np.clip(np.searchsorted(levels, values), 0, max(n_known - 1, 0))
        if n_known > 1:  # nearest level, so an unseen value maps somewhere sensible
            left = np.clip(idx - 1, 0, n_known - 1)
            idx = np.where(np.abs(values - levels[left]) < np.abs(values - levels[idx]), left, idx)
        return np.where(np.isnan(values), null_code, idx).astype(np.int64)
    if ColumnKind(c.kind) == ColumnKind.BOOLEAN:
        b = s.cast(pl.Int64).to_numpy()
        return np.where(s.is_null().to_numpy(), null_code, np.nan_to_num(b)).astype(np.int64)
    known = [v for v in c.levels[:n_known] if v != "\x00other"]
    mapped = s.cast(pl.String).replace_strict(known, list(range(len(known))), default=fallback, return_dtype=pl.Int64)
    return np.where(s.is_null().to_numpy(), null_code, mapped.to_numpy()).astype(np.int64)


def _series(c: ColumnCode, kind: ColumnKind, values: np.ndarray, n: int) -> pl.Series:
    if kind == ColumnKind.BOOLEAN:
        return pl.Series(c.name, values.tolist(), dtype=pl.Boolean)
    if kind == ColumnKind.CATEGORICAL:
        return pl.Series(c.name, values.tolist(), dtype=pl.String)
    x = np.array([np.nan if v is None else v for v in values], dtype=np.float64) if values.dtype == object else values
    x = x.astype(np.float64)
    if c.lo is not None and c.hi is not None:
        x = np.clip(x, c.lo, c.hi)
    if kind != ColumnKind.CONTINUOUS:
        x = np.round(x)
    s = pl.Series(c.name, x, dtype=pl.Float64, nan_to_null=True)
    if kind == ColumnKind.DATETIME:
        s = s.cast(pl.Int64)
    return s


def _conditional_fill(z: np.ndarray, filled: np.ndarray, rng: np.random.Generator, rows: int) -> np.ndarray:
    """Replace the noise in the scalars of spike and null rows by a draw from the scalar's Gaussian given the
    row's other scalars (a linear regression on the rows where the scalar is a real rank score, plus its residual
    noise).

    The decoder never reads these values (the group's level decides), but the model learns them: independent
    noise is a second, unrelated distribution inside the column, and it cost the associations of a mostly-null
    column (proving.spiky_table, 85% null, Spearman with age 0.975 real: diffusion 0.93 with a constant fill,
    0.52 with independent noise). Two passes, so a filled column that predicts another is itself filled first.
    """
    n, s = z.shape
    if s < 2 or not filled.any():
        return z
    z = z.copy()
    for _ in range(2):
        for j in np.flatnonzero(filled.any(axis=0)):
            obs = np.flatnonzero(~filled[:, j])
            if len(obs) < 10:
                continue
            if len(obs) > rows:
                obs = rng.choice(obs, rows, replace=False)
            others = np.r_[0:j, j + 1:s]
            x, y = z[obs][:, others], z[obs, j]
            beta = np.linalg.solve(x.T @ x + 1e-3 * len(obs) * np.eye(s - 1), x.T @ y)
            sd = float(np.std(y - x @ beta))
            f = filled[:, j]
            z[f, j] = np.clip(z[f][:, others] @ beta + sd * rng.standard_normal(int(f.sum())), -_Z_CLIP, _Z_CLIP)
    return z


def _mid_ranks(values: np.ndarray, isnull: np.ndarray) -> np.ndarray:
    """1-based average ranks of the observed values (ties share one rank)."""
    obs = values[~isnull]
    order = np.argsort(obs, kind="stable")
    _, first, counts = np.unique(obs[order], return_index=True, return_counts=True)
    ranks = np.empty(len(obs))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def _fit_mixture(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 100) -> tuple[list, list, list]:
    """1-D Gaussian mixture by EM with a sparse Dirichlet prior on the weights (MAP), so unneeded modes vanish."""
    x = np.asarray(x, dtype=np.float64)
    spread = float(x.std()) or 1.0
    var_floor = (1e-3 * spread) ** 2
    k = max(1, min(k, len(np.unique(x))))
    mu = np.quantile(x, (np.arange(k) + 0.5) / k) + rng.normal(0, 1e-6 * spread, k)
    var = np.full(k, (spread / k) ** 2 + var_floor)
    w = np.full(k, 1.0 / k)
    prior = 1e-3  # weight concentration < 1 pushes weights of unsupported modes to exactly zero
    previous = -np.inf
    for _ in range(iters):
        alive = w > 0
        logp = np.full((len(x), k), -np.inf)
        logp[:, alive] = (
            np.log(w[alive]) - 0.5 * np.log(2 * np.pi * var[alive]) - 0.5 * (x[:, None] - mu[alive]) ** 2 / var[alive]
        )
        top = logp.max(axis=1, keepdims=True)
        r = np.exp(logp - top)
        total = r.sum(axis=1, keepdims=True)
        loglik = float((np.log(total) + top).mean())
        if loglik - previous < 1e-6 * (abs(loglik) + 1.0):
            break  # converged; EM never decreases the likelihood by more than rounding
        previous = loglik
        r /= total
        nk = r.sum(axis=0)
        w = np.maximum(nk + prior - 1.0, 0.0)
        w /= w.sum()
        safe = np.maximum(nk, 1e-12)
        new_mu = (r * x[:, None]).sum(axis=0) / safe
        new_var = (r * (x[:, None] - new_mu) ** 2).sum(axis=0) / safe + var_floor
        mu = np.where(w > 0, new_mu, mu)
        var = np.where(w > 0, new_var, var)
    keep = w >= _MIN_WEIGHT
    if not keep.any():
        keep = w == w.max()
    order = np.argsort(mu[keep])
    w = w[keep][order]
    return mu[keep][order].tolist(), np.sqrt(var[keep][order]).tolist(), (w / w.sum()).tolist()
