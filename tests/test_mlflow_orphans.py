"""A step killed inside its MLflow run (SIGKILL: no `finally`) leaves the run RUNNING; the next run of the
project marks it KILLED with a tag saying why. Runs of a live process, of another host, or without the
process tag are left RUNNING: only a run whose opener is known to be gone is closed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from resources import MlflowResource
from resources.mlflow_tracking import ORPHAN_TAG, PROCESS_TAG, process_tag

ROOT = Path(__file__).resolve().parents[1]

KILLED_STEP = textwrap.dedent("""
    import os, signal
    from resources import MlflowResource
    resource = MlflowResource(tracking_uri={tracking!r}, artifact_root={artifacts!r})
    with resource.run("killed_step") as run:
        print(run.info.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.fixture()
def resource(tmp_path: Path) -> MlflowResource:
    store = tmp_path / "store"
    return MlflowResource(tracking_uri=f"sqlite:///{store / 'mlflow.db'}", artifact_root=str(store / "artifacts"))


def test_a_killed_steps_run_is_marked_killed_by_the_next_run(resource: MlflowResource):
    script = KILLED_STEP.format(tracking=resource.tracking_uri, artifacts=resource.artifact_root)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    orphan = done.stdout.split()[-1]
    client = resource.client()
    assert client.get_run(orphan).info.status == "RUNNING"  # what SIGKILL leaves behind

    experiment = client.get_experiment_by_name(resource.experiment).experiment_id
    # runs that must survive: this (live) process's, another host's, and one without the tag
    alive = client.create_run(experiment, tags={PROCESS_TAG: process_tag()}).info.run_id
    elsewhere = client.create_run(experiment, tags={PROCESS_TAG: "some-other-pod:1:123"}).info.run_id
    untagged = client.create_run(experiment).info.run_id

    with resource.run("next_step") as run:
        pass
    killed = client.get_run(orphan)
    assert killed.info.status == "KILLED"
    note = killed.data.tags[ORPHAN_TAG]
    assert "is gone" in note and "'next_step'" in note and done.stdout.split()[-1] == orphan
    for run_id in (alive, elsewhere, untagged):
        assert client.get_run(run_id).info.status == "RUNNING", run_id
        assert ORPHAN_TAG not in client.get_run(run_id).data.tags
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_a_reused_pid_is_still_an_orphan(resource: MlflowResource):
    """The tag records the process's start time: a live process that got the dead one's pid is not its opener."""
    from resources.mlflow_tracking import orphaned

    host, pid, start = process_tag().rsplit(":", 2)
    assert orphaned(f"{host}:{pid}:{start}") is None
    assert "another process" in orphaned(f"{host}:{pid}:{int(start) - 1}")
    assert orphaned(f"other-{host}:{pid}:{int(start) - 1}") is None
