"""Landing per table (issue 20): the ingest of a dataset of several linked tables (`data.tables`).

Each table is its own append-only Delta table under `lake/real/tables/<table>/table`: version 0 is its
`source`, each accepted landed file one more commit with the same ledger as the flat real table
(`assets/real.py`). A dataset's files land per table, `landing/<table>/<file>`; a file anywhere else is
quarantined as `unknown_table`.

A landed file meets the flat ingest's checks (format, structure, the landing contract derived once from its
table's version 0, kept as `real_dir(table)/landing_schema.json`, GX suite `real_landing_contract.<table>`),
then the dataset's: no null key or foreign key (`null_key`), no primary key repeated in the file or already in
the accepted table (`duplicate_key`), every foreign key among the parent's accepted keys (`orphan`). Outcomes:

- `accepted`: one Delta commit on that table, then the file moves to the shared archive;
- `quarantined`: the reason file (`.reason.json`, naming table, column and example keys) first, then the move;
- `waiting`: a child file whose only fault is orphans stays in landing, untouched, for
  `landing.parent_wait_hours` from its first sighting (kept in `real_dir(table)/waiting/<file>.json`, so the
  wait survives restarts): its parents' file may simply land later. Each attempt looks again; once the parent
  rows are accepted the file is accepted, once the wait is over it is quarantined as `orphan`.

Crash safety as the flat ingest: the commit comes before the move and the ledger says what was committed, so a
run killed at any point leaves the file in landing for the next attempt and never appends it twice.
"""

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import OWNER
from assets.real import (
    INGEST,
    LANDING_CHECK,
    LANDING_SUITE,
    REAL_TABLE_POOL,
    IngestConfig,
    _count_rows,
    _ledger_entry,
    _move,
    _outcome_metadata,
    _unused,
    already_committed,
    safe_name,
)
from ouroboros.config import DataConfig, PipelineConfig
from ouroboros.dataset import DatasetError, TableSpec, foreign_key_of, topological_order, validate_dataset
from ouroboros.dataset_landing import (
    EXAMPLES,
    dataset_problems,
    duplicate_key_problems,
    null_key_problems,
    orphan_problems,
    orphan_rows,
)
from ouroboros.landing import (
    Problem,
    cast_to_schema,
    contract_problems,
    file_sha256,
    landing_contract,
    read_landed,
    structural_problems,
    summarise,
)
from ouroboros.quality.contract import Contract
from ouroboros.schema import SchemaError, TableSchema, infer_schema
from ouroboros.tables import TableReadError, read_table
from resources import GreatExpectationsResource, LakeResource
from resources.lake import atomic_write_json

UNKNOWN_TABLE = "unknown_table"
WAITING = "waiting"  # the status, and the folder under real_dir(table) holding each waiting file's first sighting


def dataset_specs(data: DataConfig) -> tuple[dict[str, str], dict[str, TableSpec], tuple[str, str]]:
    """(sources, specs, (target table, column)) of `data.tables`; a DatasetError if data.source is used instead."""
    if data.tables is None:
        raise DatasetError("the dataset ingest needs data.tables; a single data.source is the flat real table "
                           "(assets/real.py)")
    sources, specs, target = data.dataset_layout()
    return sources, {name: TableSpec(**spec) for name, spec in specs.items()}, target


def table_versions(lake: LakeResource, tables) -> dict[str, int | None]:
    """Every table's head version (None before its first commit)."""
    return {t: lake.real_table_head(t) for t in tables}


def dataset_version(versions: dict[str, int | None]) -> int:
    """One number for the state of every table: the sum of their head versions. Each accepted file is one commit
    on one table, so it grows by one per accepted file and never repeats: the retrain sensor compares it as it
    compares the flat table's version."""
    return sum(v for v in versions.values() if v is not None)


