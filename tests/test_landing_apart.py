"""Landing never waits behind training (issue 22): ten files dropped at once are each triaged by a short
ingest_job run, and retrain_on_new_data then asks for exactly one production_job run, for the newest real
table version. A real Dagster instance, real files, the real sensors; production_job itself is not run here
(tests/test_landing.py runs it)."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import time

import dagster as dg
import polars as pl
from dagster import DagsterRun
from polars.testing import assert_frame_equal

from pipelines.definitions import INGEST_JOB, PRODUCTION_JOB
from tests.test_landing import Env, instance  # noqa: F401 - the fixture

# the bound we state: a file is taken on its second sensor look (LANDING_TICK_SECONDS apart in the daemon), then
# its ingest run takes seconds; here, with ticks back to back, each file's ingest run must end within this
INGEST_SECONDS_BOUND = 20.0


def csv_bytes(df: pl.DataFrame, **kw) -> bytes:
    buf = io.BytesIO()
    df.write_csv(buf, **kw)
    return buf.getvalue()


def retrain_tick(env: Env, cursor: str | None):
    sensor = env.defs.resolve_sensor_def("retrain_on_new_data")
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=env.instance, cursor=cursor, definitions=env.defs))
    return list(data.run_requests or []), data.cursor, data.skip_message


def test_ten_files_at_once_are_all_triaged_and_give_one_retrain(tmp_path, instance):  # noqa: F811
    env = Env(tmp_path, instance)
    fresh = env.fresh
    good_a, good_b, reordered = fresh.slice(0, 40), fresh.slice(40, 30), fresh.slice(70, 25)
    env.land_bytes("good_a.csv", csv_bytes(good_a), good_a.height)
    env.land_bytes("good_b.csv", csv_bytes(good_b), good_b.height)
    env.land_bytes("reordered.csv", csv_bytes(reordered.select(reversed(reordered.columns))), reordered.height)
    env.land_bytes("good_a_again.csv", csv_bytes(good_a), good_a.height)  # the same bytes under another name
    env.land_frame("more.parquet", fresh.slice(95, 20))
    env.land_bytes("zipped.csv.gz", gzip.compress(csv_bytes(fresh.slice(115, 15))), 15)
    env.land_bytes("semicolon.csv", csv_bytes(fresh.slice(130, 10), separator=";"), 10)
    env.land_bytes("header_only.csv", csv_bytes(fresh.slice(0, 0)), 0)
    env.land_bytes("utf16.csv", ("\ufeff" + fresh.slice(140, 12).write_csv()).encode("utf-16-le"), 12)
    env.land_bytes("notes.txt", b"these are not rows\n", None)
    landed = set(env.landed_rows)
    assert len(landed) == 10

    # nothing ingested yet: the retrain sensor has no table version to train on
    requests, cursor, skip = retrain_tick(env, None)
    assert requests == [] and "no recorded real table version" in skip

    ingests = env.tick() + env.tick()  # a file is taken when two looks agree
    assert sorted(r.tags["landed_file"] for r in ingests) == sorted(landed)  # every file, the .txt included
    sensor = env.defs.resolve_sensor_def("landing_sensor")
    assert sensor.job_name == INGEST_JOB
    job = env.defs.resolve_job_def(INGEST_JOB)
    assert {n.name for n in job.graph.nodes} == {"real_ingest"}  # triage only: no training in the ingest run
    results, slowest = [], 0.0
    for request in ingests:
        started = time.perf_counter()
        results.append(job.execute_in_process(
            run_config=request.run_config, instance=env.instance, raise_on_error=False,
            tags={**job.tags, **request.tags, "dagster/run_key": request.run_key}))
        slowest = max(slowest, time.perf_counter() - started)
    print(f"\n10 files: slowest ingest run {slowest:.2f} s")
    assert slowest < INGEST_SECONDS_BOUND
    assert env.tick() == [] and env.tick() == []  # none asked for twice

    # every file left landing: accepted into the table, or quarantined beside a reason
    assert not [p.name for p in env.landing.iterdir() if not p.name.startswith(".")]
    accepted, reasons = env.accepted(), env.reasons()
    assert set(accepted) | set(reasons) == landed and not set(accepted) & set(reasons)
    assert set(accepted) == {"good_a.csv", "good_b.csv", "reordered.csv", "more.parquet", "zipped.csv.gz",
                             "utf16.csv"}, {n: r["summary"] for n, r in reasons.items()}
    codes = {n: {p["code"] for p in r["reasons"]} for n, r in reasons.items()}
    assert "duplicate_file" in codes["good_a_again.csv"]
    assert "wrong_delimiter" in codes["semicolon.csv"]
    assert "unsupported_format" in codes["notes.txt"]
    assert codes["header_only.csv"]  # no rows: refused with a reason, never appended as an empty commit
    for r in reasons.values():
        assert r["summary"] and (env.lake.quarantine_dir() / (r["quarantined_file"].split("/")[-1])).exists()

    # rows add up: every accepted file's rows are in the table once, nothing else was added
    table = env.lake.read_real()
    assert table.height == env.source_df.height + sum(env.landed_rows[n] for n in accepted)
    assert sum(int(e["rows"]) for e in accepted.values()) == table.height - env.source_df.height
    landed_rows = pl.concat([good_a, good_b, reordered, fresh.slice(95, 20), fresh.slice(115, 15),
                             fresh.slice(140, 12)])
    # the same rows, each once (a Delta read keeps no row order; CSV round-trips floats to their printed
    # digits, hence not exact)
    expected = pl.concat([env.source_df, landed_rows.select(table.columns).cast(table.schema)])
    assert_frame_equal(table.sort(table.columns), expected.sort(table.columns), check_exact=False)
    version = env.lake.real_table_head()
    assert version == len(accepted)  # version 0 = data.source, one commit per accepted file

    # one retrain, for the newest version; not again on the next tick
    requests, cursor, _ = retrain_tick(env, cursor)
    [retrain] = requests
    assert retrain.run_key == f"real_table_v{version}"
    assert env.defs.resolve_sensor_def("retrain_on_new_data").job_name == PRODUCTION_JOB
    again, cursor, skip = retrain_tick(env, cursor)
    assert again == [] and "already requested" in skip


def test_retrain_waits_while_training_runs_then_takes_the_newest_version(tmp_path, instance):  # noqa: F811
    env = Env(tmp_path, instance)
    job = env.defs.resolve_job_def(INGEST_JOB)

    def ingest(name: str, df: pl.DataFrame) -> None:
        env.land_frame(name, df)
        for request in env.tick() + env.tick():
            assert job.execute_in_process(run_config=request.run_config, instance=env.instance,
                                          tags={**job.tags, **request.tags}).success

    ingest("a.parquet", env.fresh.slice(0, 10))
    # a training run is in flight (created and not finished): the new version waits for it
    production = env.defs.resolve_job_def(PRODUCTION_JOB)
    queued = env.instance.create_run_for_job(production, status=dg.DagsterRunStatus.NOT_STARTED)
    requests, cursor, skip = retrain_tick(env, None)
    assert requests == [] and queued.run_id in skip
    ingest("b.parquet", env.fresh.slice(10, 10))  # another file lands meanwhile
    env.instance.report_run_canceled(queued)  # the training run ends
    [retrain] = retrain_tick(env, cursor)[0]
    assert retrain.run_key == f"real_table_v{env.lake.real_table_head()}" == "real_table_v2"  # the newest only
    # once a training run has read a version (real_data materialised with it), nothing is asked for it
    env.instance.report_runless_asset_event(dg.AssetMaterialization(
        "real_data", metadata={"real_table_version": 2}))
    assert retrain_tick(env, None)[0] == []
    json.dumps(retrain.tags)  # plain tags: the daemon stores them


def test_the_run_queue_lets_an_ingest_start_beside_a_training_run(tmp_path):
    """The repository's dagster.yaml (the embedded default bin/run and bin/ui use), read by Dagster, with the
    tags the jobs really carry: while a training run is in progress one ingest may start, a second ingest and
    a second training run wait. The tag part is Dagster's own counter (the queue daemon's); the slot count is
    max_concurrent_runs, as the daemon takes it."""
    from dagster._utils.tags import TagConcurrencyLimitsCounter  # the queue daemon's own counter

    from tests.test_landing import ROOT

    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as inst:
        queue = inst.get_concurrency_config().run_queue_config
    (tmp_path / "env").mkdir()
    env_defs = Env(tmp_path / "env", dg.DagsterInstance.ephemeral()).defs
    tags = {name: env_defs.resolve_job_def(name).tags for name in (INGEST_JOB, PRODUCTION_JOB, "ouroboros_pipeline")}

    def run(job: str) -> DagsterRun:
        return DagsterRun(job_name=job, tags=dict(tags[job]))

    in_progress = [run(PRODUCTION_JOB)]
    counter = TagConcurrencyLimitsCounter(queue.tag_concurrency_limits, in_progress)
    slots, launched = queue.max_concurrent_runs - len(in_progress), []
    for item in [run("ouroboros_pipeline"), run(INGEST_JOB), run(INGEST_JOB), run(PRODUCTION_JOB)]:
        if slots > 0 and not counter.is_blocked(item):
            counter.update_counters_with_launched_item(item)
            launched.append(item.job_name)
            slots -= 1
    assert launched == [INGEST_JOB]  # the ingest jumps the queued training; one ingest at a time
