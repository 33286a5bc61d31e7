"""End to end on the production stack (`bin/stack up`): a small study materialised with the multiprocess
executor on the Postgres-backed Dagster instance, logging to the MLflow tracking server; then the runs and
check results are read back from Postgres, the MLflow runs, metrics and registry aliases through the server's
REST API, and the approved generator is loaded from the server and sampled in another folder.

Runs only with the profile: `bin/stack up && OUROBOROS_PROFILE=stack bin/test -m stack` (what .ci/run does).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import requests
import yaml

from tests.wiring import WIRING_GATE

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(os.environ.get("OUROBOROS_PROFILE") != "stack",
                       reason="needs the production stack: bin/stack up, then OUROBOROS_PROFILE=stack bin/test -m stack"),
]


def postgres(query: str, *args):
    import psycopg2

    env = os.environ
    with psycopg2.connect(host=env["OUROBOROS_PG_HOST"], port=int(env["OUROBOROS_PG_PORT"]),
                          user=env["OUROBOROS_PG_USER"], password=env["OUROBOROS_PG_PASSWORD"],
                          dbname=env["OUROBOROS_PG_DAGSTER_DB"]) as conn, conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall()


def credentials() -> tuple[str, str]:
    return os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]


def mlflow_api(method: str, endpoint: str, **kwargs) -> dict:
    response = requests.request(method, f"{os.environ['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/{endpoint}", timeout=60,
                                auth=credentials(), **kwargs)
    assert response.ok, f"{endpoint}: {response.status_code} {response.text[:500]}"
    return response.json()


@pytest.fixture(scope="module")
def stack_run(tmp_path_factory, small_demo: pl.DataFrame) -> dict:
    tmp = tmp_path_factory.mktemp("stack")
    source = tmp / "real.parquet"
    small_demo.write_parquet(source)
    # a fresh study name per run: the server and its registry outlive the test
    study = f"ci_{secrets.token_hex(3)}"
    config = {
        "data": {"source": str(source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        # two independent studies: the multiprocess executor trains them side by side
        "studies": [{"name": study, "family": "copula", "policy": "accumulate", "generations": 2},
                    {"name": f"{study}_g", "family": "copula", "policy": "replace", "generations": 1}],
        "training": {"study": study},
        "downstream": {"epochs": 2},
        # the wiring, not the copula's quality, is under test here (as in test_pipeline): the recalibrated gate
        # refuses the copula's joint structure on a table this small, so its three joint limits are off
        "gate": WIRING_GATE,
    }
    (tmp / "ouroboros.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "OUROBOROS_CONFIG": str(tmp / "ouroboros.yaml"), "OUROBOROS_LAKE": str(tmp / "lake")}
    done = subprocess.run([sys.executable, "-m", "pipelines.run"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1800)
    if done.returncode != 0:  # the whole tail, unabridged (an assertion's repr would cut the traceback short)
        pytest.fail(f"pipelines.run exited {done.returncode}\n--- stdout ---\n{done.stdout[-3000:]}\n"
                    f"--- stderr ---\n{done.stderr[-8000:]}", pytrace=False)
    run_id = re.search(r"Dagster run ([0-9a-f-]{36}): succeeded", done.stdout).group(1)
    return {"study": study, "run_id": run_id, "tmp": tmp}


def test_runs_and_check_results_are_in_postgres(stack_run):
    run_id = stack_run["run_id"]
    [(status,)] = postgres("select status from runs where run_id = %s", run_id)
    assert status == "SUCCESS"
    evaluations = [json.loads(e)["dagster_event"]["event_specific_data"] for (e,) in postgres(
        "select event from event_logs where run_id = %s and dagster_event_type = 'ASSET_CHECK_EVALUATION'", run_id)]
    batch_checks = [e for e in evaluations if e["asset_key"]["path"][-1].startswith("batch_g")]
    # four blocking checks on each of three batches, every one evaluated; none failed at ERROR severity (a WARN
    # is a soft limit, reported and approved), and the check executions are recorded in Postgres too
    assert len(batch_checks) == 12 and {e["check_name"] for e in batch_checks} == {"contract", "fidelity", "privacy",
                                                                                    "collapse"}
    assert all(e["success"] or e["severity"]["__enum__"].endswith("WARN") for e in batch_checks), batch_checks
    executions = postgres("select check_name from asset_check_executions where run_id = %s", run_id)
    assert len(executions) == len(evaluations)
    # steps ran in several processes (multiprocess executor), recorded in the Postgres event log
    events = postgres("select event from event_logs where run_id = %s and dagster_event_type = 'STEP_START'", run_id)
    assert len({json.loads(e)["dagster_event"]["pid"] for (e,) in events}) > 1


def test_mlflow_runs_metrics_and_registry_through_the_rest_api(stack_run):
    study, run_id = stack_run["study"], stack_run["run_id"]
    found = mlflow_api("POST", "runs/search", json={
        "experiment_ids": [mlflow_api("GET", "experiments/get-by-name",
                                      params={"experiment_name": "ouroboros"})["experiment"]["experiment_id"]],
        "filter": f"tags.dagster_run_id = '{run_id}'", "max_results": 100})["runs"]
    runs = {r["info"]["run_name"]: r for r in found}
    assert {f"{study}/gen_0", f"{study}/gen_1", f"{study}_g/gen_0", "downstream_model"} <= set(runs)
    gen0 = runs[f"{study}/gen_0"]
    metrics = {m["key"]: m["value"] for m in gen0["data"]["metrics"]}
    assert metrics["gate.contract.passed"] == 1.0 and "fit_seconds" in metrics
    # artifacts are proxied: the run's artifact root is the server's mlflow-artifacts URI, not a local path
    assert gen0["info"]["artifact_uri"].startswith("mlflow-artifacts:/")
    # dataset inputs: the real table version and the training pool
    inputs = {d["dataset"]["name"] for d in gen0["inputs"]["dataset_inputs"]}
    assert {"real_train@v0", f"{study}/pool_g0"} <= inputs

    approved = mlflow_api("GET", "registered-models/alias",
                          params={"name": f"ouroboros.{study}.generator", "alias": "approved"})["model_version"]
    assert approved["run_id"] == runs[f"{study}/gen_1"]["info"]["run_id"]
    champion = mlflow_api("GET", "registered-models/alias",
                          params={"name": "ouroboros.downstream_model", "alias": "champion"})["model_version"]
    assert champion["run_id"] == runs["downstream_model"]["info"]["run_id"]


def test_approved_generator_loads_from_the_server_and_samples(stack_run, tmp_path):
    uri = f"models:/ouroboros.{stack_run['study']}.generator@approved"
    script = ("import mlflow, pandas as pd; "
              f"df = mlflow.pyfunc.load_model({uri!r}).predict(pd.DataFrame({{'n': [50], 'seed': [1]}})); "
              "print(len(df), len(df.columns))")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path),
                               "MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"],
                               "MLFLOW_TRACKING_USERNAME": credentials()[0],
                               "MLFLOW_TRACKING_PASSWORD": credentials()[1]})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["50", str(len(pl.read_parquet(stack_run["tmp"] / "real.parquet").columns))]


def test_the_tracking_server_refuses_requests_without_credentials():
    """The production profile's MLflow server runs the basic-auth app: no user, or a wrong password, is a 401;
    the pipeline's own credentials (from the profile's environment) are accepted."""
    url = f"{os.environ['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/experiments/search"
    assert requests.get(url, params={"max_results": 1}, timeout=30).status_code == 401
    assert requests.get(url, params={"max_results": 1}, auth=(credentials()[0], "wrong"), timeout=30).status_code == 401
    assert requests.get(url, params={"max_results": 1}, auth=credentials(), timeout=30).status_code == 200
