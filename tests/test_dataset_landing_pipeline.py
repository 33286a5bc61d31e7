"""Landing per table (issue 20): a dataset of two linked tables (patients, their visits) ingested through the real
`real_ingest` asset, a real Dagster instance, the real lake, Great Expectations and landing sensor, in a temp
lake with a few dozen rows. Only the ingest asset is materialised."""

from __future__ import annotations

import io
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from assets import dataset_ingest
from assets.dataset_ingest import (
    build_dataset_ingest_asset,
    ensure_dataset_tables,
    ingest_dataset_file,
    waiting_file,
)
from ouroboros.config import PipelineConfig
from pipelines.sensors import ATTEMPT_TAG, REQUEST_AGAIN_TAG, LandingCursor, build_landing_sensor
from resources import GreatExpectationsResource, LakeIOManager, LakeResource

INGEST = "real_ingest"


def patients(ids, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ids = list(ids)
    return pl.DataFrame({"patient_id": ids, "age": rng.uniform(20, 80, len(ids)).round(1),
                         "group": [["a", "b"][i % 2] for i in range(len(ids))]})


def visits(ids, patient_ids, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ids = list(ids)
    return pl.DataFrame({"visit_id": ids, "patient_id": list(patient_ids),
                         "day": rng.uniform(0, 100, len(ids)).round(2), "cost": rng.gamma(2.0, 10.0, len(ids))})


class Env:
    """A temp lake with two linked source tables, the dataset ingest asset, a job, the landing sensor."""

    def __init__(self, tmp_path: Path, instance: dg.DagsterInstance, wait_hours: float = 24,
                 source_patients: pl.DataFrame | None = None, source_visits: pl.DataFrame | None = None,
                 max_attempts: int = 3):
        self.src_p = tmp_path / "patients.parquet"
        self.src_v = tmp_path / "visits.parquet"
        self.source_patients = patients(range(30), 0) if source_patients is None else source_patients
        rng = np.random.default_rng(1)
        self.source_visits = (visits(range(60), rng.integers(0, 30, 60), 1) if source_visits is None
                              else source_visits)
        self.source_patients.write_parquet(self.src_p)
        self.source_visits.write_parquet(self.src_v)
        self.config = PipelineConfig.model_validate({
            "data": {"tables": {"patients": {"source": str(self.src_p), "key": "patient_id"},
                                "visits": {"source": str(self.src_v), "key": "visit_id", "parent": "patients",
                                           "foreign_key": "patient_id", "order_by": "day"}},
                     "target": {"table": "patients", "column": "group"}},
            "landing": {"settle_seconds": 0, "parent_wait_hours": wait_hours},
        })
        root = tmp_path / "lake"
        self.lake = LakeResource(root=str(root))
        self.gx = GreatExpectationsResource(project_root=str(root / "gx"))
        self.asset = build_dataset_ingest_asset(self.config)
        self.job = dg.define_asset_job("ingest_job", selection=dg.AssetSelection.assets(INGEST))
        self.landing = self.lake.landing_dir()
        self.landing.mkdir(parents=True)
        self.sensor = build_landing_sensor(self.job, self.landing, 0, max_attempts, tables=["patients", "visits"],
                                           lake=self.lake)
        self.defs = dg.Definitions(assets=[self.asset], jobs=[self.job], sensors=[self.sensor],
                                   resources={"lake": self.lake, "gx_context": self.gx,
                                              "io_manager": LakeIOManager(root=str(root))})
        self.instance = instance
        self.cursor: str | None = None

    def land(self, folder: str | None, name: str, df: pl.DataFrame) -> Path:
        target = self.landing / folder if folder else self.landing
        target.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        df.write_csv(buf) if name.endswith(".csv") else df.write_parquet(buf)
        tmp = target / f".{name}.part"
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, target / name)
        return target / name

    def run(self, landed: Path | None = None, request: dg.RunRequest | None = None) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def("ingest_job")
        if request is not None:
            return job.execute_in_process(run_config=request.run_config, instance=self.instance,
                                          raise_on_error=False,
                                          tags={**request.tags, "dagster/run_key": request.run_key})
        config = {"landed_file": str(landed)} if landed is not None else {}
        return job.execute_in_process(run_config={"ops": {INGEST: {"config": config}}}, instance=self.instance,
                                      raise_on_error=False)

    def tick(self) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs)
        data = self.defs.resolve_sensor_def("landing_sensor").evaluate_tick(context)
        self.cursor = data.cursor
        return list(data.run_requests or [])

    def reasons(self) -> dict[str, dict]:
        return {r["file"]: r for r in (json.loads(p.read_text())
                                       for p in self.lake.quarantine_dir().glob("*.reason.json"))}


