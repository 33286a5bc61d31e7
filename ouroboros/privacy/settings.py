"""The `dp` block of a study's generator params, typed and checked: `params: {dp: {epsilon: 3.0, ...}}`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ouroboros.generators.base import GeneratorError

KEYS = ("epsilon", "delta", "max_grad_norm", "preprocessing_share", "public")


@dataclass(frozen=True)
class PublicColumn:
    """What the user declares public about one column: its range, or its full category list."""

    min: float | None = None
    max: float | None = None
    categories: tuple | None = None
    nullable: bool = True

    @property
    def complete(self) -> bool:
        """True when no statistic of this column has to be learned from the real rows."""
        return self.categories is not None or (self.min is not None and self.max is not None)


@dataclass(frozen=True)
class DPSettings:
    epsilon: float
    delta: float | None = None  # None: min(1e-5, 1 / rows), fixed when the rows are known
    max_grad_norm: float = 1.0
    preprocessing_share: float = 0.1  # share of epsilon spent on encoder statistics no column declared public
    public: dict[str, PublicColumn] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any, family: str) -> DPSettings:
        where = f"{family}: parameter dp"
        if not isinstance(raw, dict):
            raise GeneratorError(f"{where} must be a mapping like {{epsilon: 3.0, delta: 1e-5, max_grad_norm: 1.0}}, "
                                 f"got {raw!r}")
        unknown = sorted(set(raw) - set(KEYS))
        if unknown:
            raise GeneratorError(f"{where}: unknown key(s) {unknown}; valid ones are {list(KEYS)}")
        if "epsilon" not in raw:
            raise GeneratorError(f"{where}: epsilon is required (the privacy budget, e.g. 3.0)")

        def number(key: str, default: float | None, lo: float, hi: float = math.inf) -> float | None:
            value = raw.get(key, default)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo < value < hi:
                raise GeneratorError(f"{where}.{key} must be a number in ({lo}, {hi}), got {value!r}")
            return float(value)

        public = {}
        raw_public = raw.get("public") or {}
        if not isinstance(raw_public, dict):
            raise GeneratorError(f"{where}.public must map column names to {{min, max}} or {{categories: [...]}}")
        for col, spec in raw_public.items():
            if not isinstance(spec, dict) or not set(spec) <= {"min", "max", "categories", "nullable"}:
                raise GeneratorError(f"{where}.public.{col} must be a mapping with min/max, categories and/or "
                                     f"nullable, got {spec!r}")
            cats = spec.get("categories")
            if cats is not None and (not isinstance(cats, list) or not cats):
                raise GeneratorError(f"{where}.public.{col}.categories must be a non-empty list, got {cats!r}")
            lo, hi = spec.get("min"), spec.get("max")
            if (lo is None) != (hi is None) or (lo is not None and not float(lo) <= float(hi)):
                raise GeneratorError(f"{where}.public.{col}: give both min and max, with min <= max (got {lo}, {hi})")
            public[str(col)] = PublicColumn(None if lo is None else float(lo), None if hi is None else float(hi),
                                            None if cats is None else tuple(cats), bool(spec.get("nullable", True)))
        return cls(epsilon=number("epsilon", None, 0.0), delta=number("delta", None, 0.0, 1.0),
                   max_grad_norm=number("max_grad_norm", 1.0, 0.0),
                   preprocessing_share=number("preprocessing_share", 0.1, 0.0, 1.0), public=public)

    def delta_for(self, rows: int) -> float:
        """δ for a table of `rows` rows: the declared one, which must be below 1 / rows, or min(1e-5, 1 / rows)."""
        if self.delta is None:
            return min(1e-5, 1.0 / rows)
        if self.delta >= 1.0 / rows:
            raise GeneratorError(f"dp.delta={self.delta:g} is not below 1 / rows = {1.0 / rows:.3g}: such a δ allows "
                                 "publishing a whole real row; lower it or leave it out (default min(1e-5, 1/rows))")
        return self.delta
