"""Declarative automation of the chain (`automation.chain: eager`, issue 22's idioms), evaluated by Dagster's own
`evaluate_automation_conditions` on a real instance: after generation 0's batch is made and its blocking checks
pass, generation 1's generator is requested; after the gate refuses the batch (a failed check of severity WARN,
`verdict: refused`), it is not. Off (the default), no asset carries a condition and no automation sensor exists,
so bin/run's jobs and the weekly schedule behave as before."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from assets.common import batch_key, generator_key
from ouroboros.config import PipelineConfig, load_config
from pipelines.definitions import PIPELINE_JOB, TRAINING_TAG, build_definitions
from pipelines.settings import Settings
from tests.wiring import WIRING_GATE, approved

SENSOR = "default_automation_condition_sensor"


def settings_for(tmp_path: Path) -> Settings:
    lake = tmp_path / "lake"
    return Settings(config_path=tmp_path / "ouroboros.yaml", lake=lake,
                    mlflow_tracking_uri=f"sqlite:///{lake / 'mlflow.db'}", mlflow_artifacts=lake / "mlartifacts",
                    gx_root=lake / "gx", landing=lake / "landing")


def config_for(source: Path, automation: dict | None = None) -> PipelineConfig:
    """Two chains of two generations on the fast copula: `good` passes the wiring gate, `broken` (tests.wiring's
    `shrunk` copula) is refused at generation 0; an observe-mode chain of the broken family goes on."""
    return PipelineConfig.model_validate({
        "data": {"source": str(source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [{"name": "good", "family": "copula", "policy": "replace", "generations": 2, "rows": 300},
                    {"name": "broken", "family": "shrunk", "policy": "replace", "generations": 2, "rows": 300},
                    {"name": "watched", "family": "shrunk", "policy": "replace", "generations": 2, "rows": 300,
                     "gate_mode": "observe"}],
        "training": {"study": "good"},
        "downstream": {"epochs": 1},
        "gate": WIRING_GATE,
        **({"automation": automation} if automation is not None else {}),
    })


def conditioned(defs: dg.Definitions) -> dict[str, dg.AutomationCondition]:
    graph = defs.resolve_asset_graph()
    return {k.to_user_string(): graph.get(k).automation_condition for k in graph.materializable_asset_keys
            if graph.get(k).automation_condition is not None}


def labels(condition: dg.AutomationCondition) -> set[str]:
    """The labels in a condition's tree (eager, all_deps_blocking_checks_passed, ...)."""
    own = {condition.get_label()} - {None}
    return own.union(*(labels(c) for c in condition.children))


def test_off_by_default_no_condition_and_no_automation_sensor(tmp_path, small_demo):
    source = tmp_path / "real.parquet"
    small_demo.write_parquet(source)
    defs = build_definitions(config_for(source), settings_for(tmp_path))
    assert conditioned(defs) == {}
    assert SENSOR not in {s.name for s in defs.get_repository_def().sensor_defs}


def test_on_every_chain_asset_carries_the_condition_and_the_sensor_exists(tmp_path, small_demo):
    source = tmp_path / "real.parquet"
    small_demo.write_parquet(source)
    defs = build_definitions(config_for(source, {"chain": "eager"}), settings_for(tmp_path))
    chain = {key.to_user_string() for s in ("good", "broken", "watched") for k in range(2)
             for key in (generator_key(s, k), batch_key(s, k))}
    conditions = conditioned(defs)
    assert set(conditions) == chain  # the real assets, training and the report keep their jobs and sensors
    # a blocking chain's asset also waits on its parents' blocking checks; an observe-mode chain's does not
    assert all(labels(conditions[k]) >= {"eager", "all_deps_blocking_checks_passed"} for k in chain
               if not k.startswith("watched/"))
    assert all("all_deps_blocking_checks_passed" not in labels(conditions[k]) for k in chain
               if k.startswith("watched/"))
    sensor = next(s for s in defs.get_repository_def().sensor_defs if s.name == SENSOR)
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.run_tags == TRAINING_TAG  # its runs queue behind a training run like production_job's
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    # the hand-written jobs and the weekly schedule stay as they are
    assert {j.name for j in defs.resolve_all_job_defs()} >= {PIPELINE_JOB, "production_job", "ingest_job"}
    assert [s.name for s in defs.get_repository_def().schedule_defs] == ["weekly_pipeline"]


