"""Checking a newly landed real-data file against the real table's schema before it may join it."""

from __future__ import annotations

import polars as pl

from ouroboros.schema import SchemaError, TableSchema


def conform_landed(df: pl.DataFrame, schema: TableSchema, source: str) -> pl.DataFrame:
    """Return `df` cast to the real schema, or raise SchemaError listing every problem found."""
    problems = []
    if df.height == 0:
        problems.append("the file has no rows")
    missing = [c for c in schema.names if c not in df.columns]
    extra = [c for c in df.columns if c not in schema.names]
    if missing:
        problems.append(f"missing column(s) {missing}")
    if extra:
        problems.append(f"unexpected column(s) {extra}")
    if not problems:
        for spec in schema.columns:
            s = df[spec.name]
            cast = s.cast(spec.polars_dtype, strict=False)
            broken = int((cast.is_null() & s.is_not_null()).sum())
            if broken:
                problems.append(f"column {spec.name!r}: {broken} value(s) cannot be read as {spec.dtype}")
    if problems:
        raise SchemaError(f"{source}: " + "; ".join(problems) + ". Fix the file and drop it into landing again.")
    return df.select([df[spec.name].cast(spec.polars_dtype) for spec in schema.columns])
