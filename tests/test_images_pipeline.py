"""One image chain through the whole graph with a real Dagster instance, the lake and the MLflow store."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import torch
from mlflow import MlflowClient

from ouroboros.config import PipelineConfig
from ouroboros.images.gate import IMAGE_CHECKS
from pipelines.definitions import build_definitions
from pipelines.settings import Settings
from resources import LakeResource

torch.set_num_threads(1)


def test_image_chain_materialises_is_gated_and_reported(tmp_path: Path):
    lake = tmp_path / "lake"
    settings = Settings(config_path=tmp_path / "x.yaml", lake=lake, mlflow_tracking_uri=f"sqlite:///{lake / 'mlflow.db'}",
                        mlflow_artifacts=lake / "mlartifacts", gx_root=lake / "gx", landing=lake / "landing")
    config = PipelineConfig.model_validate({
        "data": {"source": "sklearn:digits", "kind": "images", "target": "label"},
        "studies": [{"name": "vae_replace", "family": "vae", "policy": "replace", "generations": 2, "rows": 300,
                     "params": {"epochs": 3}}],
        "images": {"gate": {"null_draws": 30, "utility_draws": 5, "feature_epochs": 5}},
    })
    defs = build_definitions(config, settings)
    assets = list(defs.assets)
    checks = list(defs.asset_checks)
    with dg.instance_for_test() as instance:
        result = dg.materialize([*assets, *checks], instance=instance, resources=defs.resources, raise_on_error=False)
        # a refused batch stops everything downstream in the run, the report too: rebuild it as the report job does
        report = next(a for a in assets if dg.AssetKey("image_report") in a.keys)
        assert dg.materialize([report], instance=instance, resources=defs.resources).success
    evaluations = result.get_asset_check_evaluations()
    g0 = [e for e in evaluations if e.asset_key == dg.AssetKey(["vae_replace", "batch_g0"])]
    assert sorted(e.check_name for e in g0) == sorted(IMAGE_CHECKS)
    store = LakeResource(root=str(lake))
    batch = store.read_asset_table(["vae_replace", "batch_g0"])
    assert batch.height == 300
    from ouroboros.verdict import fingerprint

    verdict = store.read_verdict("vae_replace/batch_g0", fingerprint(batch), required=IMAGE_CHECKS)
    assert not verdict.missing and verdict.passed == all(e.passed for e in g0)
    # the guard: generation 1 learns only from an approved batch 0
    made_g1 = store.read_asset_table(["vae_replace", "batch_g1"]) is not None
    assert made_g1 == verdict.passed
    # a refusal is an outcome, as for tables: the run succeeds, each refusing check says `verdict: refused`
    assert result.success
    for e in g0:
        assert e.metadata["verdict"].value == ("approved" if e.passed else "refused")
    report = (lake / "reports" / "images_report.md").read_text()
    assert "vae_replace" in report and (lake / "reports" / "images" / "vae_replace" / "batch_g0.png").exists()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("ouroboros").experiment_id])
    g0_run = next(r for r in runs if r.info.run_name == "vae_replace/gen_0")
    assert {a.path for a in client.list_artifacts(g0_run.info.run_id, "generator")} >= {"generator/modules.pt",
                                                                                       "generator/generator.json"}
    assert "gate.fidelity.frechet_distance" in g0_run.data.metrics