def test_a_bad_automation_setting_is_refused_and_yaml_off_reads_as_off(tmp_path):
    with pytest.raises(ValueError):
        PipelineConfig.model_validate({"data": {"source": "x.parquet", "target": "y"},
                                       "automation": {"chain": "sometimes"}})
    # YAML reads a bare `off` as false: `automation: {chain: off}` in ouroboros.yaml still means off
    path = tmp_path / "ouroboros.yaml"
    path.write_text("data: {source: x.parquet, target: y}\nautomation: {chain: off}\n")
    assert load_config(path).automation.chain == "off"


def requested(result) -> set[str]:
    return {r.key.to_user_string() for r in result.results if r.true_subset.size and isinstance(r.key, dg.AssetKey)}


def test_the_next_generation_is_requested_only_after_its_parent_batch_passed_the_gate(tmp_path, small_demo):
    source = tmp_path / "real.parquet"
    small_demo.write_parquet(source)
    defs = build_definitions(config_for(source, {"chain": "eager"}), settings_for(tmp_path))
    generation_0 = [key for s in ("good", "broken", "watched") for key in (generator_key(s, 0), batch_key(s, 0))]
    with dg.instance_for_test() as instance:
        # the daemon's first tick: nothing made yet, every chain waits on real_train
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert requested(tick) == set()
        # generation 0 of each chain, gated, as a run launched from the UI or a job would make it
        run = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
            instance=instance, raise_on_error=False,
            asset_selection=[dg.AssetKey(k) for k in ("real_ingest", "real_data", "real_train", "real_holdout",
                                                       "real_contract")] + generation_0)
        assert run.success
        verdicts = {}
        for evaluation in run.get_asset_check_evaluations():
            key = evaluation.asset_key.to_user_string()
            verdicts[key] = verdicts.get(key, True) and approved(evaluation)
        assert verdicts["good/batch_g0"] is True
        assert verdicts["broken/batch_g0"] is False and verdicts["watched/batch_g0"] is False
        refusals = [e for e in run.get_asset_check_evaluations()
                    if e.asset_key.to_user_string() == "broken/batch_g0" and not e.passed]
        assert refusals and all(e.severity == dg.AssetCheckSeverity.WARN for e in refusals)  # a refusal, no crash

        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        made_now = requested(tick)
        # (a) the approved batch's child is requested (with its own batch, in the same run request)
        assert "good/generator_g1" in made_now
        # (b) the refused batch's child is not: its parent's blocking checks did not pass
        assert "broken/generator_g1" not in made_now and "broken/batch_g1" not in made_now
        # observe mode does not stop the chain, under automation as in the jobs
        assert "watched/generator_g1" in made_now
        # generation 0, made in the same run as real_train, is not asked for again
        assert not {key.to_user_string() for key in generation_0} & made_now
        assert made_now <= {"good/generator_g1", "good/batch_g1", "watched/generator_g1", "watched/batch_g1"}

        # the next tick, nothing new happened: nothing is asked for twice, the refused chain still waits
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert "good/generator_g1" not in requested(tick)
        assert "broken/generator_g1" not in requested(tick)


@pytest.mark.parametrize("refused", [False, True])
def test_dagster_counts_a_failed_warn_blocking_check_as_not_passed(refused):
    """What the chain relies on, in isolation, so a Dagster upgrade that changed it fails here first: a blocking
    check that fails with severity WARN (how the gate refuses, assets/checks.py: gate_result) leaves
    all_deps_blocking_checks_passed() false; the same check passing makes it true."""

    @dg.asset(check_specs=[dg.AssetCheckSpec("gate", asset="parent", blocking=True)])
    def parent():
        yield dg.Output(1)
        yield dg.AssetCheckResult(check_name="gate", passed=not refused, severity=dg.AssetCheckSeverity.WARN,
                                  metadata={"verdict": "refused" if refused else "approved"})

    @dg.asset(deps=[parent], automation_condition=dg.AutomationCondition.eager()
              & dg.AutomationCondition.all_deps_blocking_checks_passed())
    def child():
        return 2

    with dg.instance_for_test() as instance:
        tick = dg.evaluate_automation_conditions(defs=[parent, child], instance=instance)
        assert dg.materialize([parent], instance=instance).success  # a WARN failure fails no step
        tick = dg.evaluate_automation_conditions(defs=[parent, child], instance=instance, cursor=tick.cursor)
        assert tick.get_num_requested(dg.AssetKey("child")) == (0 if refused else 1)
