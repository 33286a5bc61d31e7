"""The generator asset through Dagster on a tiny table: `family: auto` records the chosen family and its
bake-off (record, metadata, MLflow, run summary); a fit that dies leaves no pool-provenance sidecar."""

from __future__ import annotations

import json

import dagster as dg
import mlflow

from assets.common import generator_key
from ouroboros.config import PipelineConfig
from ouroboros.generators import register
from ouroboros.generators.copula import GaussianCopula
from pipelines.definitions import PIPELINE_JOB, build_definitions
from pipelines.run import chain_rows, summarise
from resources.lake import asset_file
from tests.test_pipeline import make_settings
from tests.wiring import WIRING_GATE


class ExplodingCopula(GaussianCopula):
    """A fit killed half-way (out of memory, a pod evicted): it raises before the generator exists."""

    family = "exploding"

    def _fit(self, df, callback):
        raise RuntimeError("killed mid-fit")


register("exploding", f"{__name__}:ExplodingCopula")


def _config(source, studies) -> PipelineConfig:
    return PipelineConfig.model_validate({
        "data": {"source": str(source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": studies, "training": {"study": studies[0]["name"]}, "downstream": {"epochs": 2},
        "gate": WIRING_GATE})


def test_auto_study_records_the_chosen_family_and_its_bakeoff(tmp_path, tiny_source):
    settings = make_settings(tmp_path)
    config = _config(tiny_source, [{"name": "picked", "family": "auto", "candidates": ["shrunk", "copula"],
                                    "policy": "accumulate", "generations": 2, "budget_seconds": 20}])
    defs = build_definitions(config, settings)
    lake = defs.resources["lake"]
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, raise_on_error=False)
        record = json.loads(asset_file(lake.root, generator_key("picked", 0).path, ".json").read_text())
        # the squeezed copula loses its spread on the validation rows; the plain copula is chosen
        assert record["requested_family"] == "auto" and record["family"] == "copula"
        assert [c["family"] for c in record["step"]["bakeoff"]] == ["copula", "shrunk"]
        assert record["step"]["holdout_looks"] >= 1
        g1 = json.loads(asset_file(lake.root, generator_key("picked", 1).path, ".json").read_text())
        assert g1["family"] == "copula" and g1["step"]["bakeoff"] is None  # k >= 1 keeps generation 0's choice
        mats = {e.asset_key.to_user_string(): e for e in result.get_asset_materialization_events()}
        meta = mats["picked/generator_g0"].step_materialization_data.materialization.metadata
        assert "Bake-off" in meta["bakeoff"].value and meta["family"].value == "copula"
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(record["mlflow_run_id"])}
        assert {"bakeoff.md", "bakeoff.json"} <= artifacts
        assert chain_rows(config, lake)[0]["family"] == "auto: copula"
        text = summarise(config, lake, settings, result)
        assert "Generation 0 choices" in text and "picked, generation 0: copula" in text


def test_a_killed_fit_leaves_no_pool_provenance(tmp_path, tiny_source):
    settings = make_settings(tmp_path)
    config = _config(tiny_source, [{"name": "boom", "family": "exploding", "policy": "accumulate",
                                    "generations": 1}])
    defs = build_definitions(config, settings)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    assert not defs.resources["lake"].pool_origin_file("boom", 0).exists()