@pytest.fixture()
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def outcome(result: dg.ExecuteInProcessResult) -> dict:
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "landing_contract"
    return {"passed": evaluation.passed, "description": evaluation.description,
            **{k: v.value for k, v in evaluation.metadata.items()}}


def test_bootstrap_creates_each_table_from_its_source_once(tmp_path, instance):
    env = Env(tmp_path, instance)
    result = env.run()
    assert result.success
    for table, source in (("patients", env.source_patients), ("visits", env.source_visits)):
        assert env.lake.real_table_head(table) == 0
        assert env.lake.read_real(0, table).equals(source)
        (entry,) = env.lake.real_ledger(table).values()
        assert entry["kind"] == "source" and entry["rows"] == str(source.height)
    assert not (env.lake.real_dir() / "table").exists()  # the flat table is not made
    again = ensure_dataset_tables(env.lake, env.config.data)
    assert again["bootstrapped"] is False and again["table_versions"] == {"patients": 0, "visits": 0}

    # a changed source under an existing table: refused, naming the table and its source
    env.source_visits.head(50).write_parquet(env.src_v)
    with pytest.raises(dg.Failure, match=r"table 'visits'.*visits\.parquet.*landing/visits/"):
        ensure_dataset_tables(env.lake, env.config.data)


def test_duplicate_keys_or_orphans_in_a_source_are_refused_and_nothing_is_created(tmp_path, instance):
    dup = patients([0, 1, 2, 3, 3, 5, 6, 7, 8, 9], 0)
    env = Env(tmp_path, instance, source_patients=dup,
              source_visits=visits(range(10), [0, 1, 2, 3, 5, 6, 7, 8, 9, 9], 1))
    with pytest.raises(dg.Failure, match=r"table 'patients'.*'patient_id'.*\[3\]") as info:
        ensure_dataset_tables(env.lake, env.config.data)
    assert "no real table was created" in str(info.value)
    assert env.lake.real_table_head("patients") is None and env.lake.real_table_head("visits") is None

    (tmp_path / "o").mkdir()
    orphaned = Env(tmp_path / "o", instance, source_patients=patients(range(10), 0),
                   source_visits=visits(range(4), [0, 1, 42, 43], 1))
    with pytest.raises(dg.Failure, match=r"table 'visits'.*'patient_id'.*\[42, 43\]"):
        ensure_dataset_tables(orphaned.lake, orphaned.config.data)
    assert orphaned.lake.real_table_head("patients") is None and orphaned.lake.real_table_head("visits") is None


def test_child_file_with_orphans_waits_then_is_accepted_once_its_parents_land(tmp_path, instance):
    env = Env(tmp_path, instance)
    assert env.run().success
    child = env.land("visits", "new_visits.csv", visits(range(100, 110), [3, 4, 30, 31, 31, 32, 5, 6, 30, 7], 2))
    waiting = outcome(env.run(child))
    assert waiting["passed"] and waiting["status"] == "waiting"
    assert waiting["orphan_rows"] == 5 and waiting["missing_parent_keys"] == [30, 31, 32]
    assert "waits for its parent rows until" in waiting["description"]
    first = datetime.fromisoformat(json.loads(waiting_file(env.lake, "visits", child.name).read_text())["first_seen"])
    assert datetime.fromisoformat(waiting["wait_until"]) == first + timedelta(hours=24)
    assert child.exists() and env.lake.real_table_head("visits") == 0  # untouched, nothing appended

    parent = env.land("patients", "new_patients.csv", patients(range(30, 40), 3))
    accepted = outcome(env.run(parent))
    assert accepted["passed"] and accepted["status"] == "accepted" and env.lake.real_table_head("patients") == 1

    again = outcome(env.run(child))
    assert again["status"] == "accepted" and again["real_table_version"] == 1
    assert not child.exists() and Path(again["archive"]).exists()
    assert env.lake.read_real(table="visits").height == 70
    assert not waiting_file(env.lake, "visits", child.name).exists()
    assert {e["file"] for e in env.lake.real_ledger("visits").values()} == {"visits.parquet", "new_visits.csv"}


