"""Checking a newly landed real-data file before it may join the real table.

Two stages, both reported as `Problem`s a machine can read:

1. structure (polars): the file can be read, has exactly the real columns, and every value can be cast to the
   real column's dtype without changing it (1.7 in an integer column, 7 in a boolean one, a time of day in a
   date column are refused, not rounded). A file failing here cannot be turned into the real schema unchanged.
2. content (a Great Expectations suite built from `landing_contract`): rows > 0, null shares, numeric ranges
   and category sets, measured against the *first accepted* data (version 0 of the real table) so the bounds
   never drift with what later files bring.

A file is accepted or quarantined whole: no row of a bad file ever reaches the table, and no row of any file is
dropped, so rows landed = rows accepted + rows quarantined.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet

from ouroboros.config import LandingConfig
from ouroboros.errors import LandingReadError  # noqa: F401 - re-exported: defined in the leaf errors module
from ouroboros.quality.contract import Contract, Rule, pandas_dtype_name
from ouroboros.schema import ColumnKind, ColumnRole, TableSchema
from ouroboros.tables import TableReadError, read_table

BOM = "\ufeff"
_DELIMITERS = (";", "\t", "|")


@dataclass(frozen=True)
class Problem:
    """One reason a landed file was refused."""

    code: str  # unsupported_format | encoding | unreadable | too_large | unsafe_file | empty | missing_columns | extra_columns | wrong_type | contract | duplicate_file
    detail: str
    column: str | None = None
    expectation: str | None = None
    observed: object = None

    def to_dict(self) -> dict:
        return asdict(self)


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Content hash of a landed file: the identity a re-delivered or re-tried file is recognised by."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".swp")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zst")
LANDING_FORMATS = (*CSV_SUFFIXES, ".parquet", ".pq")


def is_landing_candidate(name: str) -> bool:
    """Files the sensor takes: anything but hidden files and writers' temp files (`.x.csv`, `x.csv.part`).

    A file of an unsupported format is taken too, so it is quarantined with a reason instead of waiting forever.
    """
    return not name.startswith((".", "~")) and not name.lower().endswith(TEMP_SUFFIXES)


def landing_format(path: str | Path) -> str | None:
    """The accepted format a file name ends with (".csv.gz", ".parquet", ...), or None."""
    name = Path(path).name.lower()
    return next((f for f in sorted(LANDING_FORMATS, key=len, reverse=True) if name.endswith(f)), None)


DEFAULT_MAX_DECOMPRESSED = 2 * 1024**3  # LandingConfig.max_decompressed_bytes


def read_landed(path: str | Path, null_values: list[str] | None = None,
                max_bytes: int = DEFAULT_MAX_DECOMPRESSED) -> pl.DataFrame:
    """Read a landed CSV (plain, gzip or zstd) or parquet file; byte-order marks and stray spaces around column
    names are removed, and `null_values` (landing.null_values) read as nulls.

    CSV columns are read as text and cast to the real dtypes afterwards (`cast_to_schema`), so a value that does
    not fit is reported by name rather than silently re-typing the column, and no time goes on type inference
    (polars' date sniffing alone costs a minute on a 50 MB file). Windows line endings are handled by the reader.
    The text may be UTF-8, UTF-16 with a byte-order mark (what spreadsheet programs export), or Windows-1252 /
    Latin-1. A compressed CSV is decompressed in chunks and refused (`too_large`) once it passes `max_bytes`; a
    parquet file is refused when its footer declares more than `max_bytes` uncompressed. Raises LandingReadError
    (a TableReadError) with a reason code if the file cannot be read.
    """
    path = Path(path)
    fmt = landing_format(path)
    if fmt is None:
        raise LandingReadError("unsupported_format", f"{path.name}: unsupported file format; land one of "
                               f"{', '.join(LANDING_FORMATS)} (CSV must be comma-separated, with a header row)")
    if not path.exists() or path.stat().st_size == 0:
        return read_table(path)  # the reader's own message for a missing or empty file
    if fmt in CSV_SUFFIXES:
        text = _utf8_bytes(path, max_bytes)
        try:
            df = pl.read_csv(text, infer_schema=False, null_values=null_values)
        except Exception as exc:
            raise LandingReadError("unreadable", f"{path}: could not be read as CSV: {exc}") from exc
        if df.height == 0:
            raise LandingReadError("empty", f"{path}: the table has a header but no rows")
    else:
        _check_parquet_size(path, max_bytes)
        df = read_table(path)
        # pandas writes a non-default index as an extra column: it is not data
        df = df.drop([c for c in df.columns if c.startswith("__index_level_")])
    clean = [c.lstrip(BOM).strip() for c in df.columns]
    if clean != df.columns:
        if len(set(clean)) != len(clean):
            raise TableReadError(f"{path}: column names collide once spaces/BOM are removed: {df.columns}")
        df = df.rename(dict(zip(df.columns, clean)))
    return df


def _too_large(path: Path, max_bytes: int, what: str) -> LandingReadError:
    return LandingReadError("too_large", f"{path}: {what} more than {max_bytes:,} bytes "
                            "(landing.max_decompressed_bytes), a possible decompression bomb; split the file, "
                            "or raise the setting if the data is genuine")


def _check_parquet_size(path: Path, max_bytes: int) -> None:
    """Refuse a parquet file whose footer declares more uncompressed bytes than `max_bytes`, before reading it."""
    try:
        meta = pa.parquet.ParquetFile(str(path)).metadata
    except Exception:
        return  # unreadable: the reader below reports it with its own reason
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if declared > max_bytes:
        raise _too_large(path, max_bytes, f"declares {declared:,} uncompressed bytes,")


def _utf8_bytes(path: Path, max_bytes: int = DEFAULT_MAX_DECOMPRESSED) -> bytes:
    """The file's text as UTF-8 bytes: decompressed (at most `max_bytes`), and re-encoded if it was UTF-16 or
    Windows-1252/Latin-1."""
    chunks, total = [], 0
    try:
        with pa.input_stream(str(path), compression="detect") as f:
            # chunk by chunk, so a bomb is stopped after max_bytes instead of after filling memory
            while block := f.read(1 << 24):
                total += len(block)
                if total > max_bytes:
                    raise _too_large(path, max_bytes, "expands to")
                chunks.append(block)
    except LandingReadError:
        raise
    except Exception as exc:
        raise LandingReadError("unreadable", f"{path}: could not be decompressed: {exc}") from exc
    data = b"".join(chunks)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16").encode()
        except UnicodeDecodeError as exc:
            raise LandingReadError("encoding", f"{path}: starts with a UTF-16 byte-order mark but is not valid "
                                   f"UTF-16 ({exc}); save it as UTF-8 CSV") from exc
    if b"\x00" in data:  # UTF-16 or UTF-32 without a byte-order mark (ASCII in it is valid UTF-8), or binary
        raise LandingReadError("encoding", f"{path}: not UTF-8 text (it contains NUL bytes: UTF-16 without a "
                               "byte-order mark, or a binary file); save it as UTF-8 CSV")
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        pass
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if not any(ord(c) < 32 and c not in "\t\r\n" for c in text):
            return text.encode()
    raise LandingReadError("encoding", f"{path}: not UTF-8, UTF-16 or Latin-1 text; save it as UTF-8 CSV")


def structural_problems(df: pl.DataFrame, schema: TableSchema) -> list[Problem]:
    """Everything that stops `df` being cast to the real schema: rows, columns, un-castable values."""
    problems = []
    if df.height == 0:
        problems.append(Problem("empty", "the file has no rows"))
    missing = [c for c in schema.names if c not in df.columns]
    extra = [c for c in df.columns if c not in schema.names]
    if df.width == 1 and missing:
        sep = next((d for d in _DELIMITERS if d in df.columns[0]), None)
        if sep is not None:
            problems.append(Problem("wrong_delimiter", f"the file reads as one column {df.columns[0][:60]!r}: it "
                                    f"seems to use {sep!r} as delimiter; land comma-separated CSV"))
            return problems
    if missing:
        problems.append(Problem("missing_columns", f"missing column(s) {missing}", observed=missing))
    if extra:
        problems.append(Problem("extra_columns", f"unexpected column(s) {extra}; the real table's columns are "
                                f"{schema.names}", observed=extra))
    if missing or extra:
        return problems
    for spec in schema.columns:
        s = df[spec.name]
        cast = _cast(s, spec.polars_dtype)
        broken = cast.is_null() & s.is_not_null()
        n = int(broken.sum())
        if n:
            examples = s.filter(broken).cast(pl.String, strict=False).head(3).to_list()
            problems.append(Problem("wrong_type", f"column {spec.name!r}: {n} value(s) cannot be read as "
                                    f"{spec.dtype} (file dtype {s.dtype}), e.g. {examples}",
                                    column=spec.name, observed=n))
        changed = changed_by_cast(s, cast)
        m = int(changed.sum())
        if m:
            pairs = [f"{a} -> {b}" for a, b in zip(s.filter(changed).head(3).cast(pl.String, strict=False).to_list(),
                                                   cast.filter(changed).head(3).cast(pl.String, strict=False).to_list())]
            problems.append(Problem("wrong_type", f"column {spec.name!r}: {m} value(s) would change when cast to "
                                    f"the real dtype {spec.dtype} (file dtype {s.dtype}), e.g. {', '.join(pairs)}; "
                                    f"{_lossless_hint(cast.dtype)}", column=spec.name, observed=m))
    return problems


def _lossless_hint(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "the column takes whole numbers only: fix or round the values yourself and land the file again"
    if dtype == pl.Boolean:
        return "the column takes true/false (or 1/0) only: fix the values and land the file again"
    if dtype == pl.Date:
        return "the column takes dates without a time of day: fix the values and land the file again"
    if isinstance(dtype, pl.Datetime):
        return f"the column keeps times to the {dtype.time_unit}: fix the values and land the file again"
    return f"the values do not fit {dtype}: fix them and land the file again"


def changed_by_cast(s: pl.Series, cast: pl.Series) -> pl.Series:
    """Values the cast kept but altered (1.7 -> 1 in an integer column, 7 -> true in a boolean one, a time of
    day dropped by a date column, nanoseconds dropped by a microsecond column, an overflow to infinity).

    The lenient cast turns only what it cannot read into nulls; these lossy casts it performs silently, so they
    are found by casting back and comparing. One exception: a float value rounded to a Float32 column's
    precision keeps its meaning (the real table holds float32 values already), so there only an overflow to
    infinity counts.
    """
    both = s.is_not_null() & cast.is_not_null()
    target = cast.dtype
    if s.dtype == pl.String:  # text: the readers either parse a value whole or give null, except these two
        if target.is_float():
            overflow = cast.is_infinite() & ~s.str.to_lowercase().str.contains("inf")
            return (both & overflow).fill_null(False)
        if isinstance(target, pl.Datetime) and target.time_unit != "ns":
            fine = s.str.to_datetime(time_unit="ns", time_zone=target.time_zone, strict=False)
            truncated = fine != cast.cast(pl.Datetime("ns", target.time_zone), strict=False)
            return (both & fine.is_not_null() & truncated).fill_null(False)
        return pl.Series(s.name, [False] * s.len(), dtype=pl.Boolean)
    if target.is_float() and s.dtype.is_float():
        return (both & cast.is_infinite() & s.is_finite()).fill_null(False)
    back = cast.cast(s.dtype, strict=False)
    return (both & (back.is_null() | (back != s))).fill_null(False)


def cast_to_schema(df: pl.DataFrame, schema: TableSchema) -> pl.DataFrame:
    """The real columns of `df`, in the real order and dtypes (after `structural_problems` found none)."""
    return pl.DataFrame([_cast(df[spec.name], spec.polars_dtype) for spec in schema.columns])


def _cast(s: pl.Series, dtype: pl.DataType) -> pl.Series:
    """Cast leniently: a value that does not fit becomes null, so the caller can count and name it."""
    if dtype == pl.Boolean and s.dtype == pl.String:
        words = {"true": True, "1": True, "false": False, "0": False}
        return s.str.strip_chars().str.to_lowercase().replace_strict(words, default=None, return_dtype=pl.Boolean)
    if s.dtype == pl.String and isinstance(dtype, pl.Datetime):  # polars 2 parses text, it does not cast it
        return s.str.to_datetime(time_unit=dtype.time_unit, time_zone=dtype.time_zone, strict=False)
    if s.dtype == pl.String and dtype == pl.Date:
        return s.str.to_date(strict=False)
    return s.cast(dtype, strict=False)


def landing_contract(schema: TableSchema, config: LandingConfig) -> Contract:
    """Rules every landed file must meet, from the profile of the first accepted data (`schema`).

    Unlike the synthetic-batch contract there are no spread or tail rules: a new file of real rows may be a
    small or skewed slice (one region, one month) and still be true data.
    """
    rules: list[Rule] = [
        Rule("ExpectTableRowCountToBeBetween", {"min_value": 1, "max_value": None}, "a landed file is not empty"),
        Rule("ExpectTableColumnsToMatchSet", {"column_set": schema.names, "exact_match": True},
             "a landed file has exactly the real table's columns"),
    ]
    for spec in schema.columns:
        col = spec.name
        rules.append(Rule("ExpectColumnValuesToBeInTypeList",
                          {"column": col, "type_list": [pandas_dtype_name(spec.polars_dtype)]},
                          f"{col} has the real dtype {spec.dtype}"))
        max_null = min(1.0, spec.null_fraction + config.null_tolerance)
        if max_null < 1.0:
            rules.append(Rule("ExpectColumnValuesToNotBeNull", {"column": col, "mostly": round(1.0 - max_null, 6)},
                              f"{col} has at most {max_null:.1%} nulls (first accepted data: "
                              f"{spec.null_fraction:.1%})"))
        if spec.role != ColumnRole.VALUE:
            continue  # new rows bring new ids and new text: no range or category set applies
        if spec.kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER) and spec.min is not None:
            slack = (spec.max - spec.min) * config.range_slack
            lo, hi = spec.min - slack, spec.max + slack
            rules.append(Rule("ExpectColumnValuesToBeBetween", {"column": col, "min_value": lo, "max_value": hi},
                              f"{col} lies in [{lo:g}, {hi:g}] (first accepted range [{spec.min:g}, {spec.max:g}] "
                              f"widened by {config.range_slack:.0%} of its span)"))
        elif spec.kind == ColumnKind.CATEGORICAL:
            allowed = sorted({*spec.categories, *config.extra_categories.get(col, [])})
            rules.append(Rule("ExpectColumnValuesToBeInSet", {"column": col, "value_set": allowed},
                              f"{col} uses only its {len(allowed)} known categories (declare new ones in "
                              f"landing.extra_categories)"))
    return Contract(rules=tuple(rules), schema=schema, batch_rows=0)


def contract_problems(results: list[dict], df: pl.DataFrame, contract: Contract) -> list[Problem]:
    """Failed rules of a GX validation (`ContractValidation.results`) as problems, each naming what broke it."""
    rules = {(_snake(r.expectation), r.kwargs.get("column")): r for r in contract.rules}
    problems = []
    for r in results:
        if r["success"]:
            continue
        column, rule = r.get("column"), rules.get((r["expectation"], r.get("column")))
        evidence = _evidence(df, column, rule) if rule is not None and column in df.columns else None
        observed = evidence or f"observed {r['observed']}"
        detail = f"{r['why']}: failed ({observed})"
        problems.append(Problem("contract", detail, column=column,
                                expectation=rule.expectation if rule is not None else r["expectation"],
                                observed=r["observed"]))
    return problems


def _evidence(df: pl.DataFrame, column: str, rule: Rule) -> str | None:
    """The offending values behind a failed rule, found with polars (GX's summary gives only a percentage)."""
    s = df[column]
    if rule.expectation == "ExpectColumnValuesToBeInSet":
        values = s.drop_nulls().cast(pl.String)
        unseen = values.filter(~values.is_in(rule.kwargs["value_set"]))
        counts = unseen.alias("value").value_counts(sort=True, name="n").head(5).rows()
        return f"{unseen.len()} row(s) with unseen categories " + ", ".join(f"{v!r} x{n}" for v, n in counts)
    if rule.expectation == "ExpectColumnValuesToNotBeNull":
        return f"{s.null_count()} of {s.len()} values are null"
    if rule.expectation == "ExpectColumnValuesToBeBetween":
        x = s.cast(pl.Float64)
        out = x.filter((x < rule.kwargs["min_value"]) | (x > rule.kwargs["max_value"]))
        return f"{out.len()} value(s) outside, from {out.min()} to {out.max()}"
    return None


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def summarise(problems: list[Problem]) -> str:
    return "; ".join(p.detail for p in problems)