def ensure_dataset_tables(lake: LakeResource, data: DataConfig) -> dict:
    """Create each table of `data.tables` (parents first) from its source as version 0 where it does not exist;
    refuse a changed source for an existing table. The sources are checked together before anything is created
    (`validate_dataset`, then duplicate keys and orphans): a refusal creates nothing."""
    sources, specs, target = dataset_specs(data)
    order = topological_order(specs)
    shas, missing = {}, []
    for name in order:
        source = Path(sources[name])
        if not source.is_file():
            raise dg.Failure(f"table {name!r}: data.tables.{name}.source {source} is not a file; point it at the "
                             "table's CSV or parquet file")
        shas[name] = file_sha256(source)
        if lake.real_table_head(name) is None:
            missing.append(name)
            continue
        first = min(lake.real_ledger(name).values(), key=lambda e: e["version"], default=None)
        if first is None or first.get("sha256") != shas[name]:
            raise dg.Failure(
                f"table {name!r}: the real table at {lake.real_table_uri(name)} was started from "
                f"{first and first.get('file')} but data.tables.{name}.source is now {source} (different content). "
                f"A real table is append-only: land the new rows as files in landing/{name}/, or point "
                "OUROBOROS_LAKE at a fresh lake for a different dataset.")
    if not missing:
        return {"bootstrapped": False, "created": [], "source_sha256": shas,
                "table_versions": table_versions(lake, order)}

    frames = {}
    for name in order:
        try:
            frames[name] = read_table(sources[name])
        except TableReadError as exc:
            raise dg.Failure(f"table {name!r}: data.tables.{name}.source could not be read: {exc}") from exc
    try:
        validate_dataset(frames, specs, target)
    except DatasetError as exc:
        raise dg.Failure(f"the sources of data.tables do not fit together: {exc}. No real table was created "
                         f"(tables {list(order)}).") from exc
    problems = {t: ps for t, ps in dataset_problems(frames, specs).items() if ps}
    if problems:
        listed = "; ".join(f"{sources[t]}: {p.detail}" for t, ps in problems.items() for p in ps)
        raise dg.Failure(
            f"the sources of data.tables are refused, no real table was created: {listed}. The sources are your "
            "own files: give every row a unique key and every child row a parent row in its parent's source, then "
            "run again.",
            metadata={"problems": dg.MetadataValue.json({t: [p.to_dict() for p in ps] for t, ps in problems.items()})})
    for name in order:  # parents first: a crash half-way leaves whole tables, the rest made by the next run
        if name in missing:
            df, source = frames[name], Path(sources[name])
            lake.append_real(df, _ledger_entry(source, shas[name], df.height, source, "source"), table=name)
    return {"bootstrapped": True, "created": missing, "source_sha256": shas,
            "table_versions": table_versions(lake, order)}


def landing_suite_name(table: str) -> str:
    return f"{LANDING_SUITE}.{table}"


def table_landing_suite(lake: LakeResource, gx_context: GreatExpectationsResource, pipeline: PipelineConfig,
                        table: str) -> tuple[str, Contract]:
    """A table's landing contract, derived once from its version 0 and kept beside it; (suite name, contract).

    Its key and foreign key are identifiers (`infer_schema`'s id_columns): new rows bring new keys, so no range
    or category set applies to them."""
    _, specs, (target_table, target_column) = dataset_specs(pipeline.data)
    path = lake.real_dir(table) / "landing_schema.json"
    if path.exists():
        schema = TableSchema.from_dict(json.loads(path.read_text()))
    else:
        first = lake.read_real(0, table)
        spec = specs[table]
        ids = [spec.key, *([foreign_key_of(specs, table)] if spec.parent else [])]
        ids += [c for c in pipeline.data.id_columns if c in first.columns and c not in ids]
        try:
            schema = infer_schema(first, target=target_column if table == target_table else None, id_columns=ids)
        except SchemaError as exc:
            raise dg.Failure(f"table {table!r} ({lake.real_table_uri(table)}@0): {exc}") from exc
        atomic_write_json(path, schema.to_dict())
    contract = landing_contract(schema, pipeline.landing)
    suite = landing_suite_name(table)
    gx_context.save_suite(suite, contract)
    return suite, contract


