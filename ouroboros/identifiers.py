"""Identifier and free-text columns: never modelled, regenerated fresh around any generator family.

A customer number or a UUID carries no distribution worth learning, and copying it would leak real IDs; a
free-text column can only be copied row by row as a category. So `WithIdentifiers` strips those columns
(`ColumnRole.ID`, `ColumnRole.TEXT` in the schema) before the wrapped generator fits, and after it samples adds:

- integer IDs: a fresh consecutive range starting above the largest real ID (no real ID is ever emitted);
- UUID strings: random version-4 UUIDs (seeded), in the real letter case;
- other string IDs: strings of the real shape (each position's character class: digit, upper, lower, the
  punctuation kept), never equal to a real ID, unique;
- free text: words drawn by frequency from the words that occur in at least `MIN_WORD_ROWS` real rows (a rare
  word such as a name never leaves), as many words per row as a real row has.

Nulls keep the real null share. The gate leaves these columns out of its statistics (`modelled_view`).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ouroboros.schema import INTEGER_DTYPES, ColumnRole, SchemaError, TableSchema, conform, infer_schema

IDENTIFIERS_FILE = "identifiers.json"
MIN_WORD_ROWS = 3  # a word must occur in this many real rows to be used in regenerated text
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CLASSES = {"d": "0123456789", "U": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "l": "abcdefghijklmnopqrstuvwxyz"}
_MAX_PATTERNS = 50


@dataclass
class RegeneratedColumn:
    """How one ID or text column is regenerated; plain data so it round-trips through JSON."""

    name: str
    style: str  # "int_range" | "uuid" | "pattern" | "text"
    null_fraction: float
    start: int = 0  # int_range: first fresh value
    upper: bool = False  # uuid: real ones are upper case
    patterns: list = field(default_factory=list)  # pattern: list of (shape, weight); shape = list of (class, literal)
    words: list = field(default_factory=list)  # text: vocabulary ...
    word_probs: list = field(default_factory=list)  # ... with frequencies
    word_counts: list = field(default_factory=list)  # text: words per real row (an empirical distribution)
    avoid: list = field(default_factory=list)  # pattern: digests of the real values (never emitted, never stored)


def _shape(value: str) -> tuple[str, ...]:
    return tuple("d" if c.isdigit() else "U" if "A" <= c <= "Z" else "l" if "a" <= c <= "z" else "=" + c
                 for c in value)


def plan_column(s: pl.Series, role: ColumnRole) -> RegeneratedColumn:
    """Learn how to regenerate column `s` (an identifier or free text) from its real values."""
    null_fraction = s.null_count() / max(s.len(), 1)
    values = s.drop_nulls()
    if role == ColumnRole.TEXT:
        rows = values.cast(pl.String).str.extract_all(r"\S+")
        counts = rows.list.len().to_list()
        per_row = rows.list.unique().explode().drop_nulls()
        common = per_row.alias("word").value_counts(name="rows").filter(pl.col("rows") >= MIN_WORD_ROWS)
        common = common.sort(["rows", "word"], descending=[True, False])  # a stable order: same seed, same text
        probs = common["rows"].to_numpy().astype(float)
        return RegeneratedColumn(s.name, "text", null_fraction, words=common["word"].to_list(),
                                 word_probs=(probs / probs.sum()).tolist() if len(probs) else [],
                                 word_counts=counts or [0])
    # a float column holding whole numbers (a row index R or pandas wrote as 1.0, 2.0, ...) is regenerated as one
    if isinstance(s.dtype, INTEGER_DTYPES) or s.dtype.is_float():
        start = int(values.max()) + 1 if len(values) else 1
        return RegeneratedColumn(s.name, "int_range", null_fraction, start=start)
    if not isinstance(s.dtype, (pl.String, pl.Categorical, pl.Enum)):
        raise SchemaError(f"id column {s.name!r} has dtype {s.dtype}; identifiers must be integers, whole-number floats or strings. "
                          "Remove it from data.id_columns, or cast it before landing the file")
    text = values.cast(pl.String)
    if len(text) and text.str.contains(_UUID.pattern).all():
        return RegeneratedColumn(s.name, "uuid", null_fraction, upper=bool(text.str.contains("[A-F]").any()))
    shapes: dict[tuple[str, ...], int] = {}
    for v in text.head(5000).to_list():
        shapes[_shape(v)] = shapes.get(_shape(v), 0) + 1
    top = sorted(shapes.items(), key=lambda kv: -kv[1])[:_MAX_PATTERNS] or [(("U",) * 8, 1)]
    return RegeneratedColumn(s.name, "pattern", null_fraction, patterns=[[list(k), w] for k, w in top],
                             avoid=sorted({_digest(v) for v in text.to_list()}))


def regenerate(col: RegeneratedColumn, n: int, rng: np.random.Generator, dtype: pl.DataType) -> pl.Series:
    """`n` fresh values for one planned column (unique for identifiers)."""
    if col.style == "int_range":
        values = pl.Series(col.name, np.arange(col.start, col.start + n, dtype=np.int64))
        info = np.iinfo(_numpy_int(dtype))
        if n and col.start + n - 1 > info.max:
            raise SchemaError(f"id column {col.name!r}: {n} fresh ids above the real ones do not fit in {dtype}; "
                              "store the column as Int64")
    elif col.style == "uuid":
        raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
        values = [str(uuid.UUID(bytes=bytes(r), version=4)) for r in raw]
        values = pl.Series(col.name, [v.upper() for v in values] if col.upper else values)
    elif col.style == "pattern":
        values = pl.Series(col.name, _fresh_patterns(col, n, rng), dtype=pl.String)
    else:
        values = pl.Series(col.name, _text(col, n, rng), dtype=pl.String)
    if col.null_fraction > 0:
        values = values.scatter(np.flatnonzero(rng.random(n) < col.null_fraction), None)
    return values.cast(dtype, strict=False)


def _numpy_int(dtype: pl.DataType):
    return {pl.Int8: np.int8, pl.Int16: np.int16, pl.Int32: np.int32, pl.Int64: np.int64, pl.UInt8: np.uint8,
            pl.UInt16: np.uint16, pl.UInt32: np.uint32, pl.UInt64: np.uint64}.get(type(dtype), np.int64)


def _fresh_patterns(col: RegeneratedColumn, n: int, rng: np.random.Generator) -> list[str]:
    """Strings of the real shapes (vectorised per shape), redrawn until none is real or repeated."""
    shapes = [s for s, _ in col.patterns]
    weights = np.asarray([w for _, w in col.patterns], dtype=float)
    which = rng.choice(len(shapes), size=n, p=weights / weights.sum())
    taken = set(col.avoid)  # digests of the real values, then of those already emitted
    out = np.empty(n, dtype=object)
    todo = np.arange(n)
    for _attempt in range(20):  # a shape with few possible values may be used up by the real ids
        for k in np.unique(which[todo]):
            rows = todo[which[todo] == k]
            out[rows] = _draw_shape(shapes[k], len(rows), rng)
        redo = []
        for i in todo:
            d = _digest(out[i])
            if d in taken:
                redo.append(i)
            else:
                taken.add(d)
        todo = np.asarray(redo, dtype=np.int64)
        if not len(todo):
            break
    for i in todo:  # still taken after 20 draws: make it unique by a suffix
        v = f"{out[i]}-{i}"
        while _digest(v) in taken:
            v += "x"
        taken.add(_digest(v))
        out[i] = v
    return out.tolist()


def _draw_shape(shape: list[str], m: int, rng: np.random.Generator) -> np.ndarray:
    parts = []
    for c in shape:
        if c.startswith("="):
            parts.append(np.full(m, c[1:], dtype=object))
        else:
            alphabet = np.array(list(_CLASSES[c]), dtype=object)
            parts.append(alphabet[rng.integers(len(alphabet), size=m)])
    if not parts:
        return np.full(m, "", dtype=object)
    joined = parts[0]
    for p in parts[1:]:
        joined = joined + p  # object arrays of str concatenate element-wise
    return joined


def _digest(value: str) -> str:
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


def _text(col: RegeneratedColumn, n: int, rng: np.random.Generator) -> list[str]:
    counts = rng.choice(np.asarray(col.word_counts), size=n)
    if not col.words:
        return [""] * n  # no word is common enough to be shared without identifying a row
    words = np.asarray(col.words, dtype=object)
    return [" ".join(rng.choice(words, size=int(c), p=col.word_probs)) for c in counts]


def modelled_view(schema: TableSchema, *frames: pl.DataFrame) -> tuple[pl.DataFrame, ...]:
    """The frames without the schema's identifier and free-text columns (what the gate judges)."""
    skip = [c.name for c in schema.columns if c.role != ColumnRole.VALUE]
    return tuple(f.drop([c for c in skip if c in f.columns]) for f in frames)


