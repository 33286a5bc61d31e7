"""The lake: one folder (object storage at scale) holding tables, batches, generators, verdicts, reports."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import dagster as dg
import deltalake
import polars as pl
from deltalake.exceptions import TableNotFoundError

from ouroboros import faultpoints
from ouroboros.verdict import GATE_CHECKS, CheckRecord, Verdict, fingerprint, rules_key

LEDGER_PREFIX = "ouroboros."  # commit metadata keys of the real table's ledger (file hash, name, archive, rows)


# Temp files and folders of the atomic writers: `.<name>.tmp-<pid>-<host>-<random>`, beside their target. Readers
# open exact names or match a suffix (`*.json`), so a temp name (leading dot, no suffix of its own) is never read.
# A process killed between writing and renaming leaves one behind; the next write of the same target removes it
# when its writer (same host, by pid) is gone, and says so in the run log. A temp of a live writer (a concurrent
# write) or of another host (a shared volume) is left alone.
TEMP_MARK = ".tmp-"
_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[^/]*$")


def temp_prefix(path: Path) -> str:
    return f".{path.name}{TEMP_MARK}{os.getpid()}-{_HOST}-"


def is_temp(name: str) -> bool:
    """True for the name of an atomic writer's temp file or folder (what readers must never take for data)."""
    return _TEMP.match(name) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def sweep_stale_temps(path: Path) -> list[Path]:
    """Remove what a killed write of `path` left beside it (temp files or folders of dead writers on this host)."""
    removed = []
    if not path.parent.exists():
        return removed
    for p in path.parent.glob(f".{glob.escape(path.name)}{TEMP_MARK}*"):
        m = _TEMP.match(p.name)
        if m is None or m["name"] != path.name or m["host"] != _HOST or _alive(int(m["pid"])):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
        dg.get_dagster_logger("ouroboros.lake").warning(
            f"{path}: removed {p.name}, left by process {m['pid']}, which died before renaming it into place (killed "
            "mid-write); readers never saw it, the file itself is the last complete version")
    return removed


