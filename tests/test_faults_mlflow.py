"""Fault injection on the production stack: the MLflow tracking server is stopped in the middle of a run.

The generator step of a prepared lake runs in a subprocess on the stack profile; once its MLflow run is open and
the generator fitted, just before the model upload, the server is stopped (`bin/stack stop-mlflow`, a real
outage: the process group is terminated). The step must fail fast (the profile bounds the client's retries)
with an error that names the tracking URI; the lake must show nothing half-written (no temp file, the
generator's stored record is the previous one, byte for byte, and what the generator folder holds loads whole);
after `bin/stack up` restarts the server, a rerun completes and its MLflow run is FINISHED.

Runs only with the profile: `bin/stack up && OUROBOROS_PROFILE=stack bin/test -m stack`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from mlflow import MlflowClient

from ouroboros.generators import load
from pipelines.settings import Settings
from resources.lake import LakeResource, is_temp
from tests.faultrun import materialize
from tests.wiring import WIRING_GATE

pytestmark = [
    pytest.mark.stack,
    pytest.mark.faults,
    pytest.mark.skipif(os.environ.get("OUROBOROS_PROFILE") != "stack",
                       reason="needs the production stack: bin/stack up, then OUROBOROS_PROFILE=stack bin/test -m stack"),
]

ROOT = Path(__file__).resolve().parents[1]
STUDY, ROWS = "mlflow_outage", 200
GENERATOR = f"{STUDY}/generator_g0"
REAL = ["real_ingest", "real_data", "real_train", "real_holdout", "real_contract"]

# the step process: stop the server when the generator is fitted and saved, right before its model upload
DRIVER = textwrap.dedent("""
    import json, subprocess, sys, time
    import dagster as dg
    from pipelines.settings import Settings
    from resources.mlflow_tracking import MlflowResource
    from tests.faultrun import materialize

    original = MlflowResource.log_generator
    def log_generator(self, *args, **kwargs):
        subprocess.run([{stack!r}, "stop-mlflow"], check=True, capture_output=True)
        print("SERVER STOPPED", file=sys.stderr, flush=True)
        return original(self, *args, **kwargs)
    MlflowResource.log_generator = log_generator

    start = time.monotonic()
    with dg.instance_for_test() as instance:
        result = materialize({{"assets": [{asset!r}]}}, Settings.from_env(), instance)
        failures = [e.event_specific_data.error for e in result.all_events if e.is_step_failure]
    def chain(error):
        return [] if error is None else [error.message, *chain(error.cause)]
    print(json.dumps({{"success": result.success, "seconds": time.monotonic() - start,
                      "errors": [m for f in failures for m in chain(f)]}}))
""")


def stack(command: str) -> None:
    subprocess.run([str(ROOT / "bin" / "stack"), command], cwd=ROOT, check=True, capture_output=True, timeout=300)


@pytest.fixture()
def prepared(tmp_path: Path, small_demo: pl.DataFrame) -> dict:
    """A lake with the real table, its split and contract, and generation 0's generator, on the stack's MLflow."""
    small_demo.write_parquet(tmp_path / "real.parquet")
    (tmp_path / "ouroboros.yaml").write_text(yaml.safe_dump({
        "data": {"source": str(tmp_path / "real.parquet"), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [{"name": STUDY, "family": "copula", "policy": "replace", "generations": 1, "rows": ROWS}],
        "downstream": {"epochs": 1},
        "landing": {"settle_seconds": 0},
        "gate": WIRING_GATE,
    }))
    env = {**os.environ, "OUROBOROS_CONFIG": str(tmp_path / "ouroboros.yaml"), "OUROBOROS_LAKE": str(tmp_path / "lake")}
    with dg.instance_for_test() as instance:
        assert materialize({"assets": [*REAL, GENERATOR]}, Settings.from_env(env), instance).success
    return {"env": env, "lake": LakeResource(root=str(tmp_path / "lake"))}


def test_tracking_server_stopped_mid_run_fails_clearly_and_the_rerun_completes(prepared: dict):
    env, lake = prepared["env"], prepared["lake"]
    record_file = lake.path / "assets" / STUDY / "generator_g0.json"
    before = record_file.read_bytes()
    uri = env["MLFLOW_TRACKING_URI"]
    script = DRIVER.format(stack=str(ROOT / "bin" / "stack"), asset=GENERATOR)
    try:
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
                              env={**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
        assert "SERVER STOPPED" in done.stderr, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        # the step failed, quickly, and says which server did not answer and what to do
        assert not out["success"] and out["seconds"] < 180, out
        text = "\n".join(out["errors"])
        assert f"MLflow tracking server {uri} did not answer" in text and "bin/stack up" in text, text[-2000:]
    finally:
        stack("up")  # restart the server whatever happened: the other stack tests need it

    # nothing half-written: no temp file anywhere, the stored record is the previous one, the folder loads whole
    assert sorted(p for p in lake.path.rglob(".*") if is_temp(p.name)) == []
    assert record_file.read_bytes() == before
    assert load(lake.generator_dir(STUDY, 0)).sample(5, seed=1).height == 5

    with dg.instance_for_test() as instance:
        result = materialize({"assets": [GENERATOR]}, Settings.from_env(env), instance)
    assert result.success
    record = json.loads(record_file.read_text())
    assert record["mlflow_run_id"] != json.loads(before)["mlflow_run_id"]
    assert MlflowClient(tracking_uri=uri).get_run(record["mlflow_run_id"]).info.status == "FINISHED"
