"""Scores of a synthetic batch against the real data, and the pass/fail verdict they imply."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from ouroboros.config import GateConfig
from ouroboros.schema import ColumnKind, TableSchema, infer_schema


@dataclass(frozen=True)
class Failure:
    check: str  # the Dagster check that owns it: contract, fidelity, privacy, collapse
    indicator: str
    value: float
    threshold: float
    reason: str


@dataclass
class Scorecard:
    passed: bool
    failures: list[Failure] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "failures": [asdict(f) for f in self.failures], "scores": self.scores}

    @classmethod
    def from_dict(cls, d: dict) -> Scorecard:
        return cls(passed=d["passed"], failures=[Failure(**f) for f in d["failures"]], scores=d["scores"])

    def failures_for(self, check: str) -> list[Failure]:
        return [f for f in self.failures if f.check == check]


def column_shape(real: pl.Series, synthetic: pl.Series, kind: ColumnKind) -> float:
    """1 - KS statistic for numeric columns, 1 - total variation distance for the rest (nulls count as a level)."""
    if kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER, ColumnKind.DATETIME):
        a = np.sort(real.to_physical().cast(pl.Float64).drop_nulls().drop_nans().to_numpy())
        b = np.sort(synthetic.to_physical().cast(pl.Float64).drop_nulls().drop_nans().to_numpy())
        if len(a) == 0 or len(b) == 0:
            return float(len(a) == len(b))
        grid = np.concatenate([a, b])
        ks = np.abs(np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b))
        return float(1.0 - ks.max())
    p = real.cast(pl.String).fill_null("\x00null").value_counts(normalize=True, name="p")
    q = synthetic.cast(pl.String).fill_null("\x00null").value_counts(normalize=True, name="q")
    joined = p.join(q, on=p.columns[0], how="full", coalesce=True).fill_null(0.0)
    return float(1.0 - 0.5 * (joined["p"] - joined["q"]).abs().sum())


def exact_copy_rate(rows: pl.DataFrame, reference: pl.DataFrame) -> float:
    """Share of `rows` that equal some row of `reference` in every column."""
    if rows.height == 0:
        return 0.0
    keys = reference.unique()
    return rows.join(keys, on=rows.columns, how="semi", nulls_equal=True).height / rows.height


def evaluate(
    synthetic: pl.DataFrame,
    real_train: pl.DataFrame,
    real_holdout: pl.DataFrame,
    config: GateConfig | None = None,
    schema: TableSchema | None = None,
) -> Scorecard:
    """Score a batch on fidelity, privacy and collapse indicators; `passed` says whether it may feed training."""
    config = config or GateConfig()
    schema = schema or infer_schema(real_train)
    if synthetic.columns != schema.names:
        f = Failure("contract", "columns", 0.0, 1.0, f"batch columns {synthetic.columns} != real {schema.names}")
        return Scorecard(passed=False, failures=[f], scores={})
    scores: dict[str, float] = {}
    failures: list[Failure] = []

    shapes = {}
    for spec in schema.columns:
        shapes[spec.name] = column_shape(real_train[spec.name], synthetic[spec.name], spec.kind)
        scores[f"shape.{spec.name}"] = shapes[spec.name]
        if shapes[spec.name] < config.min_column_shape:
            failures.append(Failure("fidelity", f"shape.{spec.name}", shapes[spec.name], config.min_column_shape,
                                    f"the distribution of {spec.name} differs from the real one"))
    scores["fidelity.column_shapes"] = float(np.mean(list(shapes.values())))

    copy_rate = exact_copy_rate(synthetic, real_train)
    # fresh real rows can coincide with training rows in a table of few distinct values: that rate is no leak
    baseline = exact_copy_rate(real_holdout, real_train) if real_holdout.height else 0.0
    allowed = max(config.max_exact_copy_rate, baseline * 1.5)
    scores.update({"privacy.exact_copy_rate": copy_rate, "privacy.exact_copy_rate_real_baseline": baseline})
    if copy_rate > allowed:
        failures.append(Failure("privacy", "exact_copy_rate", copy_rate, allowed,
                                f"{copy_rate:.2%} of synthetic rows copy a real_train row (fresh real rows: {baseline:.2%})"))

    for spec in schema.columns:
        if spec.kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER):
            r = real_train[spec.name].cast(pl.Float64).drop_nulls().drop_nans().var()
            s = synthetic[spec.name].cast(pl.Float64).drop_nulls().drop_nans().var()
            if r and r > 0 and s is not None:
                scores[f"collapse.variance_ratio.{spec.name}"] = float(s / r)
        elif spec.kind == ColumnKind.CATEGORICAL and spec.categories:
            kept = synthetic[spec.name].cast(pl.String).drop_nulls().unique().is_in(list(spec.categories)).sum()
            survival = kept / len(spec.categories)
            scores[f"collapse.category_survival.{spec.name}"] = float(survival)
            if survival < config.min_category_survival:
                failures.append(Failure("collapse", f"category_survival.{spec.name}", survival,
                                        config.min_category_survival,
                                        f"{spec.name} kept only {survival:.0%} of its real categories"))
    return Scorecard(passed=not failures, failures=failures, scores=scores)
