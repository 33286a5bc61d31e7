"""Identifier and free-text columns under DP: regenerated from nothing the real rows said.

Outside DP, an identifier column is regenerated in the shape of the real values (patterns, the next integer
after the real maximum, digests of real values to avoid) and free text from words shared by several rows.
Each of those is a statistic of the real rows. Under DP they become data-independent: integers count from 1,
string identifiers are random UUIDs, free text is empty, none is null; and the wrapper's schema keeps only
the ranges and categories the private fit released.
"""

from __future__ import annotations

import dataclasses

from ouroboros.identifiers import RegeneratedColumn
from ouroboros.schema import TableSchema


def public_plan(col: RegeneratedColumn) -> RegeneratedColumn:
    if col.style == "int_range":
        return RegeneratedColumn(col.name, "int_range", 0.0, start=1)
    if col.style in ("uuid", "pattern"):
        return RegeneratedColumn(col.name, "uuid", 0.0)
    return RegeneratedColumn(col.name, "text", 0.0, word_counts=[0])


def released_schema(full: TableSchema, released: TableSchema) -> TableSchema:
    """`full` (with identifier columns) with every modelled column's spec replaced by the released one."""
    by_name = {c.name: c for c in released.columns}
    cols = tuple(by_name.get(c.name, dataclasses.replace(c, min=None, max=None, categories=(), null_fraction=0.0))
                 for c in full.columns)
    return dataclasses.replace(full, columns=cols)