def test_child_file_with_orphans_past_its_wait_is_quarantined_as_orphan(tmp_path, instance):
    env = Env(tmp_path, instance, wait_hours=24)
    ensure_dataset_tables(env.lake, env.config.data)
    log = dg.get_dagster_logger("test")
    child = env.land("visits", "late.csv", visits(range(200, 205), [1, 2, 99, 3, 4], 4))
    t0 = datetime(2030, 1, 1, tzinfo=timezone.utc)
    first = ingest_dataset_file(log, child, "visits", env.lake, env.gx, env.config, now=t0)
    assert first["status"] == "waiting" and first["missing_parent_keys"] == [99]
    still = ingest_dataset_file(log, child, "visits", env.lake, env.gx, env.config, now=t0 + timedelta(hours=23))
    assert still["status"] == "waiting" and still["first_seen"] == t0.isoformat()  # counted from the first sighting
    assert child.exists()

    late = ingest_dataset_file(log, child, "visits", env.lake, env.gx, env.config, now=t0 + timedelta(hours=25))
    assert late["status"] == "quarantined" and not child.exists()
    reason = env.reasons()["late.csv"]
    assert reason["table"] == "visits" and reason["orphan_rows"] == 1
    (problem,) = reason["reasons"]
    assert problem["code"] == "orphan" and problem["column"] == "patient_id" and problem["observed"] == [99]
    assert "[99]" in problem["detail"] and "waited 24 h" in problem["detail"]
    assert Path(reason["quarantined_file"]).exists()
    assert not waiting_file(env.lake, "visits", "late.csv").exists()
    assert env.lake.real_table_head("visits") == 0


def test_duplicate_primary_keys_in_a_file_or_against_the_table_are_quarantined(tmp_path, instance):
    env = Env(tmp_path, instance)
    assert env.run().success
    within = env.land("patients", "twice.csv", patients([40, 41, 41, 42], 5))
    result = outcome(env.run(within))
    assert not result["passed"] and result["status"] == "quarantined"
    against = env.land("patients", "again.csv", patients([50, 3, 51], 6))
    assert outcome(env.run(against))["status"] == "quarantined"
    reasons = env.reasons()
    ((p1,), (p2,)) = reasons["twice.csv"]["reasons"], reasons["again.csv"]["reasons"]
    assert p1["code"] == "duplicate_key" and p1["column"] == "patient_id" and p1["observed"] == [41]
    assert "more than once in the file" in p1["detail"] and "'patients'" in p1["detail"]
    assert p2["code"] == "duplicate_key" and p2["observed"] == [3] and "already in the accepted table" in p2["detail"]
    assert env.lake.real_table_head("patients") == 0

    # the same bytes as an accepted file: duplicate_file
    good = patients(range(60, 65), 7)
    assert outcome(env.run(env.land("patients", "p1.csv", good)))["status"] == "accepted"
    assert outcome(env.run(env.land("patients", "p1_again.csv", good)))["status"] == "quarantined"
    assert env.reasons()["p1_again.csv"]["reasons"][0]["code"] == "duplicate_file"


