"""Real-data assets: landed files ingested into the versioned real table, the table itself, its stable
train/holdout split (a row's side decided by a hash of the row, `ouroboros.split`), and the data contract
synthetic batches are held to.

The real table is a Delta Lake table under the lake, append-only: version 0 is `data.source`, each accepted
landed file is one more commit whose metadata records the file's name, content hash, row count and archive path
(the ledger). A file is moved out of landing only after its commit, so a process killed half-way leaves the
table at the previous version (Delta commits are atomic) and the file in landing for the next attempt; a file
whose hash is already in the ledger is never appended again.

Duplicates: a duplicate *file* (same bytes as one already committed) is quarantined with reason
`duplicate_file` and not appended; duplicate *rows* inside different files are kept, as real repeated records
(crash tables legitimately repeat identical rows).
"""


import hashlib
import json
import os
import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import OWNER, freshness_policy, table_metadata
from ouroboros.config import DataConfig, PipelineConfig
from ouroboros.landing import (
    Problem,
    cast_to_schema,
    contract_problems,
    file_sha256,
    landing_contract,
    landing_format,
    read_landed,
    structural_problems,
    summarise,
)
from ouroboros.quality.contract import Contract, derive_contract
from ouroboros.schema import SchemaError, TableSchema, infer_schema
from ouroboros.split import HASH, HASH_V1, SplitError, class_balance, train_holdout_split
from ouroboros.tables import TableReadError, read_table
from ouroboros.verdict import fingerprint
from resources import GreatExpectationsResource, LakeResource
from resources.lake import LEDGER_PREFIX, atomic_write_json

CONTRACT_SUITE = "real_contract"
LANDING_SUITE = "real_landing_contract"
REAL_TABLE_POOL = "real_table"  # concurrency pool: one writer of the real table at a time (limit in dagster.yaml)
INGEST = "real_ingest"
LANDING_CHECK = "landing_contract"


class IngestConfig(dg.Config):
    landed_file: str | None = None  # set by the landing sensor: a new file to validate and append


class RealDataConfig(dg.Config):
    table_version: int | None = None  # read this version of the real table instead of the latest (reproduction)


