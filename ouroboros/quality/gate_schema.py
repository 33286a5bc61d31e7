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
               f"fresh real rows show the real_train null share within binomial noise")
        if spec.kind == ColumnKind.CATEGORICAL and spec.name not in {w[0] for w in wrong}:
            _unknown_categories(j, s, train[spec.name], holdout[spec.name] if holdout.height else None, spec)
    return not wrong


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