def test_a_crash_between_commit_and_move_is_finished_without_a_second_append(tmp_path, instance, monkeypatch):
    env = Env(tmp_path, instance)
    ensure_dataset_tables(env.lake, env.config.data)
    log = dg.get_dagster_logger("test")
    landed = env.land("patients", "p.csv", patients(range(80, 85), 13))

    def killed(src, dst):
        raise KeyboardInterrupt("killed after the commit")

    monkeypatch.setattr(dataset_ingest, "_move", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest_dataset_file(log, landed, "patients", env.lake, env.gx, env.config)
    assert env.lake.real_table_head("patients") == 1 and landed.exists()  # committed, still in landing
    monkeypatch.undo()
    again = ingest_dataset_file(log, landed, "patients", env.lake, env.gx, env.config)
    assert again["status"] == "accepted" and again.get("recovered") is True and again["version"] == 1
    assert env.lake.real_table_head("patients") == 1 and not landed.exists() and Path(again["archive"]).exists()


def test_file_outside_a_table_folder_is_quarantined_as_unknown_table(tmp_path, instance):
    env = Env(tmp_path, instance)
    rootfile = env.land(None, "patients.csv", patients(range(70, 75), 8))
    typo = env.land("patient", "more.csv", patients(range(75, 80), 9))
    for path in (rootfile, typo):
        result = outcome(env.run(path))
        assert not result["passed"] and result["status"] == "quarantined" and not path.exists()
    reasons = env.reasons()
    for name, folder in (("patients.csv", "landing"), ("more.csv", "patient")):
        (problem,) = reasons[name]["reasons"]
        assert problem["code"] == "unknown_table" and reasons[name]["folder"] == folder
        assert "['patients', 'visits']" in problem["detail"] and "landing/<table>/<file>" in problem["detail"]
    assert env.lake.real_table_head("patients") == 0  # the tables were made, nothing appended


def test_sensor_asks_again_for_a_waiting_file_when_a_table_changes_and_not_otherwise(tmp_path, instance):
    env = Env(tmp_path, instance, max_attempts=1)  # a waiting file's re-requests are not attempts
    assert env.run().success
    child = env.land("visits", "v.csv", visits(range(300, 304), [1, 33, 34, 2], 10))
    assert env.tick() == []  # first look
    (request,) = env.tick()
    assert request.tags["landed_file"] == "visits/v.csv" and request.tags[ATTEMPT_TAG] == "1"
    assert outcome(env.run(request=request))["status"] == "waiting"
    for _ in range(3):
        assert env.tick() == []  # no table changed, the wait is not over: not asked for again
    assert child.exists()

    parent = env.land("patients", "p.csv", patients([33, 34], 11))
    assert env.tick() == []
    (request,) = env.tick()  # the parent file alone: the child is not asked for while no table has changed
    assert request.tags["landed_file"] == "patients/p.csv"
    assert outcome(env.run(request=request))["status"] == "accepted" and not parent.exists()

    requests = env.tick()
    assert [r.tags["landed_file"] for r in requests] == ["visits/v.csv"]  # once, in this tick
    assert requests[0].tags[REQUEST_AGAIN_TAG] == "tables_changed" and requests[0].tags[ATTEMPT_TAG] == "1"
    assert outcome(env.run(request=requests[0]))["status"] == "accepted" and not child.exists()
    assert env.tick() == [] and LandingCursor.parse(env.cursor).requested == {}


def test_sensor_asks_again_once_the_wait_is_over(tmp_path, instance):
    env = Env(tmp_path, instance, wait_hours=1 / 3600)  # a one-second wait
    assert env.run().success
    env.land("visits", "v.csv", visits(range(400, 403), [1, 77, 2], 12))
    env.tick()
    (request,) = env.tick()
    waited = outcome(env.run(request=request))
    assert waited["status"] == "waiting"
    time.sleep(max(0.0, (datetime.fromisoformat(waited["wait_until"]) - datetime.now(timezone.utc)).total_seconds())
               + 0.1)
    (request,) = env.tick()
    assert request.tags[REQUEST_AGAIN_TAG] == "wait_over"
    assert outcome(env.run(request=request))["status"] == "quarantined"
    assert env.reasons()["v.csv"]["reasons"][0]["code"] == "orphan"
    assert env.tick() == []


def test_flat_sensor_refuses_tables_without_a_lake(tmp_path):
    job = dg.define_asset_job("j", selection=dg.AssetSelection.assets("real_ingest"))
    with pytest.raises(ValueError, match="needs lake="):
        build_landing_sensor(job, tmp_path, tables=["patients"])
