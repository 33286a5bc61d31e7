"""The one interface every generator family implements: fit a polars frame, sample a polars frame."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from ouroboros.schema import TableSchema, conform, infer_schema

# Called by fit with (epoch, {loss name: value}) so the caller can log progress wherever it likes.
ProgressCallback = Callable[[int, dict[str, float]], None]

META_FILE = "generator.json"


class GeneratorError(ValueError):
    """A generator was misused or misconfigured; the message says which setting or call and what to do."""


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

    def sample(self, n: int, seed: int | None = None) -> pl.DataFrame:
        """Draw `n` rows; the same seed on the same fitted generator gives the same rows."""
        if self.schema is None:
            raise GeneratorError(f"{self.family}: call fit() (or load()) before sample()")
        if not isinstance(n, int) or n < 0:
            raise GeneratorError(f"{self.family}.sample: n must be a non-negative integer, got {n!r}")
        seed = self.seed if seed is None else seed
        if n == 0:
            return conform(pl.DataFrame({c: [] for c in self.schema.names}), self.schema)
        return conform(self._sample(n, seed), self.schema)

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
