"""Gaussian copula: exact empirical marginals joined by one correlation matrix of normal scores.

Each column becomes a standard-normal score: numeric columns through their empirical CDF,
categorical ones (and null indicators) through frequency intervals of [0, 1] with a seeded jitter.
The empirical CDF is the mixed distribution itself, so a point mass (the zeros of an amount, 47% of rows
at 40 hours, a cap of 99,999) comes back at its exact share and integer columns stay integer; a null is
its own indicator variable in the copula, and a null row's numeric score is drawn from its Gaussian given
the row's other scores, so the observed values keep their associations.
The correlation of those scores is the whole dependence model. Sampling draws correlated normals
and maps each back through the inverse marginal, so values stay inside the real range by design.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import ndtr, ndtri

from ouroboros.generators.base import (
    Conditions,
    Generator,
    GeneratorError,
    ProgressCallback,
    meets,
    rejection_sample,
)
from ouroboros.generators.encoding import _conditional_fill
from ouroboros.schema import ColumnKind

_EPS = 1e-6
_FILL_ROWS = 10_000  # rows the null-score regressions are fitted on
ATOM_ROWS = 10  # a numeric value repeated on this many rows ...
ATOM_SHARE = 0.001  # ... and this share of them is a point mass of the marginal


@dataclass
class _Marginal:
    column: str
    role: str  # "numeric": the values; "levels": categories (null is a level); "nulls": null indicator
    quantiles: list[float] | None = None  # numeric: value at each of `len` evenly spaced probabilities
    levels: list[str | None] | None = None  # levels: in order of their intervals
    cum: list[float] | None = None  # levels: right edge of each interval
    # numeric: [value, lo, hi] of each point mass, its interval of the empirical CDF. A score drawn inside it
    # decodes to the value itself: interpolating the quantile table across two neighbouring masses (the levels
    # 1.0 and 2.0 of a coded float column) would invent values between them that no real row has
    atoms: list[list[float]] | None = None


class GaussianCopula(Generator):
    """Gaussian copula with empirical marginals; handles numeric, integer, boolean, categorical, datetime."""

    family = "copula"
    PARAMS = {
        "quantile_points": (int, 1001),  # resolution of each numeric marginal
        "shrinkage": (float, 1e-3),  # towards the identity, keeps the correlation positive definite
    }

    def _validate_params(self) -> None:
        if self.params["quantile_points"] < 2:
            raise GeneratorError("copula: quantile_points must be at least 2")
        if not 0.0 <= self.params["shrinkage"] < 1.0:
            raise GeneratorError("copula: shrinkage must be in [0, 1)")

    # -- fit --------------------------------------------------------------------------------------

    def _fit(self, df: pl.DataFrame, callback: ProgressCallback | None) -> None:
        rng = np.random.default_rng(self.seed)
        scores, marginals, nulls = [], [], []
        for spec in self.schema.columns:
            s = df[spec.name]
            if spec.is_numeric:
                values = s.to_physical().cast(pl.Float64).to_numpy()
                observed = ~np.isnan(values) & np.isfinite(values)
                if spec.null_fraction > 0 or not observed.all():
                    m, z = _fit_levels(spec.name, "nulls", np.where(observed, "v", None).astype(object), rng)
                    marginals.append(m)
                    scores.append(z)
                    nulls.append(np.zeros(len(values), bool))
                m, z = _fit_numeric(spec.name, values, observed, self.params["quantile_points"])
                nulls.append(~observed)
            else:
                text = s.cast(pl.String).to_numpy().astype(object) if spec.kind != ColumnKind.BOOLEAN else (
                    s.to_numpy().astype(object)
                )
                if spec.kind == ColumnKind.BOOLEAN:
                    text = np.array([None if v is None else ("true" if v else "false") for v in text], dtype=object)
                m, z = _fit_levels(spec.name, "levels", text, rng)
                nulls.append(np.zeros(len(text), bool))
            marginals.append(m)
            scores.append(z)
        # a null row's numeric score is a draw given the row's other scores, not 0: a constant would pull the
        # column's correlations towards 0 by its null share (an 85%-null column kept 0.36 of a 0.975 association)
        z = _conditional_fill(np.column_stack(scores), np.column_stack(nulls), rng, _FILL_ROWS)
        with np.errstate(invalid="ignore", divide="ignore"):  # a constant column has zero variance
            corr = np.corrcoef(z, rowvar=False) if z.shape[1] > 1 else np.ones((1, 1))
        corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)  # a constant column has no correlation
        corr = _latent(corr, np.array([_hermite(m, zj[~nj]) for m, zj, nj in zip(marginals, scores, nulls)]))
        np.fill_diagonal(corr, 1.0)
        a = self.params["shrinkage"]
        corr = (1 - a) * corr + a * np.eye(len(corr))
        self._marginals = marginals
        self._corr = corr
        if callback is not None:
            callback(0, {"mean_abs_correlation": float(np.abs(corr - np.eye(len(corr))).mean())})

    # -- sample -----------------------------------------------------------------------------------

    def _sample(self, n: int, seed: int) -> pl.DataFrame:
        rng = np.random.default_rng(seed)
        chol = np.linalg.cholesky(self._corr)
        return self._decode(rng.standard_normal((n, len(self._marginals))) @ chol.T)

    def _sample_conditioned(self, n: int, seed: int, conditions: Conditions) -> pl.DataFrame:
        """One categorical or boolean condition exactly: its score drawn inside the level's interval by inverse CDF,
        the others from the Gaussian given it. Anything else by rejection."""
        if len(conditions) != 1:
            return rejection_sample(self, self._sample, n, seed, conditions)
        (name, value), = conditions.items()
        k = next((j for j, m in enumerate(self._marginals) if m.column == name and m.role == "levels"), None)
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if k is None or text not in self._marginals[k].levels:
            return rejection_sample(self, self._sample, n, seed, conditions)
        m = self._marginals[k]
        i = m.levels.index(text)
        hi = m.cum[i]
        lo = m.cum[i - 1] if i else 0.0
        rng = np.random.default_rng(seed)
        zk = ndtri(np.clip(lo + rng.uniform(0.0, 1.0, n) * (hi - lo), _EPS, 1 - _EPS))
        r = self._corr
        rest = np.r_[0:k, k + 1:len(r)]
        cov = r[np.ix_(rest, rest)] - np.outer(r[rest, k], r[k, rest])
        w, v = np.linalg.eigh((cov + cov.T) / 2)  # a symmetric root: the conditional covariance may be singular
        root = v * np.sqrt(np.clip(w, 0.0, None))
        z = np.empty((n, len(r)))
        z[:, k] = zk
        z[:, rest] = zk[:, None] * r[rest, k] + rng.standard_normal((n, len(rest))) @ root.T
        out = self._decode(z)
        # the interval's edges are clipped at _EPS; a value drawn right on an edge is redrawn by rejection
        bad = ~meets(out, conditions)
        if bad.any():
            out = pl.concat([out.filter(~bad), rejection_sample(self, self._sample, int(bad.sum()), seed + 1,
                                                                conditions)])
        return out

    def _decode(self, z: np.ndarray) -> pl.DataFrame:
        u = np.clip(ndtr(z), _EPS, 1 - _EPS)
        decoded: dict[str, np.ndarray] = {}
        null_masks: dict[str, np.ndarray] = {}
        for j, m in enumerate(self._marginals):
            if m.role == "numeric":
                probs = np.linspace(0.0, 1.0, len(m.quantiles))
                x = np.interp(u[:, j], probs, np.asarray(m.quantiles))
                for value, lo, hi in m.atoms or []:
                    x[(u[:, j] >= lo) & (u[:, j] <= hi)] = value
                decoded[m.column] = x
            else:
                idx = np.searchsorted(np.asarray(m.cum), u[:, j], side="left")
                idx = np.minimum(idx, len(m.levels) - 1)
                values = np.asarray(m.levels, dtype=object)[idx]
                if m.role == "nulls":
                    null_masks[m.column] = values == None  # noqa: E711 - elementwise on object array
                else:
                    decoded[m.column] = values
        columns = []
        for spec in self.schema.columns:
            values = decoded[spec.name]
            if spec.is_numeric:
                values = values.astype(np.float64)
                if spec.kind != ColumnKind.CONTINUOUS:
                    values = np.round(values)
                mask = null_masks.get(spec.name)
                if mask is not None:
                    values = np.where(mask, np.nan, values)
                s = pl.Series(spec.name, values, dtype=pl.Float64, nan_to_null=True)
                if spec.kind == ColumnKind.DATETIME:
                    s = s.cast(pl.Int64).cast(spec.polars_dtype)
            elif spec.kind == ColumnKind.BOOLEAN:
                s = pl.Series(spec.name, [None if v is None else v == "true" for v in values], dtype=pl.Boolean)
            else:
                s = pl.Series(spec.name, values.tolist(), dtype=pl.String)
            columns.append(s)
        return pl.DataFrame(columns)

    # -- persistence ------------------------------------------------------------------------------

    def _state(self, path: Path) -> None:
        np.save(path / "correlation.npy", self._corr)
        (path / "marginals.json").write_text(json.dumps([asdict(m) for m in self._marginals]))

    def _restore(self, path: Path) -> None:
        self._corr = np.load(path / "correlation.npy")
        self._marginals = [_Marginal(**m) for m in json.loads((path / "marginals.json").read_text())]


TERMS = 30  # Hermite terms of a discrete column's score as a function of its latent normal


def _hermite(m: _Marginal, z: np.ndarray) -> np.ndarray:
    """Coefficients c_n (n = 1..TERMS) of this column's standardised score in normalised Hermite polynomials of
    its latent normal, the column read as a latent normal cut at its cumulative shares (a 0/1 flag, a coded 0-9
    share, a category). For two such columns, corr(scores) = sum_n rho^n c_n c'_n, rho the latent correlation
    (Mehler's formula). A continuous column is its latent: c = (1, 0, ...).

    The score is the level's normal score (numeric ties share a mid-rank score) or a jittered draw inside the
    level's interval (levels: only E[latent | level] correlates, the jitter is independent, the variance is 1).
    """
    c = np.zeros(TERMS)
    if m.role == "numeric":
        values, counts = np.unique(z, return_counts=True)
        if len(counts) > 0.5 * len(z) or len(counts) < 2:
            c[0] = 1.0  # (nearly) no ties: the score is the latent
            return c
        p = counts / counts.sum()
        sd = float(np.sqrt(np.sum(p * values**2) - np.sum(p * values) ** 2))
    else:
        p = np.diff(np.r_[0.0, np.asarray(m.cum)])
        keep = p > 0
        if keep.sum() < 2:
            c[0] = 1.0
            return c
        p = p[keep]
        values, sd = None, 1.0
    tau = ndtri(np.clip(np.cumsum(p)[:-1], _EPS, 1 - _EPS))
    phi = np.exp(-0.5 * tau**2) / np.sqrt(2 * np.pi)
    if values is None:
        values = (np.r_[0.0, phi] - np.r_[phi, 0.0]) / p  # E[latent | level]
    h_prev, h = np.zeros_like(tau), np.ones_like(tau)  # h_{n-1}, h_n normalised Hermite at the cuts, n = 0
    for n in range(1, TERMS + 1):
        edge = np.r_[0.0, h * phi, 0.0]  # h_{n-1}(tau) phi(tau) at every cut; 0 at -inf and +inf
        c[n - 1] = float(np.sum(values * (edge[:-1] - edge[1:]))) / np.sqrt(n) / sd
        h_prev, h = h, (tau * h - np.sqrt(n - 1) * h_prev) / np.sqrt(n)
    return c


def _latent(corr: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Latent correlations whose discretised scores have the observed correlations `corr` (solved per pair by
    bisection of Mehler's series; `coef` from `_hermite`), inside (-0.99, 0.99) and made positive semi-definite
    again (eigenvalues floored) so the copula can sample it.

    Without it a discrete column's associations fade twice: its scores' correlation understates the latent one
    and sampling cuts the latent again; two flags each set on 5% of rows kept 38% of their Cramér's V.
    """
    lo, hi = np.full(corr.shape, -0.99), np.full(corr.shape, 0.99)
    pairs = np.einsum("in,jn->nij", coef, coef)  # c_n c'_n for every pair
    powers = np.arange(1, coef.shape[1] + 1)[:, None, None]
    for _ in range(40):
        mid = (lo + hi) / 2
        low = (mid[None] ** powers * pairs).sum(axis=0) < corr
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    out = (lo + hi) / 2
    np.fill_diagonal(out, 1.0)
    w, v = np.linalg.eigh((out + out.T) / 2)
    if w.min() < 1e-6:
        out = (v * np.clip(w, 1e-6, None)) @ v.T
        d = np.sqrt(np.diag(out))
        out = out / np.outer(d, d)
    return out


def _fit_numeric(name: str, values: np.ndarray, observed: np.ndarray, points: int) -> tuple[_Marginal, np.ndarray]:
    """Empirical quantile function, and the normal score of every row (0 where the value is null)."""
    z = np.zeros(len(values))
    obs = values[observed]
    if len(obs) == 0:
        return _Marginal(name, "numeric", quantiles=[0.0, 0.0]), z
    quantiles = np.quantile(obs, np.linspace(0.0, 1.0, min(points, max(len(obs), 2))))
    # average ranks, so ties (integers, repeated values) share one score instead of a spurious order
    order = np.argsort(obs, kind="stable")
    sorted_obs = obs[order]
    _, first, counts = np.unique(sorted_obs, return_index=True, return_counts=True)
    mid_rank = np.repeat(first + (counts + 1) / 2.0, counts)
    ranks = np.empty(len(obs))
    ranks[order] = mid_rank
    z[observed] = ndtri(ranks / (len(obs) + 1))
    # a point mass: a value on at least ATOM_ROWS rows and ATOM_SHARE of them (the zeros of an amount, the
    # levels of a coded column); its rows' mid-rank scores lie inside its interval, so they decode back to it
    n = len(obs)
    heavy = (counts >= ATOM_ROWS) & (counts >= ATOM_SHARE * n)
    atoms = [[float(sorted_obs[f]), f / n, (f + c) / n] for f, c in zip(first[heavy], counts[heavy])]
    return _Marginal(name, "numeric", quantiles=quantiles.tolist(), atoms=atoms or None), z


def _fit_levels(name: str, role: str, values: np.ndarray, rng: np.random.Generator) -> tuple[_Marginal, np.ndarray]:
    """Frequency intervals of [0, 1], most frequent first; each row's score is a jittered point in its interval."""
    keys = np.array(["\x00null" if v is None else str(v) for v in values], dtype=object)
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    rank_of = np.empty(len(order), dtype=np.int64)
    rank_of[order] = np.arange(len(order))
    p = counts[order] / counts.sum()
    cum = np.cumsum(p)
    cum[-1] = 1.0
    left = np.concatenate([[0.0], cum[:-1]])
    r = rank_of[inverse]
    u = left[r] + rng.uniform(0.0, 1.0, len(values)) * p[r]
    z = ndtri(np.clip(u, _EPS, 1 - _EPS))
    levels = [None if k == "\x00null" else k for k in uniq[order]]
    return _Marginal(name, role, levels=levels, cum=cum.tolist()), z
