"""Fault injection: the real graph is killed (SIGKILL, `kill -9`) inside every step that writes, then rerun.

Each kill runs the step in a subprocess (`python -m tests.faultrun`) on a copy of one prepared lake, with
`OUROBOROS_FAULTPOINT` naming the place (`ouroboros/faultpoints.py`): after the temp file of an atomic write is
written and before its rename, after a generator's folder is built aside and before the swap, before and after
the Delta commit of a landed file. After each kill: the process died by SIGKILL at that point (its last line on
stderr names it); readers see the last complete version or nothing (a temp file left behind has a name no reader
opens, and the reader is checked to ignore it); then a rerun without the fault point completes, its run log says
what it found, and row counts are exact (nothing lost, nothing twice).

Kept small (200-row batches, the copula, one generation) so the module runs in about a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from ouroboros.faultpoints import ENV as FAULTPOINT
from ouroboros.generators import load
from ouroboros.verdict import fingerprint
from pipelines.settings import Settings
from resources.lake import LakeResource, is_temp
from tests.faultrun import materialize
from tests.wiring import WIRING_GATE

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[1]
STUDY, ROWS = "s", 200
BATCH, GENERATOR = f"{STUDY}/batch_g0", f"{STUDY}/generator_g0"
REAL = ["real_ingest", "real_data", "real_train", "real_holdout", "real_contract"]


class Work:
    """One copy of the prepared lake, its config file and a Dagster home, and how to run the graph on it."""

    def __init__(self, path: Path, base: Path) -> None:
        self.path = path
        shutil.copytree(base, path, symlinks=True)
        self.lake = LakeResource(root=str(path / "lake"))
        self.home = path / "dagster_home"
        self.home.mkdir(exist_ok=True)
        self.env = {"OUROBOROS_CONFIG": str(path / "ouroboros.yaml"), "OUROBOROS_LAKE": str(path / "lake")}

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def killed(self, spec: dict, point: str) -> subprocess.CompletedProcess:
        """Run `spec` in a subprocess that the fault point kills; return it once it died by SIGKILL there."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OUROBOROS_"))}
        env.update(self.env, DAGSTER_HOME=str(self.home), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
                   **{FAULTPOINT: point})
        proc = subprocess.run([sys.executable, "-m", "tests.faultrun", json.dumps(spec)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout[-1500:], proc.stderr[-3000:])
        assert f"ouroboros fault point {point}: SIGKILL" in proc.stderr
        return proc

    def rerun(self, spec: dict) -> tuple[dg.ExecuteInProcessResult, str]:
        """The same selection in this process, on the same Dagster instance; returns the result and its run log."""
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            result = materialize(spec, self.settings, instance)
            log = "\n".join(e.user_message for e in instance.all_logs(result.run_id))
            # the killed run stays STARTED in the instance: its last event is the step that never ended
            killed = [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.STARTED]
        assert result.success, log[-3000:]
        self.killed_runs = killed
        return result, log

    def temps(self) -> list[Path]:
        """Temp files and folders of the lake's atomic writers, anywhere in the lake."""
        return sorted(p for p in self.lake.path.rglob(".*") if is_temp(p.name))


@pytest.fixture(scope="module")
def base(tmp_path_factory, small_demo: pl.DataFrame) -> Path:
    """A lake with the real table, its split and contract, and generation 0's generator and batch (no checks)."""
    path = tmp_path_factory.mktemp("faults_base")
    small_demo.write_parquet(path / "real.parquet")
    (path / "ouroboros.yaml").write_text(yaml.safe_dump({
        "data": {"source": str(path / "real.parquet"), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [{"name": STUDY, "family": "copula", "policy": "replace", "generations": 1, "rows": ROWS}],
        "downstream": {"epochs": 1},
        "landing": {"settle_seconds": 0},
        "gate": WIRING_GATE,
    }))
    settings = Settings.from_env({"OUROBOROS_CONFIG": str(path / "ouroboros.yaml"), "OUROBOROS_LAKE": str(path / "lake")})
    with dg.instance_for_test() as instance:
        result = materialize({"assets": [*REAL, GENERATOR, BATCH]}, settings, instance)
    assert result.success
    return path


@pytest.fixture()
def work(tmp_path, base) -> Work:
    return Work(tmp_path / "work", base)


def batch_file(work: Work) -> Path:
    return work.lake.path / "assets" / STUDY / "batch_g0.parquet"


@pytest.mark.parametrize("point", ["real_table.append", "real_table.committed"])
def test_kill_during_landing_ingest(work: Work, small_demo: pl.DataFrame, point: str):
    """Killed just before the Delta commit of a landed file, or just after it (before the file leaves landing):
    the table is at the old version or the new one, whole (a Delta commit is atomic: data files a killed writer
    left without a commit are not in the log, so no reader sees them); the rerun appends the file exactly once."""
    landed = work.lake.landing_dir() / "landed.parquet"
    landed.parent.mkdir(parents=True, exist_ok=True)
    small_demo.sample(n=40, seed=99).write_parquet(landed)
    spec = {"assets": ["real_ingest"], "run_config": {"ops": {"real_ingest": {"config": {"landed_file": str(landed)}}}}}
    before = work.lake.read_real().height
    work.killed(spec, point)

    committed = point == "real_table.committed"
    assert work.lake.real_table_head() == (1 if committed else 0)
    assert work.lake.read_real().height == before + (40 if committed else 0)  # all of the file or none of it
    assert landed.exists()  # the file leaves landing only after its commit and the move

    result, log = work.rerun(spec)
    assert work.lake.real_table_head() == 1 and work.lake.read_real().height == before + 40  # once, not twice
    landed_entries = [e for e in work.lake.real_ledger().values() if e.get("kind") == "landed"]
    assert len(landed_entries) == 1 and Path(landed_entries[0]["archive"]).exists() and not landed.exists()
    if committed:
        assert "landed.parquet: already committed as version 1; finished the move" in log
    else:
        assert "accepted landed.parquet: 40 rows appended as real table version 1" in log


def test_kill_during_generator_save(work: Work):
    """Killed after the new generator's folder is built aside, before it is swapped in: the stored generator is
    the previous one, whole and loadable; the rerun removes the orphan folder and says so."""
    target = work.lake.generator_dir(STUDY, 0)
    origin = pl.read_parquet(work.lake.pool_origin_file(STUDY, 0))
    work.killed({"assets": [GENERATOR]}, f"replace_dir:{target.name}")

    [temp] = work.temps()
    assert temp.parent == target.parent and temp.is_dir() and temp.name.startswith(".gen_0.tmp-")
    assert load(target).sample(5, seed=1).height == 5  # readers open gen_0 only: the previous generator, whole
    assert pl.read_parquet(work.lake.pool_origin_file(STUDY, 0)).equals(origin)  # written only after the save

    result, log = work.rerun({"assets": [GENERATOR]})
    assert f"removed {temp.name}, left by process" in log and "died before renaming it" in log
    assert work.temps() == [] and load(target).sample(5, seed=1).height == 5
    real_train = pl.read_parquet(work.lake.path / "assets" / "real_train.parquet")
    assert pl.read_parquet(work.lake.pool_origin_file(STUDY, 0)).height == real_train.height  # every row, once


def test_kill_during_batch_write(work: Work):
    """Killed with the new batch in its temp file, before the rename: readers still get the previous batch
    whole; the rerun writes the same seeded batch, every row once."""
    old = pl.read_parquet(batch_file(work))
    work.killed({"assets": [BATCH]}, "write:batch_g0.parquet")

    [temp] = work.temps()
    assert temp.parent == batch_file(work).parent and temp.name.startswith(".batch_g0.parquet.tmp-")
    assert pl.read_parquet(temp).height == ROWS  # the new batch was complete, just not yet in place
    assert work.lake.read_asset_table([STUDY, "batch_g0"]).equals(old)  # what readers (and the IO manager) open

    result, log = work.rerun({"assets": [BATCH]})
    assert f"removed {temp.name}" in log
    new = pl.read_parquet(batch_file(work))
    assert new.height == ROWS and new.equals(old) and work.temps() == []  # no row lost or doubled


def test_kill_during_verdict_write(work: Work):
    """Killed while writing the contract check's record: no record is visible (the verdict has the check as
    missing, so the batch is not approved); the rerun writes it whole."""
    spec = {"checks": [[BATCH, "contract"]]}
    fp = fingerprint(pl.read_parquet(batch_file(work)))
    work.killed(spec, "write:contract.json")

    [temp] = work.temps()
    assert temp.parent == work.lake.verdict_dir(BATCH) and temp.name.startswith(".contract.json.tmp-")
    verdict = work.lake.read_verdict(BATCH, fp)  # globs *.json in that folder: the temp is not one
    assert "contract" in verdict.missing and not verdict.passed

    result, log = work.rerun(spec)
    assert f"removed {temp.name}" in log and work.temps() == []
    verdict = work.lake.read_verdict(BATCH, fp)
    assert "contract" not in verdict.missing
    assert json.loads((work.lake.verdict_dir(BATCH) / "contract.json").read_text())["batch_fingerprint"] == fp
    assert any(r.run_id != result.run_id for r in work.killed_runs)  # the killed run is kept as it died


def test_kill_during_report(work: Work):
    """Killed while writing the report page: the page is absent (never half a page); the rerun writes it."""
    page = work.lake.reports_dir() / "collapse_report.md"
    work.killed({"assets": ["collapse_report"]}, "write:collapse_report.md")

    [temp] = work.temps()
    assert temp.parent == page.parent and temp.name.startswith(".collapse_report.md.tmp-")
    assert not page.exists()

    result, log = work.rerun({"assets": ["collapse_report"]})
    assert f"removed {temp.name}" in log and work.temps() == []
    assert page.exists() and f"**{STUDY}**" in page.read_text()


def test_full_disk_during_batch_write(work: Work, monkeypatch):
    """A full disk while the batch is written. A real full filesystem cannot be made here without root (no
    mount, no loop device), so the fault point raises OSError(ENOSPC) inside the writer, where write_parquet's
    own ENOSPC would come from: the step fails with an error that names the batch file, the previous batch stays
    as it was, and no partial file is left."""
    old = pl.read_parquet(batch_file(work))
    monkeypatch.setenv(FAULTPOINT, "write:batch_g0.parquet=enospc")
    with dg.DagsterInstance.from_config(str(work.home)) as instance:
        result = materialize({"assets": [BATCH]}, work.settings, instance)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = str(failure.event_specific_data.error)
    assert "No space left on device" in error and f"could not write {batch_file(work)}" in error, error
    assert pl.read_parquet(batch_file(work)).equals(old) and work.temps() == []

    monkeypatch.delenv(FAULTPOINT)
    work.rerun({"assets": [BATCH]})
    assert pl.read_parquet(batch_file(work)).height == ROWS and work.temps() == []


def test_two_files_landing_in_the_same_second(work: Work, small_demo: pl.DataFrame):
    """Two files land with the same modification time: the sensor asks one ingest run for each, both are
    appended, the rows add up and neither is appended twice (a later tick asks nothing more)."""
    landing = work.lake.landing_dir()
    landing.mkdir(parents=True, exist_ok=True)
    stamp = time.time() - 60
    sizes = {"a.parquet": 30, "b.parquet": 25}
    for i, (name, n) in enumerate(sizes.items()):
        small_demo.sample(n=n, seed=i + 40).write_parquet(landing / name)
        os.utime(landing / name, (stamp, stamp))  # the very same second (and nanosecond)
    before = work.lake.read_real().height
    settings = work.settings
    from ouroboros.config import load_config
    from pipelines.definitions import build_definitions

    defs = build_definitions(load_config(settings.config_path), settings)
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.DagsterInstance.from_config(str(work.home)) as instance:
        cursor, requests = None, []
        for _ in range(2):  # a file must look the same on two ticks
            data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
            cursor, requests = data.cursor, requests + list(data.run_requests or [])
        assert sorted(r.tags["landed_file"] for r in requests) == sorted(sizes)
        assert len({r.run_key for r in requests}) == 2
        for r in requests:
            assert materialize({"assets": ["real_ingest"], "run_config": r.run_config}, settings, instance).success
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
        assert not data.run_requests
    assert work.lake.read_real().height == before + sum(sizes.values())
    ledger = {e["file"]: int(e["rows"]) for e in work.lake.real_ledger().values() if e.get("kind") == "landed"}
    assert ledger == sizes and not any(landing.iterdir())