def waiting_file(lake: LakeResource, table: str, name: str) -> Path:
    """Where the first sighting of a waiting landed file of `table` is kept."""
    return lake.real_dir(table) / WAITING / f"{safe_name(name)}.json"


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def ingest_dataset_file(log, path: Path, table: str | None, lake: LakeResource,
                        gx_context: GreatExpectationsResource, pipeline: PipelineConfig,
                        now: datetime | None = None) -> dict:
    """Append a landed file to its table, quarantine it with its reasons, or leave it waiting for its parents.
    Returns the outcome record (status `accepted`, `quarantined` or `waiting`). `now`: the time the wait is
    measured at (default: the clock).

    Safe to repeat after a crash at any point: the file's hash in the table's ledger says whether it was already
    appended, and the file leaves landing only after the commit that holds its rows."""
    path, now = Path(path), _utc(now)
    if not path.exists():
        raise dg.Failure(f"{path}: the landed file is gone (already ingested or moved by hand?)")
    started = time.perf_counter()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    sources, specs, _ = dataset_specs(pipeline.data)
    if table not in specs:
        problem = Problem(UNKNOWN_TABLE, f"{path.name!r} landed in folder {path.parent.name!r}, which is not a table "
                          f"of data.tables {sorted(specs)}; a dataset's files land in its table's folder, "
                          "landing/<table>/<file>: land it again there")
        return _quarantine(log, path, {"table": None, "folder": path.parent.name, "file": path.name}, stamp,
                           [problem], rows=None, lake=lake, table=None)
    if lake.real_table_head(table) is None:
        raise dg.Failure(f"table {table!r} has no real table yet at {lake.real_table_uri(table)}: "
                         f"ensure_dataset_tables creates it from data.tables.{table}.source first")
    if path.is_symlink() or not path.is_file():
        what = f"a symbolic link to {os.readlink(path)!r}" if path.is_symlink() else "not a regular file"
        problem = Problem("unsafe_file", f"{path.name!r} is {what}; links and special files are not followed: "
                          "land the file itself")
        base = {"table": table, "file": path.name, "sha256": None, "size_bytes": None}
        return _quarantine(log, path, base, stamp, [problem], rows=None, lake=lake, table=table)
    sha, size = file_sha256(path), path.stat().st_size
    base = {"table": table, "file": path.name, "sha256": sha, "size_bytes": size}
    known = lake.real_ledger(table).get(sha)
    if known is not None:
        seen = already_committed(log, path, base, known, table)
        if not isinstance(seen, Problem):
            waiting_file(lake, table, path.name).unlink(missing_ok=True)
            return seen
        return _quarantine(log, path, base, stamp, [seen], rows=_count_rows(path, pipeline), lake=lake,
                           table=table)

    try:
        df = read_landed(path, pipeline.landing.null_values, pipeline.landing.max_decompressed_bytes)
    except TableReadError as exc:
        code = "empty" if size == 0 else getattr(exc, "code", "unreadable")
        return _quarantine(log, path, base, stamp, [Problem(code, f"table {table!r}: {exc}")], rows=None,
                           lake=lake, table=table)

    suite, contract = table_landing_suite(lake, gx_context, pipeline, table)
    problems = structural_problems(df, contract.schema)
    conformed = None
    if not problems:
        conformed = cast_to_schema(df, contract.schema)
        validation = gx_context.validate(conformed, suite, batch_name=f"landed_file.{table}")
        problems = contract_problems(validation.results, conformed, contract)
    if problems:
        return _quarantine(log, path, base, stamp, problems, rows=df.height, lake=lake, table=table)

    spec = specs[table]
    fk = foreign_key_of(specs, table) if spec.parent else None
    problems = null_key_problems(table, conformed, {spec.key: "key", **({fk: "foreign_key"} if fk else {})})
    if problems:
        return _quarantine(log, path, base, stamp, problems, rows=conformed.height, lake=lake, table=table)
    problems = duplicate_key_problems(table, conformed, spec.key, _keys(lake, table, spec.key))
    orphans, parent_keys = [], None
    if spec.parent is not None:
        parent_keys = _keys(lake, spec.parent, specs[spec.parent].key)[specs[spec.parent].key]
        orphans = orphan_problems(table, conformed, fk, spec.parent, parent_keys)
    if problems:
        return _quarantine(log, path, base, stamp, problems + orphans, rows=conformed.height, lake=lake,
                           table=table)
    if orphans:
        return _wait_or_quarantine(log, path, base, stamp, conformed, orphans[0], parent_keys, spec, fk, lake,
                                   pipeline, now)

    archive = _unused(lake.archive_dir() / f"{stamp}_{safe_name(table)}__{safe_name(path.name)}")
    version = lake.append_real(conformed, _ledger_entry(path, sha, conformed.height, archive, "landed"), table=table)
    _move(path, archive)  # only after the commit: a crash before this line leaves the file for the next attempt
    waiting_file(lake, table, path.name).unlink(missing_ok=True)
    seconds = round(time.perf_counter() - started, 3)
    log.info(f"accepted {table}/{path.name}: {conformed.height} rows appended as version {version} of table "
             f"{table!r} ({seconds} s)")
    return {**base, "status": "accepted", "version": version, "rows": conformed.height, "archive": str(archive),
            "seconds": seconds}


