"""Derived columns: a column that is an exact function of another column is computed from it, not modelled.

Real tables carry recodings and transforms of their own columns: `logpopul = log(popul)`, `linc = log(income)`,
`lnum = log(num)`, a coinsurance rate fixed by the insurance plan, a customer main type fixed by the subtype,
`binexp = meddol > 0`, `child = age < 18`. No generator family reproduces an exact function: a copula
joins the two marginals by a correlation, a neural model by a smooth approximation, so the synthetic pair
breaks the function on most rows, and a classifier (the gate's detection test, or anyone's) separates
synthetic rows by that alone. So a column is *derived* when, on every training row, its value is determined
by one other column's value and the evidence is strong enough that this is no accident of a small sample:

- ``lookup``: the parent has at most `MAX_KEYS` distinct values and the table at least `ROWS_PER_KEY` rows per
  parent value (a level seen once maps to one child value by chance);
- ``monotone``: both are numeric and the child, sorted by the parent, never changes direction (a log, a
  threshold, a rescaling), over at least `MIN_ROWS` rows with at least two child values. A random column
  is not monotone in a many-valued parent, so this is no accident either.

The wrapped generator models the table without derived columns; after sampling each one is computed from its
parent (lookup: the parent's level, an unseen numeric parent value taking its nearest key; monotone: linear
interpolation between the real (parent, child) points for a continuous child, the nearest point otherwise).
A parent has no nulls; a child may (`lnmeddol = log(meddol)`, null where meddol is 0): null is one of its
values, and a derived row is null where its nearest real point is. Not used under differential
privacy: the function is learnt from real rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ouroboros.schema import ColumnKind, TableSchema

MAX_KEYS = 64  # a lookup parent has at most this many distinct values
ROWS_PER_KEY = 20  # ... and the table at least this many rows per parent value
MIN_ROWS = 50  # a monotone function is only trusted over at least this many rows
MAX_POINTS = 20_000  # a monotone function keeps at most this many (parent, child) points


@dataclass
class DerivedColumn:
    name: str
    parent: str
    how: str  # "lookup" | "monotone"
    keys: list = field(default_factory=list)  # parent values (monotone: ascending)
    values: list = field(default_factory=list)  # the child's value at each key
    continuous: bool = False  # monotone: interpolate (a continuous child) or take the nearest point


def _plain(dtype: pl.DataType) -> bool:
    return dtype.is_integer() or dtype.is_float() or dtype in (pl.Boolean, pl.String) or \
        isinstance(dtype, (pl.Categorical, pl.Enum))


def _key_values(df: pl.DataFrame, parent: str, child: str) -> tuple[list, list]:
    pairs = df.select(parent, child).unique().sort(parent)
    return pairs[parent].to_list(), pairs[child].to_list()


def find_derived(df: pl.DataFrame, schema: TableSchema) -> list[DerivedColumn]:
    """Columns of `df` that are an exact function of another (non-derived) column, in column order."""
    # only plain values take part, as parent or child: integers, floats, booleans and text. The saved state is JSON,
    # which holds no date or Decimal, and a lookup matches keys by their text, which for a datetime is not polars'
    # text (a date- or Decimal-derived column stays modelled)
    kinds = {c.name: c.kind for c in schema.columns if c.kind != ColumnKind.DATETIME and c.name in df.columns
             and _plain(df.schema[c.name])}
    numeric = {c.name for c in schema.columns if c.is_numeric and c.kind != ColumnKind.DATETIME}
    children = [n for n in df.columns if n in kinds]
    usable = [n for n in children if df[n].null_count() == 0]  # a parent has no nulls; a child may
    distinct = {n: df[n].n_unique() for n in children}
    derived: dict[str, DerivedColumn] = {}
    if df.height < MIN_ROWS:
        return []
    for child in children:
        if distinct[child] < 2:
            continue
        for parent in usable:
            if parent == child or parent in derived or distinct[parent] < distinct[child]:
                continue
            if any(d.parent == child for d in derived.values()):
                break  # the child is already another column's parent: keep it modelled
            if df.select(parent, child).n_unique() != distinct[parent]:
                continue  # some parent value has two child values: not a function
            if distinct[parent] <= MAX_KEYS and df.height >= ROWS_PER_KEY * distinct[parent]:
                keys, values = _key_values(df, parent, child)
                derived[child] = DerivedColumn(child, parent, "lookup", keys, values)
                break
            if parent in numeric and child in numeric:
                keys, values = _key_values(df, parent, child)
                seen = np.asarray([v for v in values if v is not None], dtype=np.float64)
                steps = np.diff(seen)
                if len(seen) >= 2 and ((steps >= 0).all() or (steps <= 0).all()):
                    if len(keys) > MAX_POINTS:  # evenly spaced points, the ends kept
                        idx = np.unique(np.linspace(0, len(keys) - 1, MAX_POINTS).round().astype(int))
                        keys, values = [keys[i] for i in idx], [values[i] for i in idx]
                    derived[child] = DerivedColumn(child, parent, "monotone", keys, values,
                                                   continuous=kinds[child] == ColumnKind.CONTINUOUS)
                    break
    return list(derived.values())


def derive(df: pl.DataFrame, columns: list[DerivedColumn]) -> pl.DataFrame:
    """`df` (the modelled columns) with every derived column computed from its parent."""
    out = []
    for d in columns:
        parent = df[d.parent]
        if d.how == "monotone" or parent.dtype.is_numeric():
            x = parent.cast(pl.Float64).to_numpy()
            keys = np.asarray(d.keys, dtype=np.float64)
            # the nearest key's value (an exact key is its own nearest); a null child value stays null
            i = np.clip(np.searchsorted(keys, x), 0, len(keys) - 1)
            left = np.clip(i - 1, 0, len(keys) - 1)
            i = np.where(np.abs(x - keys[left]) < np.abs(x - keys[i]), left, i)
            nearest = np.asarray(d.values, dtype=object)[i]
            if d.how == "monotone" and d.continuous:
                known = np.asarray([v is not None for v in d.values])
                smooth = np.interp(x, keys[known], np.asarray(d.values, dtype=object)[known].astype(np.float64))
                values = np.where(np.equal(nearest, None), None, smooth.astype(object))
            else:
                values = nearest
            values = np.where(np.isnan(x), None, values)
            out.append(pl.Series(d.name, values.tolist()))
        else:
            default = max(set(d.values), key=d.values.count)
            out.append(parent.cast(pl.String).replace_strict([str(k) for k in d.keys], d.values, default=default)
                       .alias(d.name))
    return df.with_columns(out) if out else df
