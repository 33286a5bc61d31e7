"""Shared encodings of a frame, fitted on real_train: a float matrix for k-NN and classifiers, and integer
bin codes (the real data's bins) for contingency tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ouroboros.schema import ColumnKind, TableSchema

MAX_LEVELS = 20  # categorical levels with their own one-hot column / bin; the rest share "other"
NUMERIC_BINS = 10  # quantile bins of the real data for numeric columns in contingency tables


def numeric_values(s: pl.Series) -> np.ndarray:
    """Float view of a numeric, boolean or datetime column; nulls become NaN."""
    return s.to_physical().cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64, copy=False)


def finite_values(s: pl.Series) -> np.ndarray:
    """The column's finite values: nulls, NaN and +-inf left out. Moments, ranks and quantiles are taken on these;
    how many values were not finite is judged on its own (`gate_schema`), so one inf cannot turn a variance, and
    with it a verdict, into inf or NaN."""
    x = numeric_values(s)
    return x[np.isfinite(x)]


def text_values(s: pl.Series) -> pl.Series:
    return s.cast(pl.String)


@dataclass
class Encoder:
    """Standardised numerics (nulls -> 0 plus a null flag) and one-hot top levels, scaled so that one
    category mismatch and one real standard deviation weigh the same in a Euclidean distance."""

    numeric: dict[str, tuple[float, float, bool]]  # column -> (mean, std, has nulls)
    categorical: dict[str, list[str]]  # column -> levels with their own column (the rest: "other")
    bins: dict[str, np.ndarray]  # numeric column -> inner bin edges (real quantiles)

    @classmethod
    def fit(cls, real: pl.DataFrame, schema: TableSchema, exclude: tuple[str, ...] = ()) -> Encoder:
        numeric, categorical, bins = {}, {}, {}
        for spec in schema.columns:
            if spec.name in exclude:
                continue
            s = real[spec.name]
            if spec.kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER, ColumnKind.DATETIME):
                x = finite_values(s)
                mean = float(x.mean()) if len(x) else 0.0
                std = float(x.std()) if len(x) > 1 and x.std() > 0 else 1.0
                numeric[spec.name] = (mean, std, bool(s.null_count() > 0))
                edges = np.unique(np.quantile(x, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1])) if len(x) else np.array([])
                bins[spec.name] = edges
            else:
                # named here, not by value_counts: a column called "count" would collide with its output
                counts = (text_values(s).drop_nulls().rename("level").to_frame().group_by("level")
                          .agg(pl.len().alias("k")).sort(["k", "level"], descending=[True, False]))
                categorical[spec.name] = counts["level"].head(MAX_LEVELS).to_list()
        return cls(numeric, categorical, bins)

    @property
    def columns(self) -> list[str]:
        return list(self.numeric) + list(self.categorical)

    def matrix(self, df: pl.DataFrame) -> np.ndarray:
        """float32 (rows, features) for distances and classifiers."""
        blocks = []
        for col, (mean, std, has_nulls) in self.numeric.items():
            x = numeric_values(df[col])
            missing = np.isnan(x)
            z = np.where(missing, 0.0, (x - mean) / std)
            blocks.append(np.clip(z, -10, 10)[:, None])
            if has_nulls:
                blocks.append(missing[:, None])
        for col, levels in self.categorical.items():
            codes = self._level_codes(df[col], levels)
            onehot = np.zeros((df.height, len(levels) + 2), dtype=np.float32)
            onehot[np.arange(df.height), codes] = np.float32(np.sqrt(0.5))
            blocks.append(onehot)
        if not blocks:
            return np.zeros((df.height, 1), dtype=np.float32)
        return np.concatenate([b.astype(np.float32, copy=False) for b in blocks], axis=1)

    def codes(self, df: pl.DataFrame) -> dict[str, tuple[np.ndarray, int]]:
        """Per column: integer bin codes on the real data's bins (nulls get their own) and the bin count."""
        out = {}
        for col in self.numeric:
            x = numeric_values(df[col])
            edges = self.bins[col]
            c = np.searchsorted(edges, x, side="right")
            c[np.isnan(x)] = len(edges) + 1
            out[col] = (c.astype(np.int64), len(edges) + 2)
        for col, levels in self.categorical.items():
            out[col] = (self._level_codes(df[col], levels), len(levels) + 2)
        return out

    @staticmethod
    def _level_codes(s: pl.Series, levels: list[str]) -> np.ndarray:
        """Level index; len(levels) for any other value, len(levels)+1 for null."""
        # typed explicitly: with no levels (an all-null column) an untyped frame would be of dtype Null
        mapping = pl.DataFrame({"v": pl.Series(levels, dtype=pl.String), "i": np.arange(len(levels), dtype=np.int64)})
        text = text_values(s).alias("v").to_frame()
        joined = text.join(mapping, on="v", how="left", maintain_order="left")["i"]
        codes = joined.fill_null(len(levels)).to_numpy().astype(np.int64)
        codes[s.is_null().to_numpy()] = len(levels) + 1
        return codes