def gate_view(synthetic: pl.DataFrame, real_train: pl.DataFrame, real_holdout: pl.DataFrame,
              schema: TableSchema | None, id_columns: Sequence[str] = ()):
    """`evaluate`'s inputs without identifier and free-text columns, and the schema of what is left."""
    schema = schema or infer_schema(real_train, id_columns=id_columns)
    skip = {c.name for c in schema.columns if c.role != ColumnRole.VALUE}
    if not skip:
        return synthetic, real_train, real_holdout, schema
    kept = TableSchema(columns=tuple(c for c in schema.columns if c.name not in skip), target=schema.target,
                       row_count=schema.row_count, extra=schema.extra)
    return (*modelled_view(schema, synthetic, real_train, real_holdout), kept)


class WithIdentifiers:
    """Wraps a generator: ID and free-text columns are stripped before fit and regenerated after sample.

    Every other attribute (params, losses, ...) is the wrapped generator's; `inner` is the family's own object.
    """

    def __init__(self, inner, id_columns: Sequence[str] = ()) -> None:
        self.inner = inner
        self.id_columns = tuple(id_columns)
        self.plan: list[RegeneratedColumn] = []
        self.derived: list = []  # DerivedColumn (ouroboros.generators.derived): computed, not modelled
        self.full_schema: TableSchema | None = None

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    @property
    def schema(self) -> TableSchema | None:
        return self.full_schema if (self.plan or self.derived) else self.inner.schema

    def fit(self, df: pl.DataFrame, callback: Callable | None = None) -> WithIdentifiers:
        from ouroboros.generators.base import GeneratorError

        if not isinstance(df, pl.DataFrame):
            raise GeneratorError(f"{self.inner.family}.fit expects a polars DataFrame, got {type(df).__name__}")
        schema = infer_schema(df, id_columns=self.id_columns) if df.height else None
        roles = {c.name: c.role for c in schema.columns} if schema else {}
        regenerated = [n for n, r in roles.items() if r != ColumnRole.VALUE]
        if regenerated and len(regenerated) == df.width:
            raise GeneratorError(f"every column is an identifier or free text ({regenerated}); there is nothing to "
                                 "model. Remove columns from data.id_columns or add value columns")
        self.plan = [plan_column(df[n], roles[n]) for n in regenerated]
        self.full_schema = schema
        values = df.drop(regenerated)
        self.derived = []
        if schema is not None and not (getattr(self.inner, "params", None) or {}).get("dp"):
            from ouroboros.generators.derived import find_derived

            self.derived = find_derived(values, schema)
        self.inner.fit(values.drop([d.name for d in self.derived]), callback)
        if getattr(self.inner, "privacy", None) and self.plan:  # dp hook: nothing learnt from real ids or text
            from ouroboros.privacy.identifiers import public_plan, released_schema

            self.plan = [public_plan(c) for c in self.plan]
            self.full_schema = released_schema(schema, self.inner.schema)
        return self

    def sample(self, n: int, seed: int | None = None, conditions: dict | None = None) -> pl.DataFrame:
        out = self._sample_derived(n, seed, conditions) if self.derived else self.inner.sample(
            n, seed, conditions=conditions)
        if not self.plan:
            return conform(out, self.full_schema) if self.derived else out
        rng = np.random.default_rng([self.inner.seed if seed is None else seed, 0x1D])
        fresh = {c.name: regenerate(c, n, rng, self.full_schema.column(c.name).polars_dtype) for c in self.plan}
        return conform(out.with_columns(fresh.values()), self.full_schema)

    def _sample_derived(self, n: int, seed: int | None, conditions: dict | None) -> pl.DataFrame:
        """The inner sample with the derived columns computed; a condition on a derived column by rejection."""
        from ouroboros.generators.base import GeneratorError, meets
        from ouroboros.generators.derived import derive

        names = {d.name for d in self.derived}
        on_derived = {k: v for k, v in (conditions or {}).items() if k in names}
        inner = {k: v for k, v in (conditions or {}).items() if k not in names} or None
        if not on_derived:
            return derive(self.inner.sample(n, seed, conditions=inner), self.derived)
        base = self.inner.seed if seed is None else seed
        kept, have, drawn = [], 0, 0
        for round_ in range(20):
            rows = derive(self.inner.sample(max(n, 100), base + 7919 * (round_ + 1), conditions=inner), self.derived)
            drawn += rows.height
            rows = rows.filter(meets(rows, on_derived))
            kept.append(rows)
            have += rows.height
            if have >= n:
                return pl.concat(kept).head(n)
        raise GeneratorError(f"conditions {on_derived} on derived column(s) met by {have} of {drawn} sampled rows; "
                             f"{n} asked. The column is computed from its parent "
                             f"({', '.join(f'{d.name} <- {d.parent}' for d in self.derived if d.name in on_derived)}):"
                             " condition on the parent instead")

    def save(self, path: str | Path) -> Path:
        path = self.inner.save(path)
        if self.plan or self.derived:
            state = {"plan": [asdict(c) for c in self.plan], "schema": self.full_schema.to_dict(),
                     "id_columns": list(self.id_columns), "derived": [asdict(d) for d in self.derived]}
            (Path(path) / IDENTIFIERS_FILE).write_text(json.dumps(state))
        return Path(path)

    @classmethod
    def around_loaded(cls, inner, path: str | Path) -> WithIdentifiers:
        """Wrap a loaded generator again, with the regenerated columns it was saved with (if any)."""
        file = Path(path) / IDENTIFIERS_FILE
        if not file.exists():
            return cls(inner)
        state = json.loads(file.read_text())
        gen = cls(inner, state["id_columns"])
        gen.plan = [RegeneratedColumn(**c) for c in state["plan"]]
        if state.get("derived"):
            from ouroboros.generators.derived import DerivedColumn

            gen.derived = [DerivedColumn(**d) for d in state["derived"]]
        gen.full_schema = TableSchema.from_dict(state["schema"])
        return gen