def _atomic_write(path: Path, write) -> None:
    """Write via a temp file beside `path` and rename, so a crash never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path))
    try:
        write(fd, tmp)
        faultpoints.hit(f"write:{path.name}", path)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, f"could not write {path}: {exc.strerror or exc}; the file was left as it was "
                      "(its partial temp file removed)", str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    def write(fd: int, _tmp: str) -> None:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the bytes reach the disk before the rename makes them the file

    _atomic_write(path, write)


def atomic_write_parquet(path: Path, df: pl.DataFrame) -> None:
    def write(fd: int, tmp: str) -> None:
        os.close(fd)
        df.write_parquet(tmp, compression="zstd")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())

    _atomic_write(path, write)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, default=str).encode())


def asset_file(root: str | Path, key_path: list[str] | tuple[str, ...], suffix: str) -> Path:
    """Where the lake's IO manager keeps an asset's value: `<root>/assets/<key path><suffix>`."""
    return Path(root, "assets", *key_path).with_suffix(suffix)


class LakeResource(dg.ConfigurableResource):
    """Paths inside the lake; every location the pipeline writes is derived here, nowhere else."""

    root: str

    @property
    def path(self) -> Path:
        return Path(self.root)

    def read_asset_table(self, key_path: list[str] | tuple[str, ...]) -> pl.DataFrame | None:
        """The stored frame of a table asset, or None if it was never materialised."""
        path = asset_file(self.root, key_path, ".parquet")
        return pl.read_parquet(path) if path.exists() else None

    def landing_dir(self) -> Path:
        return self.path / "landing"

    def quarantine_dir(self) -> Path:
        return self.path / "real" / "quarantine"

    def generator_dir(self, study: str, generation: int) -> Path:
        return self.path / "generators" / study / f"gen_{generation}"

    def pool_origin_file(self, study: str, generation: int) -> Path:
        """Row origins of the pool generation k learnt from, aligned by row (ouroboros.provenance)."""
        return self.path / "provenance" / study / f"generator_g{generation}.pool.parquet"

    def model_dir(self, name: str) -> Path:
        return self.path / "models" / name

    def reports_dir(self) -> Path:
        return self.path / "reports"

    def verdict_dir(self, batch_key: str) -> Path:
        return self.path / "verdicts" / batch_key

    def write_check_record(self, batch_key: str, record: CheckRecord) -> Path:
        path = self.verdict_dir(batch_key) / f"{record.check}.json"
        atomic_write_json(path, record.to_dict())
        return path

    def read_verdict(self, batch_key: str, batch_fingerprint: str | None,
                     required: tuple[str, ...] = GATE_CHECKS, rules: str | None = None) -> Verdict:
        """The gate's verdict on this version of the batch, from the check records stored beside it; given
        `rules` (`ouroboros.verdict.rules_key`), only records made under those rules and real data count."""
        folder = self.verdict_dir(batch_key)
        records = [CheckRecord(**json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))
                   if not p.name.startswith(".")] if folder.exists() else []  # never a temp (is_temp)
        verdict = Verdict.combine(batch_key, records, batch_fingerprint, required, rules)
        return verdict.with_lineage(self.read_lineage(batch_key, batch_fingerprint))

    def lineage_file(self, batch_key: str, batch_fingerprint: str) -> Path:
        """The lineage record of one version of a batch, kept with its verdict (one file per version)."""
        return self.verdict_dir(batch_key) / "lineage" / f"{batch_fingerprint}.json"

    def write_lineage(self, batch_key: str, batch_fingerprint: str, lineage: dict) -> Path:
        """Record what this version of the batch descends from (parents by fingerprint, real-table version)."""
        path = self.lineage_file(batch_key, batch_fingerprint)
        atomic_write_json(path, {"batch": batch_key, "batch_fingerprint": batch_fingerprint, **lineage})
        return path

    def read_lineage(self, batch_key: str, batch_fingerprint: str | None) -> dict | None:
        if batch_fingerprint is None:
            return None
        path = self.lineage_file(batch_key, batch_fingerprint)
        return json.loads(path.read_text()) if path.exists() else None

    def current_rules(self, gate: dict, target: str | None) -> str | None:
        """The rules key of the stored real_train and real_holdout under these gate settings (None before the
        real data is materialised)."""
        train, holdout = self.read_asset_table(["real_train"]), self.read_asset_table(["real_holdout"])
        if train is None or holdout is None:
            return None
        if "contract_batch_rows" not in gate:
            # the contract's batch size (studies[].rows) is part of the rules: read it from the stored contract,
            # as the checks add it from the config (assets.real.contract_rules)
            path = asset_file(self.root, ["real_contract"], ".json")
            if path.exists():
                gate = {**gate, "contract_batch_rows": json.loads(path.read_text())["batch_rows"]}
        return rules_key(gate, target, fingerprint(train), fingerprint(holdout))

    def read_batch_with_verdict(self, key_path: list[str] | tuple[str, ...],
                                rules: str | None = None) -> tuple[pl.DataFrame, Verdict] | None:
        """A stored synthetic batch and the gate's verdict on exactly this version of it (None: not materialised)."""
        batch = self.read_asset_table(key_path)
        if batch is None:
            return None
        return batch, self.read_verdict("/".join(key_path), fingerprint(batch), rules=rules)

    def replace_dir(self, target: Path, build) -> Path:
        """Build a folder next to `target` with `build(tmp_path)` and swap it in whole."""
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(target)
        old = target.with_name(f".{target.name}.old")
        if old.exists() and not target.exists():
            # a process died between the two renames below: the old version waits in `old` and is dropped once
            # the new one is in place
            dg.get_dagster_logger("ouroboros.lake").warning(
                f"{target}: missing, with {old.name} beside it: an earlier swap was killed half-way; replacing it now")
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=temp_prefix(target)))
        try:
            build(tmp)
            faultpoints.hit(f"replace_dir:{target.name}", target)
            if target.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    # The real table: Delta Lake, append-only, one commit per accepted file. Every location of the landing
    # workflow is derived below; a `deltalake` URI (s3://, gs://, abfss://) works for the table itself.

    def real_dir(self, table: str | None = None) -> Path:
        """The real table's folder; `table`: one table of a dataset of several (`data.tables`), in its own folder
        under `real/tables/` (so a table named `table` cannot meet the flat table's Delta folder)."""
        return self.path / "real" if table is None else self.path / "real" / "tables" / table

    def real_table_uri(self, table: str | None = None) -> str:
        return str(self.real_dir(table) / "table")

    def archive_dir(self) -> Path:
        """Accepted landed files, kept as they arrived."""
        return self.real_dir() / "landed"

    def alerts_file(self) -> Path:
        return self.path / "alerts" / "alerts.jsonl"

    def real_table_head(self, table: str | None = None) -> int | None:
        """Latest committed version of the real table, or None before its first commit."""
        try:
            return deltalake.DeltaTable(self.real_table_uri(table)).version()
        except TableNotFoundError:
            return None

    def append_real(self, df: pl.DataFrame, metadata: dict[str, str], table: str | None = None) -> int:
        """Append `df` as one atomic Delta commit carrying `metadata`; returns the new version."""
        faultpoints.hit("real_table.append")
        deltalake.write_deltalake(self.real_table_uri(table), df.to_arrow(), mode="append",
                                  commit_properties=deltalake.CommitProperties(custom_metadata=metadata))
        faultpoints.hit("real_table.committed")
        return deltalake.DeltaTable(self.real_table_uri(table)).version()

    def read_real(self, version: int | None = None, table: str | None = None) -> pl.DataFrame:
        return pl.read_delta(self.real_table_uri(table), version=version)

    def real_ledger(self, table: str | None = None) -> dict[str, dict]:
        """Every file committed to the real table, by content hash: {sha256: {version, file, archive, rows}}."""
        if self.real_table_head(table) is None:
            return {}
        ledger = {}
        for commit in deltalake.DeltaTable(self.real_table_uri(table)).history():
            sha = commit.get(f"{LEDGER_PREFIX}sha256")
            if sha and sha not in ledger:
                ledger[sha] = {"version": commit["version"], "timestamp": commit.get("timestamp"),
                               **{k[len(LEDGER_PREFIX):]: v for k, v in commit.items() if k.startswith(LEDGER_PREFIX)}}
        return ledger

    def record_real_version(self, info: dict, table: str | None = None) -> None:
        """Note which table version `real_data` (and so real_train/real_holdout) was last built from."""
        atomic_write_json(self.real_dir(table) / "version.json", info)

    def real_table_version(self, table: str | None = None) -> int | None:
        """The real-table version the current real_data/real_train were built from: what a generator trains on."""
        path = self.real_dir(table) / "version.json"
        return json.loads(path.read_text())["version"] if path.exists() else None

    def append_alert(self, record: dict) -> Path:
        """Append one alert as a JSON line (a single write, so lines from two processes never interleave)."""
        path = self.alerts_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")
        return path
