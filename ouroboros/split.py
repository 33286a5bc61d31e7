"""Stable train / holdout split: the holdout is the real yardstick no generator ever sees.

A row's side is decided by a hash of the row alone, never by a draw over today's table: its content (every
column, by name), or its key (`data.key`) when one is named. The hash, salted with the seed, is read as a
number u in [0, 1); the row is held out when u < holdout_fraction. So:

- a row keeps its side in every later version of the table (appending rows never moves one);
- without a key, the i-th copy of a repeated row is hashed with its copy number, so repeats are split like
  other rows and the same copy keeps its side (copies are identical: which one is "i-th" does not matter);
- with a key, all rows sharing it (one customer's records) fall on the same side;
- each target class is split holdout_fraction : 1 - holdout_fraction in expectation (the hash does not
  depend on the class), with binomial noise: a class of n rows holds about n * fraction +- sqrt(n f (1-f)).

The hash (rule `blake2b-64/v2`) is keyed BLAKE2b over the project's own byte encoding of the values
(`ouroboros.canonical`: integers as int64, floats as float64 bits with one zero and one NaN, strings as
length-prefixed UTF-8, datetimes as UTC microseconds, a null as its own tag), so an upgrade of polars, pyarrow
or numpy cannot move rows. Changing the seed, the fraction or the key is a new rule.

Rule `blake2b-64/v1` hashed polars' text formatting of each value, which a polars upgrade may change. It is
kept only for lakes whose split was recorded under it (their rows must keep their sides); new lakes use v2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import polars as pl

from ouroboros.canonical import blake2b_rows, row_bytes
from ouroboros.errors import SplitError  # noqa: F401 - re-exported: defined in the leaf errors module

HASH = "blake2b-64/v2"  # name of the rule below; recorded beside the table so a change of rule is noticed
HASH_V1 = "blake2b-64/v1"  # the old text-based rule: only for lakes split under it
RULES = (HASH, HASH_V1)
_COPY = "\x00copy"  # the copy-number cell appended to a row without a key (a name no column can collide with)
_NULL = "\x00"
_SEP = "\x1f"


def key_columns(df: pl.DataFrame, key: str | Sequence[str] | None) -> list[str]:
    """Columns whose values decide a row's side: the key, or every column in name order."""
    if key is None:
        return sorted(df.columns)
    cols = [key] if isinstance(key, str) else list(key)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise SplitError(f"data.key names column(s) {missing} that the table does not have; its columns are "
                         f"{df.columns}")
    for c in cols:
        if (nulls := df[c].null_count()) and len(cols) == 1:
            raise SplitError(f"data.key column {c!r} has {nulls} null value(s): every row needs a key to keep "
                             "its side of the split; fill them or name another key column")
    return cols


def row_unit(df: pl.DataFrame, seed: int, key: str | Sequence[str] | None = None, rule: str = HASH) -> np.ndarray:
    """Each row's stable hash as a number in [0, 1) (same row, key and seed: same number, in any table)."""
    if rule not in RULES:
        raise SplitError(f"unknown split hash rule {rule!r}; this version knows {list(RULES)}")
    cols = key_columns(df, key)
    if df.height == 0:
        return np.empty(0, dtype=np.float64)
    if rule == HASH_V1:
        return _row_unit_v1(df, seed, key, cols)
    salt = f"{HASH}:{seed}".encode()
    if key is not None:
        buf, off = row_bytes(df, cols)
        return _unit(blake2b_rows(buf, off, key=salt))
    # the i-th copy of a repeated row is its own row: copies are split like any others (a table of a few
    # distinct rows would otherwise put whole categories on one side). Which physical copy is "the i-th"
    # does not matter, they are identical; appending copies only adds higher numbers. The copy number is
    # counted over the canonical bytes (not polars' grouping, whose -0.0 / NaN equality is its own).
    table = df.select(cols).with_columns(pl.lit(0, dtype=pl.Int64).alias(_COPY))
    buf, off = row_bytes(table, [*cols, _COPY])
    content = blake2b_rows(buf, off, key=b"copies", size=16, trim=9)  # the row without its copy cell
    copy = _occurrence(content)
    ends = off[1:] - 8  # the copy cell's int64 payload: the last 8 bytes of each row
    buf[ends[:, None] + np.arange(8)] = copy.astype("<i8").view(np.uint8).reshape(-1, 8)
    return _unit(blake2b_rows(buf, off, key=salt))


