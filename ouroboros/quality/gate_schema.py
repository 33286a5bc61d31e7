"""Contract family of the scorecard: dtypes, null shares and unknown categories, so the gate holds without
Great Expectations too. A wrong dtype is refused outright; null and unknown-category rates are tested against
what fresh real rows of the batch's size show."""

from __future__ import annotations

import polars as pl

from ouroboros.config import GateConfig
from ouroboros.quality.judge import Judge
from ouroboros.quality.stats import rate_excess_p
from ouroboros.schema import ColumnKind, TableSchema


def level_counts(s: pl.Series) -> pl.DataFrame:
    """Counts of each non-null level as text, in columns `level` and `count` whatever the series is called."""
    text = s.cast(pl.String).drop_nulls()
    return text.rename("level").to_frame().group_by("level").agg(pl.len().alias("count"))


def score_schema(j: Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame, schema: TableSchema,
                 config: GateConfig) -> bool:
    """Types, nulls and unknown categories; False when a dtype is wrong (nothing else can be scored)."""
    wrong = [(spec.name, str(syn[spec.name].dtype), spec.dtype) for spec in schema.columns
             if str(syn[spec.name].dtype) != spec.dtype]
    for name, got, want in wrong:
        j.refuse("contract", f"dtype.{name}", 0.0, 1.0, f"{name} has dtype {got}, the real data has {want}")
    n_s, n_t = syn.height, train.height
    for spec in schema.columns:
        s = syn[spec.name]
        nulls = s.null_count()
        share = nulls / max(n_s, 1)
        real_nulls = train[spec.name].null_count()
        real_share = real_nulls / max(n_t, 1)
        j.scores[f"contract.null_share.{spec.name}"] = share
        j.test("contract", f"contract.nulls.{spec.name}", share - real_share, config.null_tolerance, "above",
               rate_excess_p(nulls, n_s, real_nulls, n_t),
               f"{spec.name} has {share:.2%} nulls (real_train: {real_share:.2%})",
               "fresh real rows show the real_train null share within binomial noise")
        if syn[spec.name].dtype.is_float() and train[spec.name].dtype.is_float():
            _non_finite(j, spec.name, s, train[spec.name])
        if spec.kind == ColumnKind.CATEGORICAL and spec.name not in {w[0] for w in wrong}:
            _unknown_categories(j, s, train[spec.name], holdout[spec.name] if holdout.height else None, spec)
    return not wrong


def _non_finite(j: Judge, name: str, s: pl.Series, real: pl.Series) -> None:
    """NaN and +-inf in a float column (nulls are judged apart). Where real_train has none, fresh real rows have
    none either, at any size: a generator that writes one overflowed or divided by zero, so the batch is refused
    outright, naming the column. Where real_train has some, the batch's rate is tested against real_train's."""
    bad = s.is_nan() | s.is_infinite()
    x = int(bad.sum())
    y = int((real.is_nan() | real.is_infinite()).sum())
    n_s, n_t = s.len() - s.null_count(), real.len() - real.null_count()
    share, real_share = x / max(n_s, 1), y / max(n_t, 1)
    j.scores[f"contract.non_finite_share.{name}"] = share
    if x == 0 and y == 0:
        return
    kinds = s.filter(bad).cast(pl.String).value_counts(sort=True).rows()
    seen = ", ".join(f"{k} x{c}" for k, c in kinds)
    if y == 0:
        j.refuse("contract", f"non_finite.{name}", float(x), 0.0,
                 f"{name} has {x} value(s) that are not finite numbers ({seen}) where real_train has none: fresh "
                 "real rows never show one, a generator that does overflowed or divided by zero. Fix the generator "
                 "(or drop those rows before the gate); the other scores were taken on the finite values")
        return
    j.test("contract", f"contract.non_finite.{name}", share - real_share, 0.0, "above", rate_excess_p(x, n_s, y, n_t),
           f"{name} has {x} value(s) that are not finite ({seen}; {share:.2%} of its values, real_train: "
           f"{real_share:.2%})", "fresh real rows show the real_train share of them within binomial noise")


def _unknown_categories(j: Judge, s: pl.Series, real: pl.Series, holdout: pl.Series | None, spec) -> None:
    """Rows showing a level real_train lacks. Fresh real rows do that too, at the rate of real_train's unseen
    mass, which Good-Turing estimates by the share of rows whose level real_train shows once; the holdout's own
    unknown-level rows give a second, exact baseline. The batch is refused only beyond both."""
    known = pl.Series(list(spec.categories), dtype=pl.String)
    text = s.cast(pl.String)
    unknown_mask = text.is_not_null() & ~text.is_in(known)
    x = int(unknown_mask.sum())
    n_s = s.len()
    counts = level_counts(real)
    singletons = int((counts["count"] == 1).sum())
    n_t = real.len() - real.null_count()
    j.scores[f"contract.unknown_categories.{spec.name}"] = float(text.filter(unknown_mask).n_unique()) if x else 0.0
    j.scores[f"contract.unknown_category_rows.{spec.name}.good_turing"] = singletons / max(n_t, 1)
    p_gt = rate_excess_p(x, n_s, singletons, max(n_t, 1))
    p_h = 1.0
    if holdout is not None and holdout.len():
        h = holdout.cast(pl.String)
        y = int((h.is_not_null() & ~h.is_in(known)).sum())
        j.scores[f"contract.unknown_category_rows.{spec.name}.noise_floor"] = y / holdout.len()
        p_h = rate_excess_p(x, n_s, y, holdout.len())
    examples = text.filter(unknown_mask).unique().sort().head(5).to_list()
    j.test("contract", f"contract.categories.{spec.name}", x / max(n_s, 1), 0.0, "above", max(p_gt, p_h),
           f"{spec.name} has {x} rows with categories real_train never showed: {examples}",
           f"fresh real rows show unseen levels at about the share of real_train rows whose level occurs once "
           f"({singletons / max(n_t, 1):.2%}, Good-Turing)")