def _keys(lake: LakeResource, table: str, key: str) -> pl.DataFrame:
    """The key column of a table's accepted rows (its latest version), read alone."""
    return pl.scan_delta(lake.real_table_uri(table)).select(key).collect()


def _wait_or_quarantine(log, path: Path, base: dict, stamp: str, conformed: pl.DataFrame, orphan: Problem,
                        parent_keys: pl.Series, spec: TableSpec, fk: str, lake: LakeResource,
                        pipeline: PipelineConfig, now: datetime) -> dict:
    """A child file whose only fault is orphans: `waiting` until `parent_wait_hours` after its first sighting,
    then quarantined as `orphan`."""
    table, hours = base["table"], pipeline.landing.parent_wait_hours
    record_path = waiting_file(lake, table, path.name)
    record = json.loads(record_path.read_text()) if record_path.exists() else None
    if record is not None and record.get("sha256") != base["sha256"]:
        record = None  # another file under the same name: its wait starts now
    first_seen = datetime.fromisoformat(record["first_seen"]) if record else now
    wait_until = first_seen + timedelta(hours=hours)
    missing = orphan_rows(conformed.select(fk), fk, parent_keys)
    examples = missing[fk].unique().sort().to_list()
    if now < wait_until:
        if record is None:
            atomic_write_json(record_path, {"table": table, "file": path.name, "sha256": base["sha256"],
                                            "first_seen": first_seen.isoformat()})
        summary = (f"table {table!r}: {path.name} waits for its parent rows until {wait_until.isoformat()} "
                   f"(landing.parent_wait_hours: {hours:g} from its first sighting at {first_seen.isoformat()}): "
                   f"{missing.height} of its {conformed.height} row(s) have a {fk!r} not yet in table "
                   f"{spec.parent!r}, e.g. {examples[:EXAMPLES]}. It stays in landing and is accepted once those "
                   f"rows land in landing/{spec.parent}/; after the wait it is quarantined as orphan")
        log.warning(summary)
        return {**base, "status": WAITING, "rows": conformed.height, "orphan_rows": missing.height,
                "parent": spec.parent, "foreign_key": fk, "missing_parent_keys": examples[:100],
                "first_seen": first_seen.isoformat(), "wait_until": wait_until.isoformat(),
                "version": lake.real_table_head(table), "summary": summary, "reasons": [orphan.to_dict()]}
    waited = Problem("orphan", f"{orphan.detail}; waited {hours:g} h (landing.parent_wait_hours) from "
                     f"{first_seen.isoformat()} to {wait_until.isoformat()} without those parent rows arriving",
                     column=orphan.column, observed=orphan.observed)
    outcome = _quarantine(log, path, base, stamp, [waited], rows=conformed.height, lake=lake, table=table,
                          extra={"orphan_rows": missing.height, "first_seen": first_seen.isoformat(),
                                 "wait_until": wait_until.isoformat()})
    return outcome


