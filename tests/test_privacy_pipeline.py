"""DP through the whole graph (real Dagster, MLflow and lake in a temp folder): ε on the generator's metadata and
MLflow run, on the batch's privacy check, `gate.max_epsilon` refusing the non-DP study, and the chain's ε in
the collapse report."""

from __future__ import annotations

import dagster as dg
import mlflow
import pytest
from test_pipeline import make_settings

from ouroboros.config import PipelineConfig
from pipelines.definitions import PIPELINE_JOB, build_definitions


def test_max_epsilon_gate_and_epsilon_everywhere(tmp_path, tiny_source):
    lake = tmp_path / "lake"
    settings = make_settings(tmp_path)
    config = PipelineConfig.model_validate({
        "data": {"source": str(tiny_source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [
            {"name": "private", "family": "vae", "generations": 1,
             "params": {"epochs": 2, "batch_size": 100, "dp": {"epsilon": 4.0}}},
            {"name": "plain", "family": "copula", "generations": 1},
        ],
        "gate": {"max_epsilon": 5.0},
    })
    defs = build_definitions(config, settings)
    keys = [dg.AssetKey(k) for k in ("real_data", "real_train", "real_holdout", "real_contract")]
    keys += [dg.AssetKey([s, f"{kind}_g0"]) for s in ("private", "plain") for kind in ("generator", "batch")]
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, asset_selection=keys,
                                                                       raise_on_error=False)
        checks = {(e.asset_key.path[0], e.check_name): e for e in result.get_asset_check_evaluations()
                  if len(e.asset_key.path) == 2}
        refused = checks[("plain", "privacy")]
        assert not refused.passed and "without differential privacy" in refused.description
        private = checks[("private", "privacy")]
        assert "dp.chain_epsilon" not in str(private.metadata["failures"].value)
        scores = private.metadata["scores"].value
        assert 3.9 < scores["privacy.dp.epsilon_spent"] <= 4.0 and scores["privacy.dp.chain_epsilon"] <= 4.0
        assert "privacy.membership.advantage" in scores

        generator = next(e for e in result.get_asset_materialization_events()
                         if e.asset_key == dg.AssetKey(["private", "generator_g0"]))
        meta = generator.materialization.metadata
        assert meta["dp_epsilon_requested"].value == 4.0 and meta["dp_noise_multiplier"].value > 0
        assert meta["chain_epsilon"].value == pytest.approx(meta["dp_epsilon_spent"].value, rel=1e-3)

        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        run = next(r for r in mlflow.search_runs(experiment_names=["ouroboros"], output_format="list")
                   if r.info.run_name == "private/gen_0")
        assert run.data.params["dp.epsilon_requested"] == "4.0" and run.data.params["dp.max_grad_norm"] == "1.0"
        assert 3.9 < run.data.metrics["dp.epsilon_spent"] <= 4.0 and "dp.delta" in run.data.metrics

        report = defs.resolve_job_def("collapse_report_job").execute_in_process(instance=instance)
        assert report.success
        page = (lake / "reports" / "collapse_report.md").read_text()
        assert "## Privacy budget (ε)" in page and "| plain | 0 | no |" in page and "| private | 0 | yes |" in page