def build_real_assets(pipeline: PipelineConfig) -> list:
    data = pipeline.data
    max_age = pipeline.landing.real_max_age_hours
    # a real table nobody reads goes stale silently (the weekly study stopped, retrains never started): the UI's
    # freshness status says when real_data was last read longer ago than landing.real_max_age_hours
    real_freshness = freshness_policy(max_age)

    @dg.asset(
        name=INGEST, group_name="real", kinds={"deltalake"}, owners=[OWNER], pool=REAL_TABLE_POOL,
        check_specs=[dg.AssetCheckSpec(LANDING_CHECK, asset=INGEST, blocking=True,
                                       description="The landed file met the real-data contract and was appended; "
                                                   "fails (and stops the run) when it was quarantined.")],
        description="The ingest into the versioned real table: creates it from data.source (version 0) on first "
                    "use, then validates the landed file named in run config and appends it as one Delta commit, "
                    "or moves it to quarantine with a machine-readable reason. Nothing is deleted.",
    )
    def real_ingest(context: dg.AssetExecutionContext, config: IngestConfig, lake: LakeResource,
                    gx_context: GreatExpectationsResource):
        bootstrap = ensure_real_table(lake, data.source)
        if config.landed_file is None:
            outcome = {"status": "no_file", "version": lake.real_table_head(), **bootstrap}
        else:
            outcome = ingest_landed_file(context.log, Path(config.landed_file), lake, gx_context, pipeline)
        passed = outcome["status"] != "quarantined"
        yield dg.Output(outcome, metadata=_outcome_metadata(outcome))
        yield dg.AssetCheckResult(
            check_name=LANDING_CHECK, passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=outcome.get("summary") or outcome["status"],
            metadata=_outcome_metadata(outcome),
        )

    @dg.asset(
        deps=[INGEST], group_name="real", kinds={"deltalake", "polars"}, owners=[OWNER],
        freshness_policy=real_freshness,
        description="The real table (Delta Lake, append-only) at its latest version: data.source plus every "
                    "accepted landed file. The version read is recorded so every generator can name it.",
    )
    def real_data(context: dg.AssetExecutionContext, config: RealDataConfig,
                  lake: LakeResource) -> dg.Output[pl.DataFrame]:
        ensure_real_table(lake, data.source)  # real_data materialised on its own still finds its table
        version = lake.real_table_head() if config.table_version is None else config.table_version
        df = lake.read_real(version)
        try:
            schema = infer_schema(df, target=data.target, id_columns=data.id_columns)
        except SchemaError as exc:
            raise dg.Failure(f"{lake.real_table_uri()}@{version}: {exc}") from exc
        files = sum(1 for e in lake.real_ledger().values() if e["version"] <= version) - 1
        fp = fingerprint(df)
        lake.record_real_version({"version": version, "table": lake.real_table_uri(), "rows": df.height,
                                  "fingerprint": fp, "run_id": context.run_id})
        context.log.info(f"real_data: {df.height} rows, real table version {version} "
                         f"(data.source + {files} accepted landed file(s))")
        return dg.Output(df, metadata={**table_metadata(df, schema), "source": data.source, "real_table_version": version,
                                       "real_table": dg.MetadataValue.path(lake.real_table_uri()),
                                       "accepted_files": files, "fingerprint": fp})

    @dg.multi_asset(
        group_name="real", can_subset=False,
        outs={
            "real_train": dg.AssetOut(kinds={"polars", "parquet"}, owners=[OWNER],
                                      description="Real rows generators may learn from: every row whose stable "
                                                  "hash (of its content, or of data.key) puts it on the train side."),
            "real_holdout": dg.AssetOut(kinds={"polars", "parquet"}, owners=[OWNER],
                                        description="Real rows no generator ever sees: the yardstick for utility "
                                                    "and privacy. A row's side never changes as the table grows."),
        },
    )
    def real_split(real_data: pl.DataFrame, lake: LakeResource):
        hash_rule = check_split_rule(lake, data)
        try:
            train, holdout = train_holdout_split(real_data, data.holdout_fraction, data.seed, key=data.key,
                                                 rule=hash_rule)
        except SplitError as exc:
            raise dg.Failure(f"real_split ({lake.real_table_uri()}): {exc}") from exc
        balance = class_balance(train, holdout, data.target)
        rule = {"real_table_version": lake.real_table_version(), "split_rule": split_rule_text(data)}
        schema = infer_schema(train, target=data.target, id_columns=data.id_columns)
        yield dg.Output(train, output_name="real_train", metadata={
            **table_metadata(train, schema), **rule, "fingerprint": fingerprint(train),
            "class_balance": dg.MetadataValue.json(balance)})
        yield dg.Output(holdout, output_name="real_holdout", metadata={
            **table_metadata(holdout), **rule, "fingerprint": fingerprint(holdout)})

    @dg.asset(
        group_name="real", kinds={"great_expectations"}, owners=[OWNER],
        description="The univariate contract every synthetic batch must meet (columns, types, nulls, ranges, "
                    "category sets, spread and tails), derived from real_train and saved as a GX suite.",
    )
    def real_contract(real_train: pl.DataFrame, gx_context: GreatExpectationsResource) -> dg.Output[dict]:
        suite, contract = save_contract_suite(gx_context, pipeline, real_train)
        table = "\n".join(f"| `{r.expectation}` | {r.why} |" for r in contract.rules)
        return dg.Output(contract.to_dict(), metadata={
            "rules": len(contract.rules),
            "suite": suite,
            "contract": dg.MetadataValue.md("| expectation | rule |\n|---|---|\n" + table),
        })

    return [real_ingest, real_data, real_split, real_contract]


def contract_batch_rows(pipeline: PipelineConfig, real_train_rows: int) -> int:
    """The batch size the contract's bounds are derived for: the smallest study batch (`studies[].rows`), whose
    sampling noise is the widest, so bounds derived for it hold for larger ones."""
    return min(s.rows or real_train_rows for s in pipeline.studies)


def contract_rules(pipeline: PipelineConfig, real_train_rows: int) -> dict:
    """The gate settings a verdict depends on, with the contract's batch size (it sets the contract's bounds)."""
    return {**pipeline.gate.model_dump(), "contract_batch_rows": contract_batch_rows(pipeline, real_train_rows)}


def contract_suite_name(pipeline: PipelineConfig, real_train: pl.DataFrame) -> str:
    """The GX suite of the contract under today's rules: its name carries a digest of the gate settings, the
    contract's batch size and real_train, so a suite derived under other rules is never validated against."""
    identity = {"rules": contract_rules(pipeline, real_train.height), "real_train": fingerprint(real_train),
                "seed": pipeline.data.seed, "id_columns": pipeline.data.id_columns}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{CONTRACT_SUITE}.{digest}"


def save_contract_suite(gx_context: GreatExpectationsResource, pipeline: PipelineConfig,
                        real_train: pl.DataFrame) -> tuple[str, Contract]:
    """Derive the contract from real_train under today's rules and store it as the suite named for them."""
    contract = derive_contract(real_train, pipeline.gate, batch_rows=contract_batch_rows(pipeline, real_train.height),
                               seed=pipeline.data.seed, id_columns=pipeline.data.id_columns)
    name = contract_suite_name(pipeline, real_train)
    gx_context.save_suite(name, contract)
    return name, contract


