"""Observe mode through the whole graph (`studies[].gate_mode: observe`): the gate scores every batch but does not
guard the chain, and what it made stays apart. A real Dagster instance, a real MLflow store, real files.

- the chain goes on past a refused batch (generation 1 learns from a batch the gate refused);
- its batches are marked observed, in their lineage and in the UI's metadata;
- a batch it made that the gate approved still moves no approved alias, and no observed batch can be read as
  approved for training (`require_approved`), whatever its verdict;
- a blocking study beside it is unaffected: its approved generator gets the alias.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from assets.registry import APPROVED_ALIAS, registered_model_name
from ouroboros.config import PipelineConfig
from ouroboros.verdict import GateRefusal, require_approved
from resources.lake import LakeResource
from tests.test_refusal_outcome import executed, made
from tests.wiring import WIRING_GATE, approved


def config_for(source: Path) -> PipelineConfig:
    return PipelineConfig.model_validate({
        "data": {"source": str(source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [{"name": "guarded", "family": "copula", "policy": "replace", "generations": 1},
                    # a broken family the gate refuses at every generation: observed, the chain still goes on
                    {"name": "watched", "family": "shrunk", "policy": "replace", "generations": 3,
                     "gate_mode": "observe"},
                    # a family the (wiring) gate approves: observed, so its approval moves no alias
                    {"name": "watched_ok", "family": "copula", "policy": "replace", "generations": 1,
                     "gate_mode": "observe"}],
        "training": {"study": "guarded"},
        "downstream": {"epochs": 1},
        "gate": WIRING_GATE,
    })


@pytest.fixture(scope="module")
def observed_run(tmp_path_factory, small_demo):
    with executed(tmp_path_factory.mktemp("observe"), small_demo, config_for) as (_, _, result, settings):
        yield result, settings


def batch_event(result, key: str):
    return [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key][-1]


def fingerprint_of(result, key: str) -> str:
    return batch_event(result, key).materialization.metadata["fingerprint"].value


def verdicts(result, study: str) -> dict[int, bool]:
    """Generation -> whether every blocking check approved its batch."""
    out: dict[int, bool] = {}
    for e in result.get_asset_check_evaluations():
        key = e.asset_key.to_user_string()
        if key.startswith(f"{study}/batch_g"):
            k = int(key.rsplit("_g", 1)[1])
            out[k] = out.get(k, True) and approved(e)
    return out


def test_an_observed_chain_goes_on_past_refused_batches(observed_run):
    result, _ = observed_run
    assert result.success
    seen = verdicts(result, "watched")
    assert seen == {0: False, 1: False, 2: False}  # the gate refused every batch of the broken family...
    # ...and every generation was made all the same, each learning from the refused batch before it
    assert {f"watched/generator_g{k}" for k in range(3)} | {f"watched/batch_g{k}" for k in range(3)} <= made(result)


def test_observed_batches_are_marked_in_lineage_and_ui(observed_run):
    result, settings = observed_run
    lake = LakeResource(root=str(settings.lake))
    for k in range(3):
        key = f"watched/batch_g{k}"
        assert "observe mode" in batch_event(result, key).materialization.metadata["observed"].value
        assert lake.read_lineage(key, fingerprint_of(result, key))["observed"] is True
    assert "observed" not in batch_event(result, "guarded/batch_g0").materialization.metadata
    assert lake.read_lineage("guarded/batch_g0", fingerprint_of(result, "guarded/batch_g0"))["observed"] is False


def test_an_observed_approval_moves_no_alias_and_never_feeds_training(observed_run):
    result, settings = observed_run
    assert verdicts(result, "watched_ok") == {0: True}  # the gate approved this observed batch
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient(settings.mlflow_tracking_uri)
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias(registered_model_name("watched_ok"), APPROVED_ALIAS)
    # the blocking study beside it got its alias
    assert client.get_model_version_by_alias(registered_model_name("guarded"), APPROVED_ALIAS).version
    lake = LakeResource(root=str(settings.lake))
    verdict = lake.read_verdict("watched_ok/batch_g0", fingerprint_of(result, "watched_ok/batch_g0"))
    assert verdict.passed and verdict.observed
    with pytest.raises(GateRefusal, match="observe"):
        require_approved(verdict)