def _unit(hashed: np.ndarray) -> np.ndarray:
    return (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # top 53 bits: exact in a float


def _occurrence(digests: np.ndarray) -> np.ndarray:
    """For each row (of (n, 16) digests), how many earlier rows have the same digest (0 for the first)."""
    keys = np.ascontiguousarray(digests).view("V16").ravel()
    _, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")  # rows grouped, each group in row order
    grouped = inverse[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    out = np.empty(len(order), dtype=np.int64)
    out[order] = rank
    return out


def _row_unit_v1(df: pl.DataFrame, seed: int, key, cols: list[str]) -> np.ndarray:
    """Rule blake2b-64/v1: BLAKE2b over polars' text of each value (kept for lakes split under it)."""
    parts = [_canonical(df, c) for c in cols]
    if key is None:
        parts.append(pl.int_range(pl.len()).over(cols).cast(pl.String))
    text = df.select(pl.concat_str(parts, separator=_SEP).alias("t"))["t"]
    salt = f"{HASH_V1}:{seed}".encode()
    digests = (hashlib.blake2b(v.encode(), digest_size=8, key=salt).digest() for v in text)
    return _unit(np.fromiter((int.from_bytes(d, "big") for d in digests), dtype=np.uint64, count=df.height))


def _canonical(df: pl.DataFrame, column: str) -> pl.Expr:  # rule v1 only
    col = pl.col(column)
    if df.schema[column].is_float():
        col = col.cast(pl.Float64)
        col = pl.when(col == 0.0).then(pl.lit(0.0)).otherwise(col)  # -0.0 and 0.0 are one value
    return pl.when(col.is_null()).then(pl.lit(_NULL)).otherwise(col.cast(pl.String))


def holdout_mask(df: pl.DataFrame, holdout_fraction: float, seed: int,
                 key: str | Sequence[str] | None = None, rule: str = HASH) -> np.ndarray:
    """True for the rows that belong to the holdout under the stable hash rule."""
    if not 0.0 < holdout_fraction < 1.0:
        raise SplitError(f"data.holdout_fraction must be between 0 and 1 (exclusive), got {holdout_fraction}")
    return row_unit(df, seed, key, rule) < holdout_fraction


def train_holdout_split(df: pl.DataFrame, holdout_fraction: float, seed: int,
                        key: str | Sequence[str] | None = None,
                        rule: str = HASH) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows into (train, holdout) by the stable hash rule; row order is kept on each side."""
    if df.height < 2:
        raise SplitError(f"cannot split a table of {df.height} row(s) into train and holdout")
    mask = pl.Series(holdout_mask(df, holdout_fraction, seed, key, rule))
    train, holdout = df.filter(~mask), df.filter(mask)
    if train.height == 0 or holdout.height == 0:
        side = "real_train" if train.height == 0 else "real_holdout"
        raise SplitError(f"the split left {side} empty ({df.height} rows, holdout_fraction {holdout_fraction}"
                         + (f", key {key!r} with {df[key].n_unique()} distinct value(s)" if isinstance(key, str)
                            else "") + "): add rows, or change data.holdout_fraction or data.key")
    return train, holdout


def class_balance(train: pl.DataFrame, holdout: pl.DataFrame, target: str, max_classes: int = 50) -> list[dict]:
    """Rows per target class on each side and the holdout share (what the hash rule's stratification gave)."""
    if target not in train.columns or train[target].n_unique() > max_classes:
        return []
    counts = (pl.concat([train.select(pl.col(target).cast(pl.String).alias("class"), pl.lit("train").alias("side")),
                         holdout.select(pl.col(target).cast(pl.String).alias("class"),
                                        pl.lit("holdout").alias("side"))])
              .group_by("class", "side").len())
    out = []
    for cls in sorted(counts["class"].unique().to_list(), key=lambda v: (v is None, v)):
        part = counts.filter(pl.col("class").eq_missing(cls))
        n = {s: int(part.filter(pl.col("side") == s)["len"].sum()) for s in ("train", "holdout")}
        out.append({"class": cls, "train": n["train"], "holdout": n["holdout"],
                    "holdout_share": round(n["holdout"] / max(n["train"] + n["holdout"], 1), 4)})
    return out