def _outcome_metadata(outcome: dict) -> dict:
    meta = {k: v for k, v in outcome.items() if isinstance(v, (str, int, float, bool)) and k != "reasons"}
    if outcome.get("reasons"):
        meta["reasons"] = dg.MetadataValue.json(outcome["reasons"])
    if outcome.get("version") is not None:
        meta["real_table_version"] = outcome["version"]
    return meta


def ensure_real_table(lake: LakeResource, source: str) -> dict:
    """Create the real table from `data.source` as version 0 if it does not exist; refuse a changed source."""
    source_sha = file_sha256(source)
    if lake.real_table_head() is None:
        df = read_table(source)
        version = lake.append_real(df, _ledger_entry(Path(source), source_sha, df.height, Path(source), "source"))
        return {"bootstrapped": True, "source_sha256": source_sha, "version": version}
    first = min(lake.real_ledger().values(), key=lambda e: e["version"], default=None)
    if first is None or first.get("sha256") != source_sha:
        raise dg.Failure(
            f"the real table at {lake.real_table_uri()} was started from {first and first.get('file')} but "
            f"data.source is now {source} (different content). A real table is append-only: land the new rows "
            "as files in the landing folder, or point OUROBOROS_LAKE at a fresh lake for a different dataset.")
    return {"bootstrapped": False, "source_sha256": source_sha}


def split_rule_text(data: DataConfig) -> str:
    key = data.key if data.key is not None else "the whole row"
    return f"{HASH}(key={key}, seed={data.seed}) < {data.holdout_fraction} -> holdout"


def check_split_rule(lake: LakeResource, data: DataConfig) -> str:
    """Record the split rule with the real table on first use; refuse a changed rule under the same table.
    Returns the hash rule to split with: a lake split under blake2b-64/v1 keeps it (its rows keep their sides).

    A new fraction, seed or key would move rows that generators already learnt from into real_holdout (or
    hand holdout rows to the next generator): the very leak the stable split exists to prevent.
    """
    path = lake.real_dir() / "split_rule.json"
    rule = {"hash": HASH, "key": data.key, "seed": data.seed, "holdout_fraction": data.holdout_fraction}
    if not path.exists():
        atomic_write_json(path, rule)
        return HASH
    kept = json.loads(path.read_text())
    if kept.get("hash") == HASH_V1:
        rule["hash"] = HASH_V1
    changed = {k: (kept.get(k), v) for k, v in rule.items() if kept.get(k) != v}
    if changed:
        what = ", ".join(f"data.{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        raise dg.Failure(
            f"the train/holdout split rule of the real table at {lake.real_table_uri()} has changed ({what}). "
            "Rows that generators learnt from would move into real_holdout. Set the old values back, or point "
            "OUROBOROS_LAKE at a fresh lake to split this data another way.")
    return rule["hash"]


def _ledger_entry(path: Path, sha: str, rows: int, archive: Path, kind: str) -> dict[str, str]:
    return {f"{LEDGER_PREFIX}{k}": str(v) for k, v in
            {"sha256": sha, "file": path.name, "rows": rows, "archive": archive, "kind": kind,
             "committed_at": datetime.now(timezone.utc).isoformat()}.items()}


def landing_suite(lake: LakeResource, gx_context: GreatExpectationsResource, pipeline: PipelineConfig) -> Contract:
    """The landing contract, derived once from version 0 of the real table and kept beside it."""
    path = lake.real_dir() / "landing_schema.json"
    if path.exists():
        schema = TableSchema.from_dict(json.loads(path.read_text()))
    else:
        schema = infer_schema(lake.read_real(0), target=pipeline.data.target, id_columns=pipeline.data.id_columns)
        atomic_write_json(path, schema.to_dict())
    contract = landing_contract(schema, pipeline.landing)
    gx_context.save_suite(LANDING_SUITE, contract)
    return contract


