"""Reference generator: a multivariate Gaussian fitted by its mean and (unbiased) covariance.

The textbook model of recursive training (Shumailov et al., Nature 2024): no capacity limits, no
optimiser, so whatever drift a chain of it shows comes from finite sampling alone. The maths lives in
two array functions, `fit_moments` and `sample_moments`, that work on one table or on a stack of many
independent chains at once; the `Generator` subclass wraps them for polars frames and the pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from ouroboros.generators.base import Generator, GeneratorError, ProgressCallback
from ouroboros.schema import ColumnKind

NUMERIC = (ColumnKind.CONTINUOUS, ColumnKind.INTEGER)


def fit_moments(x: np.ndarray, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of rows `x` shaped (..., rows, columns); ddof=1 gives the unbiased covariance."""
    n = x.shape[-2]
    if n <= ddof:
        raise GeneratorError(f"gaussian: need more than {ddof} rows to estimate a covariance, got {n}")
    mean = x.mean(axis=-2)
    centred = x - mean[..., None, :]
    cov = np.einsum("...ri,...rj->...ij", centred, centred) / (n - ddof)
    return mean, cov


def sample_moments(mean: np.ndarray, cov: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw `n` rows per chain from N(mean, cov); shapes (..., d) and (..., d, d) give (..., n, d)."""
    d = mean.shape[-1]
    # eigh tolerates the singular covariance a collapsed chain ends with, where Cholesky would fail
    values, vectors = np.linalg.eigh(cov)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]
    z = rng.standard_normal((*mean.shape[:-1], n, d))
    return mean[..., None, :] + np.einsum("...ij,...nj->...ni", root, z)


class GaussianReference(Generator):
    """Multivariate Gaussian over the numeric columns (nulls: rows dropped for the fit, none sampled)."""

    family = "gaussian"
    PARAMS = {"ddof": (int, 1)}  # 1: unbiased covariance (the published setup); 0: maximum likelihood

    def _validate_params(self) -> None:
        if self.params["ddof"] not in (0, 1):
            raise GeneratorError("gaussian: ddof must be 0 (maximum likelihood) or 1 (unbiased)")

    def _fit(self, df: pl.DataFrame, callback: ProgressCallback | None) -> None:
        other = [c.name for c in self.schema.columns if c.kind not in NUMERIC]
        if other:
            raise GeneratorError(f"gaussian: the reference generator models numeric columns only; {other} are not "
                                 "(drop them, or use the copula family for mixed tables)")
        empty = [c for c in df.columns if df[c].null_count() == df.height]
        if empty:
            raise GeneratorError(f"gaussian: column(s) {empty} are entirely null, so every row would be dropped; "
                                 "drop them, or use the copula family")
        x = df.select(pl.all().cast(pl.Float64)).drop_nulls().drop_nans().to_numpy()
        self._mean, self._cov = fit_moments(x, ddof=self.params["ddof"])
        if callback is not None:
            callback(0, {"rows": float(x.shape[0])})

    def _sample(self, n: int, seed: int) -> pl.DataFrame:
        x = sample_moments(self._mean, self._cov, n, np.random.default_rng(seed))
        return pl.DataFrame(x, schema=self.schema.names, orient="row")

    def _state(self, path: Path) -> None:
        (path / "moments.json").write_text(json.dumps({"mean": self._mean.tolist(), "cov": self._cov.tolist()}))

    def _restore(self, path: Path) -> None:
        state = json.loads((path / "moments.json").read_text())
        self._mean, self._cov = np.asarray(state["mean"]), np.asarray(state["cov"])
