"""The one interface every generator family implements: fit a polars frame, sample a polars frame."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from ouroboros.errors import GeneratorError  # noqa: F401 - re-exported: defined in the leaf errors module
from ouroboros.schema import ColumnKind, ColumnRole, TableSchema, conform, infer_schema

# Called by fit with (epoch, {loss name: value}) so the caller can log progress wherever it likes.
ProgressCallback = Callable[[int, dict[str, float]], None]

META_FILE = "generator.json"
# rejection sampling (the fallback of `sample(conditions=...)`) draws at most this many rows per requested row:
# a condition rarer than 1 in REJECTION_BUDGET of the sampled rows is refused with a clear error
REJECTION_BUDGET = 200
REJECTION_ROUNDS = 8

Conditions = dict[str, Any]


class Generator(ABC):
    """Base class: subclasses implement `_fit`, `_sample`, `_state` and `_restore`."""

    family: ClassVar[str]
    # name -> (type, default); validated in __init__ so a typo fails at create(), not after an hour of fitting
    PARAMS: ClassVar[dict[str, tuple[type, Any]]] = {}

    def __init__(self, seed: int = 0, device: str = "cpu", **params: Any) -> None:
        unknown = sorted(set(params) - set(self.PARAMS))
        if unknown:
            raise GeneratorError(
                f"{self.family}: unknown parameter(s) {unknown}; valid ones are {sorted(self.PARAMS)} "
                "plus seed and device"
            )
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise GeneratorError(f"{self.family}: seed must be an integer, got {seed!r}")
        self.seed = seed
        self.device = device
        self.params: dict[str, Any] = {}
        for name, (kind, default) in self.PARAMS.items():
            value = params.get(name, default)
            if value is not None and kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if value is not None and not isinstance(value, kind):
                raise GeneratorError(f"{self.family}: parameter {name} must be {kind.__name__}, got {value!r}")
            self.params[name] = value
        self._validate_params()
        self.schema: TableSchema | None = None
        self.privacy: dict | None = None  # dp hook: the PrivacyReport of a DP fit, as a dict (ouroboros.privacy)

    def _validate_params(self) -> None:
        """Subclasses check ranges here and raise GeneratorError naming the parameter."""

    # -- public API -------------------------------------------------------------------------------

    def fit(self, df: pl.DataFrame, callback: ProgressCallback | None = None) -> Generator:
        """Learn the joint distribution of `df` (mixed dtypes, nulls allowed)."""
        if not isinstance(df, pl.DataFrame):
            raise GeneratorError(f"{self.family}.fit expects a polars DataFrame, got {type(df).__name__}")
        if df.height < 2:
            raise GeneratorError(f"{self.family}.fit needs at least 2 rows, got {df.height}")
        self.schema = infer_schema(df)
        self._fit(df, callback)
        return self

    def sample(self, n: int, seed: int | None = None, conditions: Conditions | None = None) -> pl.DataFrame:
        """Draw `n` rows; the same seed on the same fitted generator gives the same rows.

        `conditions` ({column: value}, categorical, boolean or integer columns) makes every row meet them: exactly
        where the family can condition its model (copula: the Gaussian given the column's interval; GAN: its
        conditional vector; diffusion: the column's group revealed from the first step), else by bounded
        rejection sampling, which raises a GeneratorError when the condition is too rare to meet that way.
        """
        if self.schema is None:
            raise GeneratorError(f"{self.family}: call fit() (or load()) before sample()")
        if not isinstance(n, int) or n < 0:
            raise GeneratorError(f"{self.family}.sample: n must be a non-negative integer, got {n!r}")
        seed = self.seed if seed is None else seed
        conditions = self._check_conditions(conditions) if conditions else {}
        if n == 0:
            return conform(pl.DataFrame({c: [] for c in self.schema.names}), self.schema)
        if not conditions:
            return conform(self._sample(n, seed), self.schema)
        out = conform(self._sample_conditioned(n, seed, conditions), self.schema)
        if out.height != n or not bool(meets(out, conditions).all()):  # a family hook that broke its promise
            raise GeneratorError(f"{self.family}: conditional sampling returned rows that miss {conditions}")
        return out

    def _check_conditions(self, conditions: Conditions) -> Conditions:
        """The conditions with values in the column's own type, or a GeneratorError naming what is wrong."""
        if not isinstance(conditions, dict):
            raise GeneratorError(f"{self.family}.sample: conditions must be a dict {{column: value}}, got {conditions!r}")
        out = {}
        for name, value in conditions.items():
            if name not in self.schema.names:
                raise GeneratorError(f"{self.family}.sample: condition column {name!r} is not a modelled column; "
                                     f"columns are {self.schema.names}")
            spec = self.schema.column(name)
            if spec.role != ColumnRole.VALUE:
                raise GeneratorError(f"{self.family}.sample: column {name!r} is an identifier or free text "
                                     "(regenerated, not modelled): it cannot be a condition")
            if spec.kind == ColumnKind.CATEGORICAL:
                if str(value) not in spec.categories:
                    known = ", ".join(repr(c) for c in spec.categories[:10])
                    raise GeneratorError(f"{self.family}.sample: {name!r} never takes the value {value!r} in the "
                                         f"training rows; its values include {known}")
                out[name] = str(value)
            elif spec.kind == ColumnKind.BOOLEAN:
                if not isinstance(value, (bool, np.bool_)):
                    raise GeneratorError(f"{self.family}.sample: condition on boolean {name!r} must be True or "
                                         f"False, got {value!r}")
                out[name] = bool(value)
            elif spec.kind == ColumnKind.INTEGER:
                if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)) or (
                        spec.min is not None and not spec.min <= value <= spec.max):
                    raise GeneratorError(f"{self.family}.sample: condition on integer {name!r} must be an integer "
                                         f"in its real range {spec.min:g}..{spec.max:g}, got {value!r}")
                out[name] = int(value)
            else:
                raise GeneratorError(f"{self.family}.sample: {name!r} is {spec.kind.value}; conditions take "
                                     "categorical, boolean or integer columns (bin a continuous column first)")
        return out

    def _sample_conditioned(self, n: int, seed: int, conditions: Conditions) -> pl.DataFrame:
        """Rows that meet `conditions`; this default is bounded rejection sampling (families override it)."""
        return rejection_sample(self, self._sample, n, seed, conditions)

    def save(self, path: str | Path) -> Path:
        """Write the fitted generator into folder `path` (created); `load(path)` restores it."""
        if self.schema is None:
            raise GeneratorError(f"{self.family}: nothing to save, the generator is not fitted")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._state(path)
        meta = {"family": self.family, "seed": self.seed, "params": self.params, "schema": self.schema.to_dict(),
                "privacy": self.privacy}
        (path / META_FILE).write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def restore(cls, path: Path, meta: dict, device: str | None = None) -> Generator:
        gen = cls(seed=meta["seed"], device=device or "cpu", **meta["params"])
        gen.schema = TableSchema.from_dict(meta["schema"])
        gen.privacy = meta.get("privacy")
        gen._restore(path)
        return gen

    # -- for subclasses ---------------------------------------------------------------------------

    @abstractmethod
    def _fit(self, df: pl.DataFrame, callback: ProgressCallback | None) -> None: ...

    @abstractmethod
    def _sample(self, n: int, seed: int) -> pl.DataFrame: ...

    @abstractmethod
    def _state(self, path: Path) -> None:
        """Write the learned state into `path`."""

    @abstractmethod
    def _restore(self, path: Path) -> None:
        """Read the learned state back from `path` (schema and params are already set)."""


