"""Row provenance: where each row of a pool or a training set came from.

An origin is real (rows of real_train) or synthetic (rows of one batch: study, generation). Either way it
names the exact table by its content fingerprint and the row by its index there. Origins travel as a frame
aligned by row beside a pool (the generators only ever get the data), and as `_origin*` columns of
training_set, which `without_origin` removes before a model sees the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ouroboros.errors import ProvenanceError  # noqa: F401 - re-exported: defined in the leaf errors module

REAL, SYNTHETIC = "real", "synthetic"
ORIGIN_SCHEMA: dict[str, pl.DataType] = {
    "_origin": pl.String(),              # "real" or "synthetic"
    "_origin_study": pl.String(),        # the batch's study (null for real rows)
    "_origin_generation": pl.Int32(),    # the batch's generation (null for real rows)
    "_origin_fingerprint": pl.String(),  # content fingerprint of the real_train or batch the row is from
    "_origin_row": pl.Int64(),           # the row's index in that table
}
GROUP = ["_origin", "_origin_study", "_origin_generation", "_origin_fingerprint"]


@dataclass(frozen=True)
class Origin:
    kind: str  # REAL or SYNTHETIC
    fingerprint: str | None = None
    study: str | None = None
    generation: int | None = None


def origin_frame(origin: Origin, rows: int | np.ndarray) -> pl.DataFrame:
    """One origin row per data row: `rows` is a row count (all rows, in order) or the row indices taken."""
    index = np.arange(rows) if isinstance(rows, (int, np.integer)) else np.asarray(rows, dtype=np.int64)
    n = len(index)
    return pl.DataFrame({
        "_origin": pl.Series([origin.kind] * n, dtype=pl.String),
        "_origin_study": pl.Series([origin.study] * n, dtype=pl.String),
        "_origin_generation": pl.Series([origin.generation] * n, dtype=pl.Int32),
        "_origin_fingerprint": pl.Series([origin.fingerprint] * n, dtype=pl.String),
        "_origin_row": pl.Series(index, dtype=pl.Int64),
    }, schema=ORIGIN_SCHEMA)


def with_origin(data: pl.DataFrame, origin: pl.DataFrame) -> pl.DataFrame:
    """The rows with their origin columns appended (a table column of the same name is refused)."""
    clash = [c for c in data.columns if c in ORIGIN_SCHEMA]
    if clash:
        raise ProvenanceError(f"column(s) {clash} of the table use a name reserved for row provenance; rename "
                              "them in the source data")
    if origin.height != data.height:
        raise ProvenanceError(f"{origin.height} origin rows for {data.height} data rows")
    return pl.concat([data, origin.select(list(ORIGIN_SCHEMA))], how="horizontal")


def without_origin(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a frame into (data, origin); a frame without origin columns is refused."""
    missing = [c for c in ORIGIN_SCHEMA if c not in df.columns]
    if missing:
        raise ProvenanceError(f"the frame carries no row provenance (missing {missing})")
    return df.drop(list(ORIGIN_SCHEMA)), df.select(list(ORIGIN_SCHEMA))


def composition(origin: pl.DataFrame) -> list[dict]:
    """Rows and share per origin (kind, study, generation, fingerprint), in order of first appearance."""
    if origin.height == 0:
        return []
    counts = origin.group_by(GROUP, maintain_order=True).len()
    return [{"origin": r["_origin"], "study": r["_origin_study"], "generation": r["_origin_generation"],
             "fingerprint": r["_origin_fingerprint"], "rows": int(r["len"]),
             "share": round(r["len"] / origin.height, 6)} for r in counts.iter_rows(named=True)]


def synthetic_share(origin: pl.DataFrame) -> float:
    """Share of rows that came from a synthetic batch."""
    return float((origin["_origin"] == SYNTHETIC).mean()) if origin.height else 0.0


def label(part: dict, fingerprint: bool = True) -> str:
    """Short human name of one origin: `real_train` or `<study>/g<k>`, with the fingerprint's first 12 characters."""
    fp = f" ({part['fingerprint'][:12]})" if fingerprint and part.get("fingerprint") else ""
    if part["origin"] == REAL:
        return f"real_train{fp}"
    return f"{part['study']}/g{part['generation']}{fp}"


def composition_markdown(parts: list[dict]) -> str:
    """The composition as a markdown table."""
    rows = "\n".join(f"| {label(p)} | {p['rows']} | {p['share']:.1%} |" for p in parts)
    return "| origin | rows | share |\n|---|---|---|\n" + rows
