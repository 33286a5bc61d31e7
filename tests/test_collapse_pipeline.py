"""Studies side by side through Dagster: accumulate and anchor chains, a chain the guard stops mid-way,
refusal of later generations, pool composition in metadata and MLflow, the 'approved' registry alias,
and the report saying where the guard tripped."""

from __future__ import annotations

import dagster as dg
import mlflow
import polars as pl
import pytest
from mlflow import MlflowClient

from assets.report import registered_model_name
from ouroboros.config import PipelineConfig
from ouroboros.generators import register
from ouroboros.generators.copula import GaussianCopula
from pipelines.definitions import PIPELINE_JOB, REPORT_JOB, build_definitions
from pipelines.settings import Settings
from tests.wiring import WIRING_GATE, approved


class LateSqueeze(GaussianCopula):
    """A copula that squeezes its numeric columns from generation 1 on (seed = study seed * 1000 + k)."""

    family = "late_squeeze"

    def _sample(self, n: int, seed: int) -> pl.DataFrame:
        df = super()._sample(n, seed)
        if self.seed % 1000 == 0:
            return df
        numeric = [c.name for c in self.schema.columns if c.kind.value == "continuous"]
        return df.with_columns([(pl.col(c) - pl.col(c).median()) * 0.3 + pl.col(c).median() for c in numeric])


register("late_squeeze", f"{__name__}:LateSqueeze")


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, small_demo):
    tmp = tmp_path_factory.mktemp("collapse")
    source = tmp / "real.parquet"
    small_demo.write_parquet(source)
    lake = tmp / "lake"
    settings = Settings(config_path=tmp / "ouroboros.yaml", lake=lake, mlflow_tracking_uri=f"sqlite:///{lake / 'mlflow.db'}",
                        mlflow_artifacts=lake / "mlartifacts", gx_root=lake / "gx", landing=lake / "landing")
    config = PipelineConfig.model_validate({
        "data": {"source": str(source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [
            {"name": "acc", "family": "copula", "policy": "accumulate", "generations": 2, "rows": 300},
            {"name": "anc", "family": "copula", "policy": "anchor", "lam": 0.2, "generations": 2, "rows": 300},
            {"name": "late", "family": "late_squeeze", "policy": "replace", "generations": 3, "rows": 300},
        ],
        "downstream": {"epochs": 1},
        "gate": WIRING_GATE,
    })
    defs = build_definitions(config, settings)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, raise_on_error=False)
        report = defs.resolve_job_def(REPORT_JOB).execute_in_process(instance=instance)
        yield defs, settings, instance, result, report


def test_accumulate_and_anchor_chains_run_and_record_their_pools(pipeline_run):
    defs, settings, _, result, _ = pipeline_run
    materialised = {e.asset_key.to_user_string(): e for e in result.get_asset_materialization_events()}
    assert {"acc/batch_g1", "anc/batch_g1", "late/batch_g1"} <= set(materialised)
    pools = {k: materialised[f"{k}/generator_g1"].materialization.metadata["pool_composition"].value
             for k in ("acc", "anc")}
    real_rows = pl.read_parquet(settings.lake / "assets" / "real_train.parquet").height  # the hash split's share
    assert pools["acc"] == {"real": real_rows, "gen_0": 300}
    assert pools["anc"] == {"real": 60, "gen_0": 240}
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    runs = {r.info.run_name: r for r in mlflow.search_runs(experiment_names=["ouroboros"], output_format="list")}
    assert runs["anc/gen_1"].data.params["pool.real"] == "60" and runs["anc/gen_1"].data.params["policy"] == "anchor"
    assert runs["acc/gen_1"].data.params["pool.gen_0"] == "300"


def test_the_guard_stops_the_chain_and_later_generations_refuse(pipeline_run):
    defs, _, instance, result, _ = pipeline_run
    # passed, or failed only a soft limit (WARN: shown, not blocking)
    checks = {(e.asset_key.to_user_string(), e.check_name): approved(e)
              for e in result.get_asset_check_evaluations()}
    assert all(checks[("late/batch_g0", c)] for c in ("contract", "fidelity", "privacy", "collapse"))
    assert not all(checks[("late/batch_g1", c)] for c in ("contract", "fidelity", "privacy", "collapse"))
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "late/generator_g2" not in materialised
    # a later run that asks for generation 2 alone is refused: batch_g1's stored verdict says no
    alone = dg.materialize([a for a in defs.assets if isinstance(a, dg.AssetsDefinition)],
                           selection=dg.AssetSelection.assets(dg.AssetKey(["late", "generator_g2"])),
                           instance=instance, resources=defs.resources, raise_on_error=False)
    # a refusal is an outcome: the run succeeds, generation 2 is not made, and the log says why
    assert alone.success
    assert "late/generator_g2" not in {e.asset_key.to_user_string() for e in alone.get_asset_materialization_events()}
    logs = [e.message for e in instance.all_logs(alone.run_id) if e.message]
    assert any("generation 2 not made" in m and "batch_g1" in m for m in logs), logs[-5:]


def test_report_says_where_the_guard_tripped(pipeline_run):
    _, settings, _, _, report = pipeline_run
    page = (settings.lake / "reports" / "collapse_report.md").read_text()
    assert "**late**: guard tripped at generation 1 on `" in page
    assert "**acc**: no gate failure" in page and "**anc**: no gate failure" in page
    assert (settings.lake / "reports" / "collapse_report.png").exists()
    table = pl.read_parquet(settings.lake / "reports" / "collapse_report.parquet")
    assert set(table["study"].unique()) == {"acc", "anc", "late"}
    # the report job also moves each study's 'approved' alias, in assets of their own
    events = {e.asset_key.to_user_string(): e for e in report.get_asset_materialization_events()}
    assert {"acc/approved_generator", "anc/approved_generator", "late/approved_generator"} <= set(events)
    meta = events["collapse_report"].materialization.metadata
    assert "data:image/png;base64," in meta["report"].value
    assert meta["guard_trips"].value["late"][0] == 1


def test_approved_alias_points_at_the_newest_passing_generator(pipeline_run):
    _, settings, _, _, _ = pipeline_run
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient()
    for study, generation in (("acc", 1), ("anc", 1), ("late", 0)):
        version = client.get_model_version_by_alias(registered_model_name(study), "approved")
        assert client.get_run(version.run_id).info.run_name == f"{study}/gen_{generation}", study


def test_rebuilding_the_report_does_not_register_again(pipeline_run):
    defs, settings, instance, _, _ = pipeline_run
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient()
    before = len(client.search_model_versions(f"name='{registered_model_name('acc')}'"))
    assert defs.resolve_job_def(REPORT_JOB).execute_in_process(instance=instance).success
    assert len(client.search_model_versions(f"name='{registered_model_name('acc')}'")) == before == 1
