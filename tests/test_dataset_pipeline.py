"""A dataset of two linked tables (patients and their ordered visits) through the whole Dagster graph, with real
MLflow, Great Expectations and lake stores in a temp folder: the chain over entities, the checks per table and
on the links, the stored lineage, and a refused batch stopping the chain in this run and in a later one."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import polars as pl
import pytest

from assets.datasets import batch_table_key, required_checks
from ouroboros.chain.dataset_generation import build_dataset_pool
from ouroboros.config import PipelineConfig
from ouroboros.dataset import root_keys
from ouroboros.generators.children import DatasetGenerator, load_dataset_generator
from ouroboros.verdict import dataset_fingerprint
from pipelines.definitions import PIPELINE_JOB, REPORT_JOB, build_definitions
from pipelines.settings import Settings
from tests.relational_data import draw
from tests.wiring import WIRING_GATE, approved

TABLES = ("patients", "visits")


def make(tmp_path: Path, family: str = "copula", policy: str = "accumulate", generations: int = 2,
         entities: int = 900) -> tuple[PipelineConfig, Settings]:
    ds = draw(entities, seed=1)
    for name in TABLES:
        ds.tables[name].write_parquet(tmp_path / f"{name}.parquet")
    config = PipelineConfig.model_validate({
        "data": {"tables": {"patients": {"source": str(tmp_path / "patients.parquet"), "key": "patient_id"},
                            "visits": {"source": str(tmp_path / "visits.parquet"), "key": "visit_id",
                                       "parent": "patients", "foreign_key": "patient_id", "order_by": "day"}},
                 "target": {"table": "patients", "column": "group"}, "holdout_fraction": 0.25},
        "studies": [{"name": "chain", "family": family, "policy": policy, "generations": generations,
                     "rows": 500}],
        "gate": WIRING_GATE,  # the joint limits off (tests/wiring.py): the copula is not judged on them here
    })
    lake = tmp_path / "lake"
    settings = Settings(config_path=tmp_path / "ouroboros.yaml", lake=lake,
                        mlflow_tracking_uri=f"sqlite:///{lake / 'mlflow.db'}", mlflow_artifacts=lake / "mlartifacts",
                        gx_root=lake / "gx", landing=lake / "landing")
    return config, settings


def run(defs: dg.Definitions, instance: dg.DagsterInstance, job: str = PIPELINE_JOB, selection=None):
    return defs.resolve_job_def(job).execute_in_process(instance=instance, asset_selection=selection)


def test_dataset_definitions_have_assets_per_table_and_checks_per_table_and_link(tmp_path):
    config, settings = make(tmp_path)
    defs = build_definitions(config, settings)
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_job_def(PIPELINE_JOB).asset_layer.executable_asset_keys}
    assert {"real_ingest", "real_data/patients", "real_data/visits", "real_train/visits", "real_holdout/patients",
            "real_contract/visits", "chain/generator_g1", "chain/batch_g1/patients", "chain/batch_g1/visits",
            "dataset_report"} <= keys
    checks = defs.resolve_asset_graph().asset_check_keys
    assert dg.AssetCheckKey(batch_table_key("chain", 0, "visits"), "collapse") in checks
    assert dg.AssetCheckKey(batch_table_key("chain", 1, "patients"), "links") in checks
    # four per table and one for the links, per generation; and the landing contract
    assert len(checks) == 2 * (4 * len(TABLES) + 1) + 1
    # generation 1 of accumulate learns from real_train and batch 0, table by table: the lineage graph says so
    deps = defs.resolve_asset_graph().get(dg.AssetKey(["chain", "generator_g1"])).parent_keys
    assert {dg.AssetKey(["real_train", "visits"]), batch_table_key("chain", 0, "visits")} <= deps
    # and under replace, generation 1 learns from batch 0 alone: no edge from the real data
    config, settings = make(tmp_path, policy="replace")
    graph = build_definitions(config, settings).resolve_asset_graph()
    assert graph.get(dg.AssetKey(["chain", "generator_g1"])).parent_keys == {
        batch_table_key("chain", 0, t) for t in TABLES}


def test_a_dataset_chain_runs_through_the_graph_with_lineage_and_a_report(tmp_path):
    config, settings = make(tmp_path)
    defs = build_definitions(config, settings)
    result = run(defs, dg.DagsterInstance.ephemeral())
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 2 * (4 * len(TABLES) + 1) + 1  # and real_ingest's landing contract
    assert all(approved(e) for e in evaluations), [(e.asset_key, e.check_name) for e in evaluations
                                                   if not approved(e)]
    lake = settings.lake
    # the stored verdict of each dataset batch: every check of every table and the links, for its fingerprint
    batch1 = {t: pl.read_parquet(lake / "assets" / "chain" / "batch_g1" / f"{t}.parquet") for t in TABLES}
    fp1 = dataset_fingerprint(batch1)
    records = {p.stem: json.loads(p.read_text()) for p in (lake / "verdicts" / "chain" / "batch_g1").glob("*.json")}
    assert set(required_checks(TABLES)) <= set(records)
    assert all(r["batch_fingerprint"] == fp1 and r["passed"] for r in records.values())
    # generation 1's lineage names real_train and batch 0 by their dataset fingerprints
    batch0 = {t: pl.read_parquet(lake / "assets" / "chain" / "batch_g0" / f"{t}.parquet") for t in TABLES}
    lineage = json.loads((lake / "verdicts" / "chain" / "batch_g1" / "lineage" / f"{fp1}.json").read_text())
    train = {t: pl.read_parquet(lake / "assets" / "real_train" / f"{t}.parquet") for t in TABLES}
    assert lineage["parents"] == {"real_train": dataset_fingerprint(train),
                                  "chain/batch_g0": dataset_fingerprint(batch0)}
    # the pool was whole entities of both sources, and the batch is a consistent dataset of 500 entities
    record = json.loads((lake / "assets" / "chain" / "generator_g1.json").read_text())
    assert record["pool"] == {"real": train["patients"].height, "gen_0": 500}
    assert batch1["patients"].height == 500 and batch1["patients"]["patient_id"].is_unique().all()
    assert batch1["visits"]["patient_id"].is_in(batch1["patients"]["patient_id"].implode()).all()
    # the entity split: no patient on both sides, every visit on its patient's side
    hold = {t: pl.read_parquet(lake / "assets" / "real_holdout" / f"{t}.parquet") for t in TABLES}
    assert not set(train["patients"]["patient_id"]) & set(hold["patients"]["patient_id"])
    assert set(hold["visits"]["patient_id"]) <= set(hold["patients"]["patient_id"])
    # MLflow has both generations' runs, with the saved dataset generator as artifacts
    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    run_ = client.get_run(record["mlflow_run_id"])
    assert run_.data.params["pool.gen_0"] == "500" and "fit_seconds" in run_.data.metrics
    assert any(a.path == "dataset_generator" for a in client.list_artifacts(run_.info.run_id))
    report = (lake / "reports" / "dataset_report.md").read_text()
    assert "| 1 | True |" in report and "children_per_parent:patients->visits" in report
    assert "`visits.joint.detection_auc`" in report  # each table's indicators over the generations too


def test_a_refused_dataset_batch_stops_the_chain_now_and_in_a_later_run(tmp_path):
    """`shrunk` (tests/wiring.py) squeezes every continuous column towards its median: collapse refuses the
    batch; the refusal is an outcome (the run succeeds), generation 1 is not made, not even when asked for alone."""
    config, settings = make(tmp_path, family="shrunk", policy="replace")
    defs = build_definitions(config, settings)
    instance = dg.DagsterInstance.ephemeral()
    result = run(defs, instance)
    assert result.success
    refused = [e for e in result.get_asset_check_evaluations() if not approved(e)]
    assert refused and all(e.asset_key.path[1] == "batch_g0" for e in refused)
    assert any(e.check_name == "collapse" for e in refused)
    made = {m.event_specific_data.materialization.asset_key for m in result.get_asset_materialization_events()}
    assert batch_table_key("chain", 0, "visits") in made
    assert dg.AssetKey(["chain", "generator_g1"]) not in made
    later = run(defs, instance, selection=[dg.AssetKey(["chain", "generator_g1"])])
    assert later.success and not later.get_asset_materialization_events()
    # the report, rebuilt from the stored verdicts, names where the chain stopped
    assert run(defs, instance, job=REPORT_JOB).success
    report = (settings.lake / "reports" / "dataset_report.md").read_text()
    assert "| 0 | False |" in report and "Stopped: chain/batch_g0" in report


def test_dataset_pools_take_whole_entities_with_keys_unique_across_sources():
    real, b0, b1 = draw(300, seed=1), draw(200, seed=2), draw(100, seed=3)
    for policy, want in (("replace", {"gen_1": 100}), ("accumulate", {"real": 300, "gen_0": 200, "gen_1": 100}),
                         ("anchor", {"real": 20, "gen_1": 80})):
        pool = build_dataset_pool(policy, 2, real, [b0, b1], lam=0.2, seed=0)
        assert {k: v for k, v in pool.composition.items() if v} == want, policy
        ds = pool.dataset
        assert ds.tables["patients"].height == sum(want.values())
        assert ds.tables["patients"]["patient_id"].is_unique().all()
        assert ds.tables["visits"]["visit_id"].is_unique().all()
        assert root_keys(ds)["visits"].null_count() == 0  # every visit still has its patient
    # an accumulated pool keeps each entity whole: the visits per patient of the sources, in order
    pool = build_dataset_pool("accumulate", 2, real, [b0, b1]).dataset
    counts = lambda d: d.tables["visits"].group_by("patient_id", maintain_order=True).len()["len"].to_list()  # noqa: E731
    assert counts(pool) == counts(real) + counts(b0) + counts(b1)


def test_a_saved_dataset_generator_draws_the_same_dataset_after_loading(tmp_path):
    gen = DatasetGenerator("copula", seed=4).fit(draw(400, seed=5))
    a = gen.sample(150, seed=9)
    b = load_dataset_generator(gen.save(tmp_path / "g")).sample(150, seed=9)
    assert all(a.tables[t].equals(b.tables[t]) for t in TABLES)
    assert a.tables["visits"].height > 0 and not np.isnan(a.tables["visits"]["value"].to_numpy()).any()


@pytest.mark.parametrize("change", [{"holdout_fraction": 0.3}, {"seed": 7}])
def test_a_changed_entity_split_rule_is_refused(tmp_path, change):
    config, settings = make(tmp_path, generations=1)
    instance = dg.DagsterInstance.ephemeral()
    real = [dg.AssetKey("real_ingest"), *(dg.AssetKey([kind, t]) for kind in ("real_data", "real_train", "real_holdout")
                                          for t in TABLES)]
    assert run(build_definitions(config, settings), instance, selection=real).success
    changed = config.model_copy(update={"data": config.data.model_copy(update=change)})
    result = build_definitions(changed, settings).resolve_job_def(PIPELINE_JOB).execute_in_process(
        instance=instance, asset_selection=real, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "entity split rule" in str(failure.event_specific_data.error)


def test_an_accepted_landed_file_gives_one_retrain_of_the_dataset_study(tmp_path):
    """retrain_on_new_data watches the dataset as one number (the sum of its tables' versions): an accepted
    file of any table asks for one run of the dataset study; once real_data has read it, nothing more."""
    config, settings = make(tmp_path, generations=1)
    defs = build_definitions(config, settings)
    instance = dg.DagsterInstance.ephemeral()
    sensor = defs.resolve_sensor_def("retrain_on_new_data")

    def tick(cursor=None):
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
        return list(data.run_requests or []), data.cursor, data.skip_message

    real = [dg.AssetKey("real_ingest"), *(dg.AssetKey(["real_data", t]) for t in TABLES)]
    assert run(defs, instance, selection=real).success
    requests, cursor, skip = tick()
    assert requests == [] and "already read" in skip
    folder = settings.landing / "patients"
    folder.mkdir(parents=True)
    draw(20, seed=9, first_id=10**6).tables["patients"].write_parquet(folder / "new_patients.parquet")
    ingest = defs.resolve_job_def("ingest_job").execute_in_process(
        instance=instance, run_config={"ops": {"real_ingest": {"config": {
            "landed_file": str(folder / "new_patients.parquet")}}}})
    assert ingest.success and not (folder / "new_patients.parquet").exists()
    requests, cursor, _ = tick(cursor)
    assert len(requests) == 1 and requests[0].job_name in (None, PIPELINE_JOB)
    again, cursor, skip = tick(cursor)
    assert again == [] and "already requested" in skip
    assert run(defs, instance, selection=real).success  # the retrain's first steps read the new version
    assert tick(cursor)[0] == []