def ingest_landed_file(log, path: Path, lake: LakeResource, gx_context: GreatExpectationsResource,
                       pipeline: PipelineConfig) -> dict:
    """Append a landed file to the real table, or quarantine it with its reasons. Returns the outcome record.

    Safe to repeat after a crash at any point: the file's hash in the commit ledger says whether it was already
    appended, and the file leaves landing only after the commit that holds its rows.
    """
    if not path.exists():
        raise dg.Failure(f"{path}: the landed file is gone (already ingested or moved by hand?)")
    started = time.perf_counter()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    if path.is_symlink() or not path.is_file():
        # never followed: a link could make the lake read (and keep) any file the process can see
        what = f"a symbolic link to {os.readlink(path)!r}" if path.is_symlink() else "not a regular file"
        problem = Problem("unsafe_file", f"{path.name!r} is {what}; links and special files are not followed: "
                          "land the file itself")
        base = {"file": path.name, "sha256": None, "size_bytes": None}
        return _quarantine(log, path, base, stamp, [problem], rows=None, lake=lake)
    sha, size = file_sha256(path), path.stat().st_size
    base = {"file": path.name, "sha256": sha, "size_bytes": size}
    known = lake.real_ledger().get(sha)
    if known is not None:
        seen = already_committed(log, path, base, known)
        if not isinstance(seen, Problem):
            return seen
        return _quarantine(log, path, base, stamp, [seen], rows=_count_rows(path, pipeline), lake=lake)

    try:
        df = read_landed(path, pipeline.landing.null_values, pipeline.landing.max_decompressed_bytes)
    except TableReadError as exc:
        code = "empty" if size == 0 else getattr(exc, "code", "unreadable")
        return _quarantine(log, path, base, stamp, [Problem(code, str(exc))], rows=None, lake=lake)

    contract = landing_suite(lake, gx_context, pipeline)
    problems = structural_problems(df, contract.schema)
    conformed = None
    if not problems:
        conformed = cast_to_schema(df, contract.schema)
        validation = gx_context.validate(conformed, LANDING_SUITE, batch_name="landed_file")
        problems = contract_problems(validation.results, conformed, contract)
    if problems:
        return _quarantine(log, path, base, stamp, problems, rows=df.height, lake=lake)

    archive = _unused(lake.archive_dir() / f"{stamp}_{safe_name(path.name)}")
    version = lake.append_real(conformed, _ledger_entry(path, sha, conformed.height, archive, "landed"))
    _move(path, archive)  # only after the commit: a crash before this line leaves the file for the next attempt
    seconds = round(time.perf_counter() - started, 3)
    log.info(f"accepted {path.name}: {conformed.height} rows appended as real table version {version} ({seconds} s)")
    return {**base, "status": "accepted", "version": version, "rows": conformed.height, "archive": str(archive),
            "seconds": seconds}


def already_committed(log, path: Path, base: dict, known: dict, table: str | None = None) -> dict | Problem:
    """A landed file whose content the ledger already holds (`known`, its entry): when a run was killed after the
    commit and before the move, finish the move and return the accepted outcome (nothing appended again);
    otherwise the `duplicate_file` problem to quarantine it with. `table`: a dataset's table (None: the flat one)."""
    archive, version = Path(known["archive"]), known["version"]
    if known.get("kind") == "landed" and not archive.exists():
        _move(path, archive)
        name, which = (f"{table}/{path.name}", f"version {version} of table {table!r}") if table else \
            (path.name, f"version {version}")
        log.warning(f"{name}: already committed as {which}; finished the move to {archive}")
        return {**base, "status": "accepted", "recovered": True, "version": int(version),
                "rows": int(known["rows"]), "archive": str(archive)}
    where = f"table {table!r}: " if table else ""
    return Problem("duplicate_file", f"{where}same content as {known['file']}, already in the "
                   f"{'table' if table else 'real table'} as version {version}; not appended twice")


def _quarantine(log, path: Path, base: dict, stamp: str, problems: list[Problem], rows: int | None,
                lake: LakeResource) -> dict:
    target = _unused(lake.quarantine_dir() / f"{stamp}_{safe_name(path.name)}")
    reason = {**base, "status": "quarantined", "rows": rows, "quarantined_file": str(target),
              "quarantined_at": stamp, "table_version": lake.real_table_head(),
              "summary": summarise(problems), "reasons": [p.to_dict() for p in problems]}
    # the reason goes first: a crash between the two leaves the file in landing, to be checked again
    atomic_write_json(target.with_name(target.name + ".reason.json"), reason)
    _move(path, target)
    log.error(f"quarantined {path.name}: {reason['summary']}")
    return {**reason, "version": reason["table_version"]}


def _count_rows(path: Path, pipeline: PipelineConfig) -> int | None:
    try:
        return read_landed(path, pipeline.landing.null_values, pipeline.landing.max_decompressed_bytes).height
    except TableReadError:
        return None


def safe_name(name: str) -> str:
    """A landed file's name as it may appear in the lake: letters, digits, '.', '_' and '-' only (anything else,
    '/' and control characters included, becomes '_'), no leading dot, at most 120 characters with the format's
    suffix kept. The original name stays in the ledger and the reason file."""
    fmt = landing_format(name) or ""
    stem = name[: len(name) - len(fmt)] if fmt else name
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".") or "file"
    suffix = re.sub(r"[^A-Za-z0-9._-]", "_", fmt)
    return clean[: 120 - len(suffix)] + suffix


def _unused(path: Path) -> Path:
    """`path`, or `path` with a counter, so two files of one name in one microsecond never overwrite each other."""
    candidate, n = path, 1
    while candidate.exists() or candidate.is_symlink() or candidate.with_name(candidate.name + ".reason.json").exists():
        candidate, n = path.with_name(f"{n}_{path.name}"), n + 1
    return candidate


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), dst)
