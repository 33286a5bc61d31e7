"""The project's own byte encoding of table values, so that stored hashes never depend on a library version.

Content fingerprints (verdicts, lineage, rules keys) and the train/holdout split hash are computed over the
bytes defined here, never over polars' text formatting or `hash_rows` (which polars documents as unstable
across versions): an upgrade of polars, pyarrow or numpy cannot change a stored digest.

One value ("cell") is a tag byte and a payload, all integers little-endian:

| dtype                          | tag | payload                                                           |
|--------------------------------|-----|-------------------------------------------------------------------|
| null (any dtype)               | 0   | none                                                              |
| signed/unsigned integers       | 1   | int64 (uint64 above 2**63-1 wraps, two's complement)              |
| floats                         | 2   | IEEE-754 float64 bits; -0.0 is written as 0.0, every NaN as 0x7ff8000000000000 |
| boolean                        | 3   | one byte, 0 or 1                                                  |
| string, categorical, enum      | 4   | int64 byte length, then the UTF-8 bytes                           |
| date                           | 5   | int64 days since 1970-01-01                                       |
| datetime (any unit, any zone)  | 6   | int64 microseconds since 1970-01-01T00:00 UTC (floor), uint16 nanoseconds past it (0-999) |
| duration (any unit)            | 7   | as datetime: int64 microseconds (floor), uint16 nanoseconds past it |
| time of day                    | 8   | int64 nanoseconds since midnight                                  |
| binary                         | 9   | int64 byte length, then the bytes                                 |
| decimal                        | 4   | its text as a string (polars' formatting of decimals: rare in data; flagged here) |

A datetime with a time zone is stored by polars as the UTC instant, so zone-aware values are hashed as UTC
instants (the zone itself is part of the dtype name, so it enters table fingerprints but not row hashes).
Nested dtypes (lists, structs, arrays, objects) have no encoding: `CanonicalError` names the column.

Two layouts use the cells:
- `row_bytes` / `row_digests`: per row, the cells of the chosen columns in the given order (the split, copies);
- `table_digest`: a whole frame column by column (column name, dtype name, row count, validity, values),
  vectorised so a million rows hash in well under a second.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pyarrow as pa

from ouroboros.errors import CanonicalError  # noqa: F401 - re-exported: defined in the leaf errors module

TABLE_RULE = "ouroboros-table/v2"  # layout of `table_digest` (v1 was sha256 over polars' hash_rows)
_NAN = np.uint64(0x7FF8000000000000)


def dtype_name(dtype: pl.DataType) -> str:
    """The project's name of a dtype (not polars' repr, which may change): family, width, unit-free zone."""
    if isinstance(dtype, pl.Datetime):
        return f"Datetime[{dtype.time_zone}]" if dtype.time_zone else "Datetime"
    if isinstance(dtype, pl.Duration):
        return "Duration"
    if isinstance(dtype, (pl.Categorical, pl.Enum)):
        return "String"  # a categorical holds strings: same values, same content
    return type(dtype).__name__ if isinstance(dtype, pl.DataType) else str(dtype)


def _fixed(s: pl.Series) -> tuple[int, np.ndarray] | None:
    """(tag, payload as an (n, width) uint8 array with zeros at nulls) of a fixed-width column, else None."""
    d = s.dtype
    if d.is_integer():
        v = s.fill_null(0).to_numpy()
        v = v.view(np.int64) if v.dtype == np.uint64 else v  # wraps above 2**63-1, as documented
        return 1, v.astype("<i8").view(np.uint8).reshape(-1, 8)
    if d.is_float():
        v = s.cast(pl.Float64).fill_null(0.0).to_numpy().astype("<f8", copy=True)
        v[v == 0.0] = 0.0  # -0.0 -> 0.0
        bits = v.view("<u8")
        bits[np.isnan(v)] = _NAN
        return 2, bits.view(np.uint8).reshape(-1, 8)
    if d == pl.Boolean:
        return 3, s.fill_null(False).to_numpy().astype(np.uint8).reshape(-1, 1)
    if d == pl.Date:
        return 5, s.to_physical().fill_null(0).to_numpy().astype("<i8").view(np.uint8).reshape(-1, 8)
    if isinstance(d, (pl.Datetime, pl.Duration)):
        v = s.to_physical().fill_null(0).to_numpy().astype(np.int64)
        per_us = {"ns": 1000, "us": 1, "ms": None}[d.time_unit]
        if per_us is None:  # milliseconds
            us, ns = v * 1000, np.zeros(len(v), dtype=np.int64)
        else:
            us, ns = np.floor_divide(v, per_us), np.mod(v, per_us) if per_us > 1 else np.zeros(len(v), np.int64)
        out = np.empty((len(v), 10), dtype=np.uint8)
        out[:, :8] = us.astype("<i8").view(np.uint8).reshape(-1, 8)
        out[:, 8:] = ns.astype("<u2").view(np.uint8).reshape(-1, 2)
        return (6 if isinstance(d, pl.Datetime) else 7), out
    if d == pl.Time:
        return 8, s.to_physical().fill_null(0).to_numpy().astype("<i8").view(np.uint8).reshape(-1, 8)
    return None


def _variable(s: pl.Series, column: str) -> tuple[int, np.ndarray, np.ndarray]:
    """(tag, int64 offsets of n+1 entries, data bytes) of a string/binary column; nulls are empty."""
    d = s.dtype
    if isinstance(d, (pl.Categorical, pl.Enum, pl.Decimal)) or d == pl.String:
        tag, s = 4, s.cast(pl.String)
    elif d == pl.Binary:
        tag = 9
    elif d == pl.Null:
        tag, s = 4, s.cast(pl.String)
    else:
        raise CanonicalError(f"column {column!r} has dtype {d}, which has no canonical encoding (nested values): "
                             "flatten it into scalar columns (strings, numbers, dates) before it enters the lake")
    arr = s.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_binary())
    offsets = np.frombuffer(arr.buffers()[1], dtype="<i8")[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if arr.buffers()[2] is not None else np.empty(0, np.uint8)
    valid = ~s.is_null().to_numpy()
    lengths = np.where(valid, np.diff(offsets), 0)
    if not valid.all() or offsets[0] != 0:  # nulls may own bytes in arrow; make them empty and start at 0
        starts = offsets[:-1]
        keep = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        data = data[keep + np.arange(len(keep))] if len(keep) else np.empty(0, np.uint8)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return tag, offsets.astype(np.int64, copy=False), data


def _valid(s: pl.Series) -> np.ndarray:
    return ~s.is_null().to_numpy() if s.null_count() else np.ones(len(s), dtype=bool)


def table_digest(df: pl.DataFrame) -> str:
    """BLAKE2b-256 hex of the frame's columns (in order: name, dtype name, values) under TABLE_RULE."""
    h = hashlib.blake2b(digest_size=32)
    h.update(TABLE_RULE.encode())
    h.update(np.array([df.height, df.width], dtype="<i8").tobytes())
    for name in df.columns:
        s = df[name]
        for text in (name, dtype_name(s.dtype)):
            b = text.encode()
            h.update(np.int64(len(b)).astype("<i8").tobytes() + b)
        h.update(_valid(s).astype(np.uint8).tobytes())
        fixed = _fixed(s)
        if fixed is not None:
            h.update(np.ascontiguousarray(fixed[1]).tobytes())
        else:
            _, offsets, data = _variable(s, name)
            h.update(np.diff(offsets).astype("<i8").tobytes())
            h.update(data.tobytes())
    return h.hexdigest()


