"""The worked example of docs/plugins.md: a generator family wrapping a scikit-learn-style object with `fit(X)`
and `sample(n)`, here `sklearn.mixture.GaussianMixture`. tests/test_plugins.py installs this file as a plugin
package and runs it through the whole graph, so the example in the docs is the code that is tested."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.mixture import GaussianMixture

from ouroboros.generators import Generator, GeneratorError
from ouroboros.schema import ColumnKind, ColumnRole


class MixtureFamily(Generator):
    """A Gaussian mixture over the table: numbers standardised, categories one-hot (argmax on the way back)."""

    family = "mixture"
    PARAMS = {"components": (int, 8)}

    def _validate_params(self) -> None:
        if self.params["components"] < 1:
            raise GeneratorError(f"{self.family}: components must be >= 1, got {self.params['components']}")

    # encoding: what the scikit-learn object sees is a float matrix
    def _columns(self):
        return [c for c in self.schema.columns if c.role == ColumnRole.VALUE]

    def _encode(self, df: pl.DataFrame) -> np.ndarray:
        blocks = []
        for c in self._columns():
            if c.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
                text = df[c.name].cast(pl.String).fill_null("<null>").to_numpy()
                blocks.append((text[:, None] == np.array(self.levels[c.name])[None, :]).astype(float))
            else:
                x = df[c.name].to_physical().cast(pl.Float64).to_numpy()
                mean, sd = self.scale[c.name]
                blocks.append(((np.nan_to_num(x, nan=mean) - mean) / sd)[:, None])
        return np.hstack(blocks)

    def _decode(self, z: np.ndarray) -> pl.DataFrame:
        out, at = {}, 0
        for c in self._columns():
            if c.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
                width = len(self.levels[c.name])
                values = np.array(self.levels[c.name], dtype=object)[z[:, at:at + width].argmax(axis=1)]
                values[values == "<null>"] = None
                out[c.name] = pl.Series(c.name, values.tolist(), dtype=pl.String)
                if c.kind == ColumnKind.BOOLEAN:
                    out[c.name] = out[c.name] == "true"
                at += width
            else:
                mean, sd = self.scale[c.name]
                out[c.name] = pl.Series(c.name, z[:, at] * sd + mean)
                at += 1
        return pl.DataFrame(out)  # Generator.sample conforms it to the real types (integers rounded, ranges kept)

    def _fit(self, df: pl.DataFrame, callback) -> None:
        self.levels = {c.name: sorted(df[c.name].cast(pl.String).fill_null("<null>").unique().to_list())
                       for c in self._columns() if c.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)}
        self.scale = {}
        for c in self._columns():
            if c.name not in self.levels:
                x = df[c.name].to_physical().cast(pl.Float64).drop_nulls()
                self.scale[c.name] = (float(x.mean()), float(x.std()) or 1.0)
        self.model = GaussianMixture(self.params["components"], covariance_type="full", reg_covar=1e-3,
                                     random_state=self.seed).fit(self._encode(df))

    def _sample(self, n: int, seed: int) -> pl.DataFrame:
        self.model.random_state = seed  # GaussianMixture.sample draws from its random_state: same seed, same rows
        z, _ = self.model.sample(n)
        order = np.random.default_rng(seed).permutation(n)  # sample() returns rows grouped by component
        return self._decode(z[order])

    def _state(self, path: Path) -> None:  # the learned state as arrays and JSON: no pickle
        m = self.model
        np.savez(path / "mixture.npz", weights=m.weights_, means=m.means_, covariances=m.covariances_,
                 precisions_cholesky=m.precisions_cholesky_)
        (path / "encoding.json").write_text(json.dumps({"levels": self.levels, "scale": self.scale}))

    def _restore(self, path: Path) -> None:
        enc = json.loads((path / "encoding.json").read_text())
        self.levels, self.scale = enc["levels"], {k: tuple(v) for k, v in enc["scale"].items()}
        arrays = np.load(path / "mixture.npz")
        self.model = GaussianMixture(self.params["components"], covariance_type="full", random_state=self.seed)
        self.model.weights_, self.model.means_ = arrays["weights"], arrays["means"]
        self.model.covariances_, self.model.precisions_cholesky_ = arrays["covariances"], arrays["precisions_cholesky"]
