"""Profiles: the settings every process reads from its environment, the executor they select, and the
production instance's Postgres storage settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import executor_for
from pipelines.settings import Settings, SettingsError, artifact_uri


def test_default_profile_is_embedded(tmp_path):
    settings = Settings.from_env({"OUROBOROS_LAKE": str(tmp_path / "lake")})
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'lake' / 'mlflow.db'}"
    assert settings.mlflow_artifact_uri == (tmp_path / "lake" / "mlartifacts").as_uri()
    assert settings.executor == "in_process" and executor_for(settings) is dg.in_process_executor


def test_stack_profile_reads_every_location_from_the_environment(tmp_path):
    settings = Settings.from_env({
        "OUROBOROS_LAKE": str(tmp_path), "MLFLOW_TRACKING_URI": "http://127.0.0.1:5055",
        "OUROBOROS_MLFLOW_ARTIFACTS": "mlflow-artifacts:/ouroboros", "OUROBOROS_EXECUTOR": "multiprocess",
        "OUROBOROS_MAX_CONCURRENT": "3", "OUROBOROS_MLFLOW_UI": "http://127.0.0.1:5055"})
    assert settings.mlflow_artifact_uri == "mlflow-artifacts:/ouroboros"
    executor = executor_for(settings)
    assert executor.name == "multiprocess" and executor.config_schema is not None
    assert settings.max_concurrent == 3 and settings.mlflow_ui == "http://127.0.0.1:5055"


@pytest.mark.parametrize("location,expected", [
    ("s3://bucket/mlflow", "s3://bucket/mlflow"),
    ("mlflow-artifacts:/x", "mlflow-artifacts:/x"),
    ("file:///data/a", "file:///data/a"),
])
def test_artifact_locations_are_uris(location, expected):
    assert artifact_uri(location) == expected
    assert artifact_uri(Path("/data/plain")) == "file:///data/plain"


@pytest.mark.parametrize("env,match", [
    ({"OUROBOROS_EXECUTOR": "threads"}, "OUROBOROS_EXECUTOR='threads': use one of in_process, multiprocess, k8s"),
    ({"OUROBOROS_MAX_CONCURRENT": "two"}, "OUROBOROS_MAX_CONCURRENT='two' is not a whole number"),
    ({"OUROBOROS_MAX_CONCURRENT": "0"}, "must be at least 1"),
])
def test_bad_settings_name_the_variable(env, match):
    with pytest.raises(SettingsError, match=match):
        Settings.from_env(env)


def test_assets_carry_code_references(tmp_path, small_demo):
    from ouroboros.config import PipelineConfig
    from pipelines.definitions import build_definitions

    source = tmp_path / "real.parquet"
    small_demo.write_parquet(source)
    config = PipelineConfig.model_validate({"data": {"source": str(source), "target": "outcome"},
                                            "studies": [{"name": "s", "family": "copula", "generations": 1}]})
    defs = build_definitions(config, Settings.from_env({"OUROBOROS_LAKE": str(tmp_path / "lake")}))
    for key in (dg.AssetKey(["s", "generator_g0"]), dg.AssetKey("downstream_champion")):
        spec = defs.resolve_assets_def(key).specs_by_key[key]
        refs = spec.metadata["dagster/code_references"].code_references
        assert refs and refs[0].file_path.endswith(".py")