def _quarantine(log, path: Path, base: dict, stamp: str, problems: list[Problem], rows: int | None,
                lake: LakeResource, table: str | None, extra: dict | None = None) -> dict:
    prefix = f"{safe_name(table)}__" if table else ""
    target = _unused(lake.quarantine_dir() / f"{stamp}_{prefix}{safe_name(path.name)}")
    reason = {**base, "status": "quarantined", "rows": rows, **(extra or {}), "quarantined_file": str(target),
              "quarantined_at": stamp, "table_version": lake.real_table_head(table) if table else None,
              "summary": summarise(problems), "reasons": [p.to_dict() for p in problems]}
    # the reason goes first: a crash between the two leaves the file in landing, to be checked again
    atomic_write_json(target.with_name(target.name + ".reason.json"), reason)
    _move(path, target)
    if table:
        waiting_file(lake, table, path.name).unlink(missing_ok=True)
    log.error(f"quarantined {table or path.parent.name}/{path.name}: {reason['summary']}")
    return {**reason, "version": reason["table_version"]}


def outcome_metadata(outcome: dict) -> dict:
    """The flat ingest's metadata (`assets.real._outcome_metadata`), plus lists and mappings as JSON."""
    meta = _outcome_metadata(outcome)
    for key, value in outcome.items():
        if key != "reasons" and isinstance(value, (list, dict)) and value:
            meta[key] = dg.MetadataValue.json(value)
    return meta


def landed_table(path: Path) -> str:
    """The table a landed file is for: the name of the folder it landed in (`landing/<table>/<file>`)."""
    return Path(path).parent.name


def build_dataset_ingest_asset(pipeline: PipelineConfig) -> dg.AssetsDefinition:
    """`real_ingest` of a dataset: the flat asset's name, group, check and run config, over `data.tables`."""
    data = pipeline.data
    _, specs, _ = dataset_specs(data)
    tables = list(topological_order(specs))
    hours = pipeline.landing.parent_wait_hours

    @dg.asset(
        name=INGEST, group_name="real", kinds={"deltalake"}, owners=[OWNER], pool=REAL_TABLE_POOL,
        check_specs=[dg.AssetCheckSpec(LANDING_CHECK, asset=INGEST, blocking=True,
                                       description="The landed file met its table's contract and was appended, "
                                                   "or waits for its parent rows; fails (and stops the run) when "
                                                   "it was quarantined.")],
        description=f"The ingest into the dataset's versioned tables {tables}: creates each from its "
                    "data.tables source (version 0) on first use, then validates the landed file named in run "
                    "config (landing/<table>/<file>) against its table and appends it as one Delta commit, moves "
                    "it to quarantine with a machine-readable reason, or, a child file whose only fault is rows "
                    f"without their parent yet, leaves it waiting in landing for up to {hours:g} h "
                    "(landing.parent_wait_hours). Nothing is deleted.",
    )
    def real_ingest(context: dg.AssetExecutionContext, config: IngestConfig, lake: LakeResource,
                    gx_context: GreatExpectationsResource):
        bootstrap = ensure_dataset_tables(lake, data)
        if config.landed_file is None:
            outcome = {"status": "no_file", **bootstrap}
        else:
            path = Path(config.landed_file)
            outcome = ingest_dataset_file(context.log, path, landed_table(path), lake, gx_context, pipeline)
            outcome["table_versions"] = table_versions(lake, tables)
        outcome["dataset_version"] = dataset_version(outcome["table_versions"])
        passed = outcome["status"] != "quarantined"
        metadata = outcome_metadata(outcome)
        yield dg.Output(outcome, metadata=metadata)
        yield dg.AssetCheckResult(check_name=LANDING_CHECK, passed=passed, severity=dg.AssetCheckSeverity.ERROR,
                                  description=outcome.get("summary") or outcome["status"], metadata=metadata)

    return real_ingest
