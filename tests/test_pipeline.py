"""The whole graph through Dagster on a tiny table, with real MLflow, Great Expectations and lake stores in a
temp folder: the good chain passes its gate, a deliberately broken chain is stopped, and training refuses
a failed batch even when materialised on its own later."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import polars as pl
import pytest

from ouroboros.config import ConfigError, PipelineConfig
from ouroboros.provenance import without_origin
from ouroboros.verdict import fingerprint
from pipelines.definitions import PIPELINE_JOB, build_definitions
from pipelines.run import chain_rows, refusals, summarise
from pipelines.settings import Settings
from tests.wiring import WIRING_GATE


def make_settings(tmp_path: Path) -> Settings:
    lake = tmp_path / "lake"
    return Settings(config_path=tmp_path / "ouroboros.yaml", lake=lake,
                    mlflow_tracking_uri=f"sqlite:///{lake / 'mlflow.db'}", mlflow_artifacts=lake / "mlartifacts",
                    gx_root=lake / "gx", landing=lake / "landing")


def make_config(source: Path, training_study: str = "good") -> PipelineConfig:
    return PipelineConfig.model_validate({
        "data": {"source": str(source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [
            {"name": "good", "family": "copula", "policy": "replace", "generations": 2},
            {"name": "broken", "family": "shrunk", "policy": "replace", "generations": 2},
        ],
        "training": {"study": training_study},
        "downstream": {"epochs": 2},
        "gate": WIRING_GATE,
    })


def test_definitions_load(tmp_path, tiny_source):
    defs = build_definitions(make_config(tiny_source), make_settings(tmp_path))
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def(PIPELINE_JOB)
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"real_data", "real_train", "real_holdout", "good/generator_g1", "good/batch_g1", "broken/batch_g0",
            "training_set", "downstream_model", "collapse_report"} <= keys
    checks = defs.resolve_asset_graph().asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey(["good", "batch_g0"]), "contract") in checks
    assert dg.AssetCheckKey(dg.AssetKey("real_ingest"), "landing_contract") in checks
    assert len(checks) == 4 * 4 + 1  # four blocking checks on each of the four batches, and the landing contract


def test_bad_study_settings_fail_at_load(tmp_path, tiny_source):
    config = make_config(tiny_source)
    config.studies[0].params = {"epochz": 3}
    with pytest.raises(ConfigError, match=r"study 'good': copula: unknown parameter\(s\) \['epochz'\]"):
        build_definitions(config, make_settings(tmp_path))
    config.studies[0].params, config.studies[0].family = {}, "transformer"
    with pytest.raises(ConfigError, match="unknown generator family 'transformer'"):
        build_definitions(config, make_settings(tmp_path))


def test_full_graph_gates_batches(tmp_path, tiny_source):
    settings = make_settings(tmp_path)
    defs = build_definitions(make_config(tiny_source), settings)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, raise_on_error=False)
        evaluations = {(e.asset_key.path[0], e.asset_key.path[1], e.check_name): e
                       for e in result.get_asset_check_evaluations() if len(e.asset_key.path) == 2}

        # the good chain passes every check, the broken chain's first batch is blocked on what broke
        # (a soft limit may warn; a warning shows in the UI but does not block)
        good = [evaluations[("good", f"batch_g{k}", c)] for k in range(2) for c in ("contract", "fidelity", "privacy",
                                                                                      "collapse")]
        assert all(e.passed for e in good)
        assert not evaluations[("broken", "batch_g0", "contract")].passed
        failures = evaluations[("broken", "batch_g0", "contract")].metadata["failures"].value
        assert "sampling_weight keeps its spread" in failures

        # blocking: nothing downstream of the failed batch ran in this run
        materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert "broken/batch_g0" in materialized
        assert "broken/generator_g1" not in materialized
        assert {"good/batch_g1", "training_set", "downstream_model"} <= materialized
        assert result.success  # a refusal is an outcome, not a crash: no step failed
        assert not [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert {(r["batch"], r["check"]) for r in refusals(result)} >= {("broken/batch_g0", "contract")}

        # the training set holds exactly the approved good batches
        training, origin = without_origin(pl.read_parquet(settings.lake / "assets" / "training_set.parquet"))
        good = [pl.read_parquet(settings.lake / "assets" / "good" / f"batch_g{k}.parquet") for k in range(2)]
        assert training.equals(pl.concat(good))
        real = pl.read_parquet(settings.lake / "assets" / "real_train.parquet")
        assert training.schema == real.schema
        # every row names its batch: origins add up to the approved batches, in order
        assert origin["_origin_fingerprint"].to_list() == [fingerprint(g) for g in good for _ in range(g.height)]

        # MLflow holds a run per generation with the gate's metrics, a loadable generator, and the downstream run
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        runs = mlflow.search_runs(experiment_names=["ouroboros"], output_format="list")
        names = {r.info.run_name for r in runs}
        assert {"good/gen_0", "good/gen_1", "broken/gen_0", "downstream_model"} <= names
        gen0 = next(r for r in runs if r.info.run_name == "good/gen_0")
        assert gen0.data.params["family"] == "copula" and gen0.data.params["parent_generation"] == "real"
        assert gen0.data.metrics["gate.contract.passed"] == 1.0
        model_uri = result.output_for_node("good__generator_g0")["model_uri"]
        sampled = mlflow.pyfunc.load_model(model_uri).predict(__import__("pandas").DataFrame({"n": [25], "seed": [4]}))
        assert list(sampled.columns) == real.columns and len(sampled) == 25
        downstream = next(r for r in runs if r.info.run_name == "downstream_model")
        assert 0.0 <= downstream.data.metrics["tstr.accuracy"] <= 1.0 and "trtr.roc_auc" in downstream.data.metrics
        # MLflow's evaluator scored both sides on the same holdout rows: its accuracy is ours, its plot is logged
        metrics = downstream.data.metrics
        assert metrics["eval.tstr.accuracy_score"] == pytest.approx(metrics["tstr.accuracy"], abs=1e-9)
        assert metrics["eval.trtr.accuracy_score"] == pytest.approx(metrics["trtr.accuracy"], abs=1e-9)
        holdout = pl.read_parquet(settings.lake / "assets" / "real_holdout.parquet")
        assert metrics["eval.trtr.example_count"] == holdout.filter(pl.col("outcome").is_not_null()).height
        artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(downstream.info.run_id)}
        assert {"eval.tstr.confusion_matrix.png", "eval.trtr.confusion_matrix.png"} <= artifacts
        client = mlflow.MlflowClient()
        # the downstream run names what it learned from and was scored on, and keeps the real-trained baseline
        inputs = {d.dataset.name: d for d in client.get_run(downstream.info.run_id).inputs.dataset_inputs}
        assert {"training_set", "real_holdout"} <= set(inputs)
        baseline_uri = result.output_for_node("downstream_model")["baseline_model_uri"]
        baseline = mlflow.pyfunc.load_model(baseline_uri).predict(real.drop("outcome").head(3).to_pandas())
        assert len(baseline) == 3
        # the generation's run keeps only its own batch's validation page, not a copy of the whole Data Docs site
        pages = client.list_artifacts(gen0.info.run_id, "gate/data_docs")
        assert len(pages) == 1 and pages[0].path.endswith(".html")
        # the gate's scores are linked to the generator's LoggedModel, and the run was not re-opened for them
        logged = client.get_logged_model(model_uri.rsplit("/", 1)[-1])
        linked = {m.key: m.value for m in logged.metrics or []}
        assert linked["gate.contract.passed"] == 1.0 and linked["gate.fidelity.passed"] == 1.0
        assert client.get_run(gen0.info.run_id).info.status == "FINISHED"
        # dataset inputs: the real table version and the training pool
        inputs = {d.dataset.name: d for d in client.get_run(gen0.info.run_id).inputs.dataset_inputs}
        assert {"real_train@v0", "good/pool_g0"} <= set(inputs)
        # the downstream model is a registered MLflow model; 'champion' points at this run's
        champion = client.get_model_version_by_alias("ouroboros.downstream_model", "champion")
        assert champion.run_id == downstream.info.run_id
        predicted = mlflow.pyfunc.load_model("models:/ouroboros.downstream_model@champion").predict(
            real.drop("outcome").head(7).to_pandas())
        assert len(predicted) == 7 and set(predicted["outcome"]) <= set(real["outcome"].unique())

        # Great Expectations kept the validation results and built Data Docs
        assert (settings.gx_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()
        assert any((settings.gx_root / "gx" / "uncommitted" / "validations").rglob("*.json"))

        # the report was written (by the failed run's remaining steps or not): rebuild it on its own
        report = build_definitions(make_config(tiny_source), settings).resolve_job_def("collapse_report_job")
        assert report.execute_in_process(instance=instance).success
        page = (settings.lake / "reports" / "collapse_report.md").read_text()
        assert "**broken**: guard tripped at generation 0" in page and "**good**: no gate failure" in page
        # the report's MLflow metrics: one per study and indicator, with the generation as its step
        report_run = max((r for r in mlflow.search_runs(experiment_names=["ouroboros"], output_format="list")
                          if r.info.run_name == "collapse_report"), key=lambda r: r.info.start_time)
        history = client.get_metric_history(report_run.info.run_id, "good.collapse.spread_ratio.mean")
        assert sorted(m.step for m in history) == [0, 1]
        assert not any(k.endswith((".g0", ".g1")) for k in report_run.data.metrics)

        # the run summary: one row per chain with its verdict per generation and where the guard tripped
        rows = {r["chain"]: r for r in chain_rows(make_config(tiny_source), defs.resources["lake"])}
        assert rows["good"]["verdicts"] == ["pass", "pass"] and rows["good"]["guard"] == "held all 2"
        assert rows["broken"]["verdicts"] == ["FAIL", "-"] and rows["broken"]["guard"].startswith("STOPPED at g0: ")
        text = summarise(make_config(tiny_source), defs.resources["lake"], settings, result, refusals(result))
        assert "The guard stopped 1 chain(s); 1 held every generation." in text
        assert "real-trained baseline" in text and "collapse_report.md" in text

        # later, materialising training_set alone for the broken study is refused: the verdict lives with the batch
        refusing = build_definitions(make_config(tiny_source, training_study="broken"), settings)
        alone = dg.materialize(
            [a for a in refusing.assets if isinstance(a, dg.AssetsDefinition)],
            selection=dg.AssetSelection.assets("training_set"), instance=instance,
            resources=refusing.resources, raise_on_error=False,
        )
        assert alone.success and "training_set" not in {e.asset_key.to_user_string()
                                                         for e in alone.get_asset_materialization_events()}
        assert any("the gate refused every batch of study broken" in entry.user_message
                   for entry in instance.all_logs(alone.run_id))


def test_seeded_pipeline_is_reproducible(tmp_path, tiny_source):
    """Two runs on the same data and config make the same batches."""
    batches = []
    for name in ("a", "b"):
        settings = make_settings(tmp_path / name)
        config = make_config(tiny_source)
        config.studies = config.studies[:1]
        defs = build_definitions(config, settings)
        keys = [dg.AssetKey(k) for k in ("real_data", "real_train", "real_holdout", "real_contract")]
        keys += [dg.AssetKey(["good", f"{kind}_g{k}"]) for k in range(2) for kind in ("generator", "batch")]
        with dg.instance_for_test() as instance:
            result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, asset_selection=keys)
            assert result.success
        batches.append(pl.read_parquet(settings.lake / "assets" / "good" / "batch_g1.parquet"))
    assert batches[0].equals(batches[1])
    assert not np.isclose(batches[0]["sampling_weight"].std(), 0.0)


def test_pipeline_runs_on_an_unseen_table_shape(tmp_path):
    """A CSV with a regression target, dates, a constant column, an all-null column, unsigned and float32
    numbers, a nullable boolean and an identifier-like string column goes through the whole graph."""
    rng = np.random.default_rng(5)
    n = 400
    x = rng.normal(50, 10, n)
    frame = pl.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "signup": pl.date_range(pl.date(2020, 1, 1), pl.date(2020, 1, 1) + pl.duration(days=n - 1), eager=True),
        "age": rng.integers(18, 90, n).astype(np.uint8),
        "score": pl.Series(rng.gamma(2.0, 3.0, n), dtype=pl.Float32),
        "region": rng.choice(["north", "south", "east", "west"], n, p=[0.5, 0.3, 0.15, 0.05]),
        "member": pl.Series([None if v < 0.1 else v > 0.5 for v in rng.random(n)], dtype=pl.Boolean),
        "constant": ["same"] * n,
        "empty": pl.Series([None] * n, dtype=pl.Float64),
        "spend": pl.Series(np.where(rng.random(n) < 0.05, np.nan, x * 3 + rng.normal(0, 5, n))),
    }).with_columns(pl.col("spend").fill_nan(None))
    source = tmp_path / "customers.csv"
    frame.write_csv(source)
    config = PipelineConfig.model_validate({
        "data": {"source": str(source), "target": "spend"},
        "studies": [{"name": "custom", "family": "copula", "generations": 1}],
        "downstream": {"epochs": 2},
    })
    settings = make_settings(tmp_path)
    defs = build_definitions(config, settings)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, raise_on_error=False)
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    # the gate may judge the batch either way (a refusal fails no step); what must not happen is a crash
    assert result.success, [str(e.event_specific_data.error)[:500] for e in failures]
    batch = pl.read_parquet(settings.lake / "assets" / "custom" / "batch_g0.parquet")
    real = pl.read_parquet(settings.lake / "assets" / "real_train.parquet")
    assert batch.schema == real.schema
    assert batch["empty"].null_count() == batch.height and batch["constant"].unique().to_list() == ["same"]
    if (settings.lake / "assets" / "downstream_model.json").exists():  # not made when the gate refused the batch
        model = json.loads((settings.lake / "assets" / "downstream_model.json").read_text())
        assert model["task"] == "regression" and set(model["tstr"]) == {"rmse", "r2"}
        # MLflow's regressor evaluation of the same predictions agrees with ours
        run = mlflow.MlflowClient(settings.mlflow_tracking_uri).get_run(model["mlflow_run_id"])
        assert run.data.metrics["eval.tstr.r2_score"] == pytest.approx(model["tstr"]["r2"], abs=1e-6)