def meets(df: pl.DataFrame, conditions: Conditions) -> pl.Series:
    """Which rows of `df` meet every condition (a boolean Series; nulls do not meet a condition)."""
    mask = pl.Series([True] * df.height)
    for name, value in conditions.items():
        col = df[name].cast(pl.String) if isinstance(value, str) else df[name]
        mask = mask & (col == value).fill_null(False)
    return mask


def rejection_sample(gen: Generator, draw: Callable[[int, int], pl.DataFrame], n: int, seed: int,
                     conditions: Conditions) -> pl.DataFrame:
    """`n` rows meeting `conditions` from `draw(rows, seed)`, in rounds sized by the share met so far; at most
    REJECTION_BUDGET rows drawn per requested row."""
    kept: list[pl.DataFrame] = []
    got = drawn = met = 0
    for r in range(REJECTION_ROUNDS):
        share = max(met / drawn, 1.0 / REJECTION_BUDGET) if drawn else 0.5
        rows = min(int(np.ceil(1.2 * (n - got) / share)) + 16, REJECTION_BUDGET * n - drawn)
        if rows <= 0:
            break
        batch = conform(draw(rows, seed + 7919 * (r + 1)), gen.schema)
        mask = meets(batch, conditions)
        drawn, met = drawn + batch.height, met + int(mask.sum())
        kept.append(batch.filter(mask))
        got += kept[-1].height
        if got >= n:
            return pl.concat(kept).head(n)
    raise GeneratorError(
        f"{gen.family}: only {met} of {drawn} sampled rows ({met / max(drawn, 1):.3%}) meet {conditions}, too few "
        f"for {n} rows by rejection sampling (this family cannot condition its model on them exactly). Ask for "
        "fewer rows, condition on fewer columns, or use a family that conditions exactly (copula, gan, diffusion)")
