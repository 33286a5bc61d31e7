"""Landing checks between the tables of a dataset (issue 20): orphans and duplicate primary keys.

Plain frames in, `ouroboros.landing.Problem`s out, in landing's vocabulary, so a landed child file that fails is
quarantined with a reason a machine can read, exactly like a flat file failing its contract:

- `duplicate_key`: rows of the file share a primary key, or reuse a key the accepted table already holds;
- `orphan`: child rows whose foreign key matches no row of the parent table (accepted rows plus the parent
  file landing with it), naming the first key values as examples;
- `null_key`: rows of a landed file with no primary key or no foreign key (no later file can fill it in).

Each file is judged whole (landing's rule: accepted or quarantined whole, no row dropped). Waiting for a
parent that lands later is the ingest's business (`assets/dataset_ingest.py`: a child file whose only fault is
orphans waits `landing.parent_wait_hours`); these functions only say what is missing.
"""

from __future__ import annotations

import polars as pl

from ouroboros.landing import Problem

EXAMPLES = 5  # key values named in a problem's detail (all of them go to `observed`, up to 100)


def duplicate_key_problems(table: str, df: pl.DataFrame, key: str,
                           accepted: pl.DataFrame | None = None) -> list[Problem]:
    """`duplicate_key` if `df` repeats a key, or holds a key already in the accepted table."""
    problems = []
    dup = df.group_by(key).len().filter(pl.col("len") > 1).sort(key)
    if dup.height:
        values = dup[key].to_list()
        problems.append(Problem("duplicate_key", f"table {table!r}: {dup.height} value(s) of key {key!r} appear "
                                f"more than once in the file ({int(dup['len'].sum())} rows), e.g. "
                                f"{values[:EXAMPLES]}; a primary key must be unique", column=key,
                                observed=values[:100]))
    if accepted is not None and accepted.height and key in accepted.columns:
        again = df.select(key).unique().join(accepted.select(key).unique(), on=key, how="semi").sort(key)
        if again.height:
            values = again[key].to_list()
            problems.append(Problem("duplicate_key", f"table {table!r}: {again.height} value(s) of key {key!r} are "
                                    f"already in the accepted table, e.g. {values[:EXAMPLES]}; send changed rows "
                                    "as new keys, or correct the file", column=key, observed=values[:100]))
    return problems


def null_key_problems(table: str, df: pl.DataFrame, columns: dict[str, str]) -> list[Problem]:
    """`null_key` for each key column (`{column: "key" | "foreign_key"}`) with null values in `df`: a row without
    its key has no identity, a child row without its foreign key no parent; no later file can fix either."""
    problems = []
    for column, what in columns.items():
        if column in df.columns and (nulls := df[column].null_count()):
            problems.append(Problem("null_key", f"table {table!r}: {nulls} row(s) have no {what} (column "
                                    f"{column!r} is null); every row needs it: fill it in or drop those rows",
                                    column=column, observed=nulls))
    return problems


def orphan_rows(df: pl.DataFrame, foreign_key: str, parent_keys: pl.Series) -> pl.DataFrame:
    """The rows of `df` whose `foreign_key` is not among `parent_keys` (nulls included: they match no parent)."""
    known = pl.DataFrame({foreign_key: parent_keys.cast(df.schema[foreign_key], strict=False)})
    return df.join(known.unique(), on=foreign_key, how="anti")


def orphan_problems(table: str, df: pl.DataFrame, foreign_key: str, parent: str, parent_keys: pl.Series) -> list[Problem]:
    """`orphan` if some rows' foreign key is not among `parent_keys` (the parent table's keys, landed so far)."""
    missing = orphan_rows(df.select(foreign_key), foreign_key, parent_keys)
    if not missing.height:
        return []
    values = missing[foreign_key].unique().sort().to_list()
    return [Problem("orphan", f"table {table!r}: {missing.height} row(s) have a {foreign_key!r} with no row in "
                    f"parent table {parent!r} ({len(values)} key value(s), e.g. {values[:EXAMPLES]}); land the "
                    "parent rows first, or correct the foreign key", column=foreign_key, observed=values[:100])]


def dataset_problems(tables: dict[str, pl.DataFrame], specs: dict, accepted: dict[str, pl.DataFrame] | None = None
                     ) -> dict[str, list[Problem]]:
    """Problems of each landed table against the accepted tables plus the other landed ones (parents' keys)."""
    from ouroboros.dataset import foreign_key_of, topological_order  # noqa: PLC0415 - dataset imports nothing of landing; keep it so

    accepted = accepted or {}
    out: dict[str, list[Problem]] = {}
    for name in topological_order(specs):
        if name not in tables:
            continue
        spec, df = specs[name], tables[name]
        problems = duplicate_key_problems(name, df, spec.key, accepted.get(name)) if spec.key else []
        if spec.parent is not None:
            pkey = specs[spec.parent].key
            fk = foreign_key_of(specs, name)
            keys = [accepted[spec.parent][pkey]] if spec.parent in accepted else []
            if spec.parent in tables and not out.get(spec.parent):  # a quarantined parent file brings no keys
                keys.append(tables[spec.parent][pkey])
            parent_keys = pl.concat(keys) if keys else pl.Series(pkey, [], dtype=df.schema[fk])
            problems += orphan_problems(name, df, fk, spec.parent, parent_keys)
        out[name] = problems
    return out
