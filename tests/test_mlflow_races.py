"""Several step processes writing to one MLflow store at once, as the multiprocess executor runs independent
studies side by side: each opens a store that has no tables yet, creates the experiment if missing and logs the
same real_train dataset at the same moment. On a real sqlite store, without the resource's handling, the later
writers fail: "table experiments already exists", or the datasets table's unique key (the latter seen in CI on
the Postgres-backed server, where the pipeline run failed with a RestException)."""

from __future__ import annotations

import multiprocessing

import mlflow
import mlflow.data
import pandas as pd
import pytest

from resources import MlflowResource
from resources.mlflow_tracking import log_dataset_input

WRITERS = 6


def _write(tracking_uri: str, artifacts: str, barrier, results) -> None:
    resource = MlflowResource(tracking_uri=tracking_uri, artifact_root=artifacts, experiment="race")
    try:
        barrier.wait(timeout=60)  # every writer looks the experiment up at once
        with resource.run("writer"):
            dataset = mlflow.data.from_pandas(pd.DataFrame({"x": range(50)}), name="real_train@v0")
            barrier.wait(timeout=60)  # and logs the one dataset at once
            log_dataset_input(dataset, context="real", tags={"rows": "50"})
        results.put("ok")
    except Exception as error:  # reported to the test, which names it
        results.put(repr(error)[:400])


@pytest.mark.parametrize("attempt", range(3))  # three times: the race is lost in most rounds, not in all
def test_processes_logging_one_dataset_at_once_all_succeed_and_share_one_dataset(tmp_path, attempt):
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # a fresh store: the writers also race to create its tables (the parent never opened it, so the forked
    # writers inherit no connection)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(WRITERS), context.Queue()
    writers = [context.Process(target=_write, args=(tracking_uri, str(tmp_path / "artifacts"), barrier,
                                                    results)) for _ in range(WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    outcomes = [results.get(timeout=5) for _ in writers]
    assert outcomes == ["ok"] * WRITERS, [o for o in outcomes if o != "ok"]

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiments = [e for e in client.search_experiments() if e.name == "race"]
    assert len(experiments) == 1
    runs = client.search_runs([experiments[0].experiment_id])
    assert len(runs) == WRITERS
    # each run names the one dataset (one row in the store, not one per writer)
    digests = {(i.dataset.name, i.dataset.digest) for run in runs for i in run.inputs.dataset_inputs}
    assert len(digests) == 1
    assert all(len(run.inputs.dataset_inputs) == 1 for run in runs)
