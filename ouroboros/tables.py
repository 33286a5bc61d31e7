"""Reading a user's table from CSV or parquet, with errors that name the file and what to do."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa

from ouroboros.errors import TableReadError  # noqa: F401 - re-exported: defined in the leaf errors module

SUPPORTED_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".csv.zst")


def read_table(path: str | Path) -> pl.DataFrame:
    """Read a CSV or parquet file into a polars frame; CSV types are inferred from the whole file."""
    path = Path(path)
    if not path.exists():
        raise TableReadError(f"{path}: no such file; check the path in the config (data.source)")
    suffix = next((s for s in SUPPORTED_SUFFIXES if path.name.lower().endswith(s)), path.suffix.lower())
    if suffix not in SUPPORTED_SUFFIXES:
        raise TableReadError(f"{path}: unsupported file type {suffix!r}; use one of {SUPPORTED_SUFFIXES}")
    if path.stat().st_size == 0:
        raise TableReadError(f"{path}: the file is empty")
    try:
        if suffix.startswith(".csv"):
            source = path
            if suffix != ".csv":
                with pa.input_stream(str(path), compression="detect") as f:
                    source = f.read()
            # infer_schema_length=None scans every row, so a late float does not break an int column
            df = pl.read_csv(source, infer_schema_length=None, try_parse_dates=True, encoding="utf8-lossy")
        else:
            df = pl.read_parquet(path)
    except Exception as exc:
        raise TableReadError(f"{path}: could not be read as {suffix[1:]}: {exc}") from exc
    if df.height == 0:
        raise TableReadError(f"{path}: the table has a header but no rows")
    return df
