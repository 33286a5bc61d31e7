"""A refusal is an outcome, not a crash: the run that the gate refuses a batch in succeeds, with no failed step,
and the refused batch's descendants are never materialised, neither in that run nor in a later run that selects
only them. The block is the stored verdict, not Dagster's failed step."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from ouroboros.config import PipelineConfig
from pipelines.definitions import PIPELINE_JOB, build_definitions
from pipelines.run import refusals
from pipelines.settings import Settings
from tests.wiring import WIRING_GATE

DESCENDANTS = ["broken/generator_g1", "broken/batch_g1", "broken/generator_g2", "broken/batch_g2"]


def settings_for(tmp_path: Path) -> Settings:
    lake = tmp_path / "lake"
    return Settings(config_path=tmp_path / "ouroboros.yaml", lake=lake,
                    mlflow_tracking_uri=f"sqlite:///{lake / 'mlflow.db'}", mlflow_artifacts=lake / "mlartifacts",
                    gx_root=lake / "gx", landing=lake / "landing")


def config_for(source: Path) -> PipelineConfig:
    return PipelineConfig.model_validate({
        "data": {"source": str(source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [{"name": "good", "family": "copula", "policy": "replace", "generations": 1},
                    {"name": "broken", "family": "shrunk", "policy": "replace", "generations": 3}],
        "training": {"study": "good"},
        "downstream": {"epochs": 1},
        "gate": WIRING_GATE,
    })


def made(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def judged(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_check_evaluations()}


@contextmanager
def executed(tmp_path: Path, demo, make_config):
    """The whole pipeline job on `demo` under `make_config(source)`, on a test instance kept open while in use:
    yields (defs, instance, result, settings)."""
    source = tmp_path / "real.parquet"
    demo.write_parquet(source)
    settings = settings_for(tmp_path)
    defs = build_definitions(make_config(source), settings)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, raise_on_error=False)
        yield defs, instance, result, settings


@pytest.fixture(scope="module")
def refused_run(tmp_path_factory, small_demo):
    with executed(tmp_path_factory.mktemp("refusal"), small_demo, config_for) as run:
        yield run


def test_the_refusing_run_succeeds_and_logs_one_line_per_refusal(refused_run):
    _, instance, result, _ = refused_run
    assert result.success, [str(e.event_specific_data.error)[:300] for e in result.all_events if e.is_failure]
    assert not [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    refused = refusals(result)
    assert refused and {r["batch"] for r in refused} == {"broken/batch_g0"}
    lines = [entry.user_message for entry in instance.all_logs(result.run_id)
             if entry.user_message.startswith("REFUSED ")]
    # one line per refusing check, naming the batch, the check and an indicator
    assert sorted(lines) == sorted(set(lines)) and len(lines) == len(refused)
    assert all(line.startswith("REFUSED broken/batch_g0 by ") for line in lines)
    assert any(line.startswith("REFUSED broken/batch_g0 by contract: ") for line in lines)
    # the approved chain went on to training in the same run
    assert {"good/batch_g0", "training_set", "downstream_model"} <= made(result)


def test_no_descendant_of_a_refused_batch_is_made_in_that_run(refused_run):
    _, _, result, settings = refused_run
    assert "broken/batch_g0" in made(result)  # the refused batch itself is kept: the report shows it
    assert not set(DESCENDANTS) & made(result)
    assert not set(DESCENDANTS) & judged(result)
    assert not (settings.lake / "assets" / "broken" / "generator_g1.json").exists()


def test_a_later_run_selecting_only_the_descendants_makes_none_of_them(refused_run):
    defs, instance, _, settings = refused_run
    later = dg.materialize([a for a in defs.assets if isinstance(a, dg.AssetsDefinition)],
                           selection=dg.AssetSelection.assets(*[k.split("/") for k in DESCENDANTS]),
                           instance=instance, resources=defs.resources, raise_on_error=False)
    assert later.success  # still an outcome: nothing crashed
    assert not set(DESCENDANTS) & made(later)
    skipped = {e.step_key for e in later.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert {"broken__batch_g1", "broken__generator_g2", "broken__batch_g2"} <= skipped
    assert not (settings.lake / "assets" / "broken" / "batch_g1.parquet").exists()
    # and generation 1 alone, on its own, is not made either
    alone = dg.materialize([a for a in defs.assets if isinstance(a, dg.AssetsDefinition)],
                           selection=dg.AssetSelection.assets(["broken", "generator_g1"]), instance=instance,
                           resources=defs.resources, raise_on_error=False)
    assert alone.success and not made(alone)


def test_a_refusal_is_recorded_for_its_own_notification(refused_run):
    from pipelines.sensors import refusal_records

    _, instance, result, _ = refused_run
    records = refusal_records(instance.get_run_by_id(result.run_id), instance)
    assert {r["asset"] for r in records} == {"broken/batch_g0"}
    # alert_on_failure is a run-failure sensor and this run succeeded: it has nothing to fire on
    assert result.success


def test_refusal_notifications_switch_off(tmp_path, small_demo):
    source = tmp_path / "real.parquet"
    small_demo.write_parquet(source)
    env = {"OUROBOROS_LAKE": str(tmp_path / "lake")}
    on = build_definitions(config_for(source), Settings.from_env(env))
    off = build_definitions(config_for(source), Settings.from_env({**env, "OUROBOROS_REFUSAL_ALERTS": "off"}))
    names = lambda d: {s.name for s in d.sensors}  # noqa: E731
    assert "notify_on_refusal" in names(on) and "notify_on_refusal" not in names(off)
    assert "alert_on_failure" in names(off)
    with pytest.raises(ValueError, match="OUROBOROS_REFUSAL_ALERTS='maybe'"):
        Settings.from_env({**env, "OUROBOROS_REFUSAL_ALERTS": "maybe"})
