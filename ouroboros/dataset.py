"""A dataset: one or more named tables linked by keys (issue 20). A single table is a dataset of one table.

Each table has a `TableSpec`: its primary `key` column, optionally a `parent` table and the `foreign_key`
column holding the parent's key, and optionally `order_by`, the column that orders a child's rows within each
parent (a sequence: a patient's visits by date). Plain polars frames in and out; nothing here reads files.

Validation (`validate_dataset`) refuses what no later step could make sense of, with a `DatasetError` naming the
table and column: an unknown parent, a cycle of parents, a key / foreign key / order column the frame lacks, a
primary key with nulls. Row-level faults that landing quarantines (orphans, duplicate keys) are *not* errors
here: they are `Problem`s of `ouroboros.dataset_landing`.

Keys are single columns: a composite key is not supported yet (name one column, e.g. a concatenation).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import polars as pl

from ouroboros.errors import DatasetError  # noqa: F401 - re-exported: defined in the leaf errors module


@dataclass(frozen=True)
class TableSpec:
    """How one table of a dataset is keyed and linked."""

    key: str | None = None  # primary key column; None only for a flat table of one (its rows have no identity)
    parent: str | None = None  # name of the parent table
    foreign_key: str | None = None  # column holding the parent's key; default: the parent's key column name
    order_by: str | None = None  # orders a child's rows within each parent (a sequence)

    @property
    def is_child(self) -> bool:
        return self.parent is not None


@dataclass(frozen=True)
class Dataset:
    """Named tables (polars frames) and their specs; `tables` keeps the order parents-before-children."""

    tables: Mapping[str, pl.DataFrame]
    specs: Mapping[str, TableSpec]
    target: tuple[str, str] | None = None  # (table, column) the downstream model predicts
    _order: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def of_one(cls, df: pl.DataFrame, name: str = "table", key: str | None = None,
               target: str | None = None) -> Dataset:
        """A flat table as a dataset of one table (the flat pipeline's table, unchanged)."""
        return validate_dataset({name: df}, {name: TableSpec(key=key)}, (name, target) if target else None)

    def foreign_key(self, name: str) -> str:
        """The column of table `name` that holds its parent's key."""
        return foreign_key_of(self.specs, name)

    def without_keys(self, name: str) -> pl.DataFrame:
        """Table `name` without its key and foreign key: they are regenerated, never modelled or judged."""
        spec = self.specs[name]
        drop = [c for c in (spec.key, self.foreign_key(name) if spec.parent else None) if c]
        return self.tables[name].drop(drop)

    def children(self, name: str) -> list[str]:
        return [t for t in self.order if self.specs[t].parent == name]

    def root_of(self, name: str) -> str:
        """The root table above table `name` (the table itself when it is a root)."""
        while self.specs[name].parent is not None:
            name = self.specs[name].parent
        return name

    def roots(self) -> list[str]:
        return [t for t in self.order if self.specs[t].parent is None]

    @property
    def order(self) -> tuple[str, ...]:
        return self._order or tuple(self.tables)

    def __iter__(self) -> Iterator[str]:
        return iter(self.order)

    def replace(self, tables: Mapping[str, pl.DataFrame]) -> Dataset:
        """The same specs over other frames (a synthetic batch, one side of a split), validated again."""
        return validate_dataset(dict(tables), dict(self.specs), self.target)


def foreign_key_of(specs: Mapping[str, TableSpec], name: str) -> str:
    """The column of child table `name` holding its parent's key: `foreign_key`, by default the parent's key name."""
    spec = specs[name]
    return spec.foreign_key or specs[spec.parent].key


def topological_order(specs: Mapping[str, TableSpec]) -> tuple[str, ...]:
    """Table names with every parent before its children; a DatasetError names an unknown parent or a cycle."""
    for name, spec in specs.items():
        if spec.parent is not None and spec.parent not in specs:
            raise DatasetError(f"data.tables.{name}.parent names table {spec.parent!r}, which is not one of the "
                               f"tables {sorted(specs)}; add it under data.tables or fix the name")
        if spec.parent == name:
            raise DatasetError(f"data.tables.{name}.parent is the table itself; a table cannot be its own parent")
    order: list[str] = []
    placed: set[str] = set()
    for name in specs:
        chain, cur = [], name
        while cur is not None and cur not in placed:
            if cur in chain:
                cycle = " -> ".join([*chain[chain.index(cur):], cur])
                raise DatasetError(f"data.tables: the parents form a cycle ({cycle}); every chain of parents must "
                                   "end at a table without a parent")
            chain.append(cur)
            cur = specs[cur].parent
        for t in reversed(chain):
            order.append(t)
            placed.add(t)
    return tuple(order)


def validate_dataset(tables: Mapping[str, pl.DataFrame], specs: Mapping[str, TableSpec],
                     target: tuple[str, str] | None = None) -> Dataset:
    """A `Dataset` after checking that specs and frames fit together (DatasetError naming what does not)."""
    if not tables:
        raise DatasetError("a dataset needs at least one table")
    if set(tables) != set(specs):
        raise DatasetError(f"tables {sorted(tables)} and specs {sorted(specs)} name different tables")
    order = topological_order(specs)
    for name in order:
        spec, df = specs[name], tables[name]
        if spec.key is None and (spec.parent is not None or any(s.parent == name for s in specs.values())):
            raise DatasetError(f"data.tables.{name}: a linked table needs a primary key column (key: ...)")
        if spec.key is not None:
            _column(df, name, spec.key, "key")
            if nulls := df[spec.key].null_count():
                raise DatasetError(f"data.tables.{name}.key column {spec.key!r} has {nulls} null value(s): every "
                                   "row needs its key; fill them or drop those rows before landing")
        if spec.parent is not None:
            fk = foreign_key_of(specs, name)
            _column(df, name, fk, "foreign_key")
            if nulls := df[fk].null_count():
                raise DatasetError(f"data.tables.{name}.foreign_key column {fk!r} has {nulls} null value(s): a "
                                   f"child row needs its parent in {spec.parent!r}")
        elif spec.foreign_key is not None:
            raise DatasetError(f"data.tables.{name}: foreign_key {spec.foreign_key!r} needs a parent table")
        if spec.order_by is not None:
            if spec.parent is None:
                raise DatasetError(f"data.tables.{name}: order_by orders rows within a parent; name the parent")
            _column(df, name, spec.order_by, "order_by")
            if nulls := df[spec.order_by].null_count():
                raise DatasetError(f"data.tables.{name}.order_by column {spec.order_by!r} has {nulls} null value(s)"
                                   ": each event needs its place in the sequence")
    if target is not None:
        t, c = target
        if t not in tables:
            raise DatasetError(f"data.target.table {t!r} is not one of the tables {sorted(tables)}")
        _column(tables[t], t, c, "target column")
    return Dataset(dict(tables), dict(specs), target, order)


def _column(df: pl.DataFrame, table: str, column: str, what: str) -> None:
    if column not in df.columns:
        raise DatasetError(f"data.tables.{table}: {what} {column!r} is not a column of the table; its columns are "
                           f"{df.columns}")


def root_keys(ds: Dataset) -> dict[str, pl.Series]:
    """For every table, each row's entity: the key of its root ancestor (a root table's own key).

    A child row whose parent is missing (an orphan) gets a null entity; landing quarantines such rows first.
    """
    out: dict[str, pl.Series] = {}
    for name in ds.order:
        spec, df = ds.specs[name], ds.tables[name]
        if spec.parent is None:
            out[name] = df[spec.key] if spec.key else pl.Series("__entity", range(df.height))
            continue
        parent = ds.tables[spec.parent]
        lookup = pl.DataFrame({"__pk": parent[ds.specs[spec.parent].key], "__root": out[spec.parent]})
        fk = df.select(pl.col(ds.foreign_key(name)).alias("__pk"))
        out[name] = fk.join(lookup.unique("__pk", keep="first"), on="__pk", how="left",
                            maintain_order="left")["__root"]
    return out
