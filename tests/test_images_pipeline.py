"""One image chain through the whole graph with a real Dagster instance, the lake and the MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import torch
from mlflow import MlflowClient

from ouroboros.config import PipelineConfig
from ouroboros.images.gate import IMAGE_CHECKS
from pipelines.definitions import build_definitions
from pipelines.run import EXIT_ALL_REFUSED, main, refusals
from pipelines.settings import Settings
from resources import LakeResource

torch.set_num_threads(1)


def refusing_config() -> dict:
    return {"data": {"source": "sklearn:digits", "kind": "images", "target": "label"},
            "studies": [{"name": "vae_replace", "family": "vae", "policy": "replace", "generations": 2, "rows": 300,
                         "params": {"epochs": 3}}],
            "images": {"gate": {"null_draws": 30, "utility_draws": 5, "feature_epochs": 5}}}


def test_image_chain_materialises_is_gated_and_reported(tmp_path: Path):
    lake = tmp_path / "lake"
    settings = Settings(config_path=tmp_path / "x.yaml", lake=lake, mlflow_tracking_uri=f"sqlite:///{lake / 'mlflow.db'}",
                        mlflow_artifacts=lake / "mlartifacts", gx_root=lake / "gx", landing=lake / "landing")
    config = PipelineConfig.model_validate(refusing_config())
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
    # a VAE of 3 epochs is refused (seeded, so always): a refusal is an outcome, as for tables: the run
    # succeeds, each refusing check fails with severity WARN and says `verdict: refused`
    assert not verdict.passed
    assert result.success
    refused = [e for e in g0 if not e.passed]
    assert refused and all(e.severity == dg.AssetCheckSeverity.WARN for e in refused)
    for e in g0:
        assert e.metadata["verdict"].value == ("approved" if e.passed else "refused")
    assert {r["batch"] for r in refusals(result)} == {"vae_replace/batch_g0"}
    # the guard: generation 1 makes no output from a refused batch 0, so Dagster skips batch 1 (no failed step)
    made = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "vae_replace/batch_g0" in made and not made & {"vae_replace/generator_g1", "vae_replace/batch_g1"}
    assert store.read_asset_table(["vae_replace", "batch_g1"]) is None
    assert not [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    report = (lake / "reports" / "images_report.md").read_text()
    assert "vae_replace" in report and (lake / "reports" / "images" / "vae_replace" / "batch_g0.png").exists()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("ouroboros").experiment_id])
    g0_run = next(r for r in runs if r.info.run_name == "vae_replace/gen_0")
    assert {a.path for a in client.list_artifacts(g0_run.info.run_id, "generator")} >= {"generator/modules.pt",
                                                                                       "generator/generator.json"}
    assert "gate.fidelity.frechet_distance" in g0_run.data.metrics


def test_bin_run_reports_an_image_refusal_as_an_outcome(tmp_path: Path, monkeypatch, capsys):
    """`ouroboros run` (bin/run) on an image study whose only batch the gate refuses: the run succeeds, the
    report is rebuilt and printed, and the exit status is the table path's 'all refused' (1), not a crash (3)."""
    config = tmp_path / "digits.yaml"
    config.write_text(json.dumps(refusing_config()))  # JSON is YAML
    for name in ("MLFLOW_TRACKING_URI", "OUROBOROS_MLFLOW_ARTIFACTS", "OUROBOROS_GX_ROOT", "OUROBOROS_LANDING",
                 "OUROBOROS_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OUROBOROS_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    assert main(["--config", str(config), "-q"]) == EXIT_ALL_REFUSED
    out = capsys.readouterr().out
    assert "succeeded; the gate refused 1 batch(es)" in out
    assert "| g0 | FAIL |" in out and "| g1 | not made" in out