def row_bytes(df: pl.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's cells of `columns`, in that order, as one buffer and n+1 row offsets into it."""
    import pyarrow.compute as pc

    n = df.height
    if n == 0:
        return np.empty(0, np.uint8), np.zeros(1, np.int64)
    null = pa.scalar(b"\x00", pa.binary())
    cells = []
    for c in columns:
        s = df[c]
        fixed = _fixed(s)
        if fixed is not None:
            tag, payload = fixed
            block = np.empty((n, 1 + payload.shape[1]), dtype=np.uint8)
            block[:, 0] = tag
            block[:, 1:] = payload
            cell = pa.FixedSizeBinaryArray.from_buffers(pa.binary(block.shape[1]), n,
                                                        [None, pa.py_buffer(block.tobytes())]).cast(pa.binary())
        else:
            tag, offsets, data = _variable(s, c)
            head = np.empty((n, 9), dtype=np.uint8)
            head[:, 0] = tag
            head[:, 1:] = np.diff(offsets).astype("<i8").view(np.uint8).reshape(-1, 8)
            head = pa.FixedSizeBinaryArray.from_buffers(pa.binary(9), n, [None, pa.py_buffer(head.tobytes())])
            body = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets.tobytes()),
                                                                             pa.py_buffer(data.tobytes())])
            cell = pc.binary_join_element_wise(head.cast(pa.large_binary()), body, pa.scalar(b"", pa.large_binary()))
        valid = _valid(s)
        if not valid.all():
            cell = pc.if_else(pa.array(valid), cell, null.cast(cell.type))
        cells.append(cell.cast(pa.large_binary()))
    row = pc.binary_join_element_wise(*cells, pa.scalar(b"", pa.large_binary())) if len(cells) > 1 else cells[0]
    if isinstance(row, pa.ChunkedArray):
        row = row.combine_chunks()
    offsets = np.frombuffer(row.buffers()[1], dtype="<i8")[row.offset:row.offset + n + 1].astype(np.int64)
    buf = np.frombuffer(row.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]].copy()
    return buf, offsets - offsets[0]


def blake2b_rows(buf: np.ndarray, offsets: np.ndarray, key: bytes = b"", size: int = 8, trim: int = 0) -> np.ndarray:
    """BLAKE2b (keyed with `key`, `size` bytes) of each row of a `row_bytes` buffer (less its last `trim`
    bytes), as big-endian integers when size is 8 (uint64), else as a (n, size) uint8 array."""
    mv, starts, ends = memoryview(buf), offsets[:-1].tolist(), (offsets[1:] - trim).tolist()
    blake = hashlib.blake2b
    joined = b"".join(blake(mv[a:b], digest_size=size, key=key).digest() for a, b in zip(starts, ends))
    if size == 8:
        return np.frombuffer(joined, dtype=">u8").astype(np.uint64)
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, size)


def row_digests(df: pl.DataFrame, columns: list[str] | None = None) -> np.ndarray:
    """A 64-bit content hash of each row (columns in the given order, default all in frame order): equal rows
    get equal numbers in any process and library version (distinct rows collide with odds about n^2 / 2^65)."""
    buf, off = row_bytes(df, list(df.columns) if columns is None else columns)
    return blake2b_rows(buf, off, key=TABLE_RULE.encode())
