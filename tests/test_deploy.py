"""Offline validation of the deployment files (no cluster, no Helm here):

- every Dagster instance YAML against Dagster's own instance schema, and each configurable class's config
  (Postgres storage, K8sRunLauncher, QueuedRunCoordinator) against that class's schema, with dagster-k8s and
  dagster-postgres installed;
- deploy/k8s/*.yaml, and the step Jobs k8s_job_executor would create from each generator asset's
  `dagster-k8s/config` tag, against the Kubernetes schemas (kubernetes-validate, strict: unknown fields fail).
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from kubernetes.client import ApiClient

from assets.generations import build_generator_asset, step_resources
from ouroboros.config import StudyConfig

REPO = Path(__file__).resolve().parents[1]
INSTANCES = [REPO / "dagster.yaml", REPO / "deploy" / "local" / "dagster.yaml", REPO / "deploy" / "k8s" / "instance.yaml"]
MANIFESTS = sorted(p for p in (REPO / "deploy" / "k8s").glob("*.yaml") if p.name != "instance.yaml")
K8S_VERSION = "1.33.0"
ENV = {"OUROBOROS_PG_HOST": "db", "OUROBOROS_PG_PORT": "5432", "OUROBOROS_PG_USER": "u", "OUROBOROS_PG_PASSWORD": "p",
       "OUROBOROS_PG_DAGSTER_DB": "dagster", "DAGSTER_PG_HOST": "db", "DAGSTER_PG_USER": "u", "DAGSTER_PG_PASSWORD": "p"}


def validate_instance(path: Path, tmp_path: Path) -> dict:
    """Dagster's instance schema, then each configurable class's own config schema; raises on any error."""
    shutil.copy(path, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    postgres = (config.get("storage") or {}).get("postgres")
    if postgres is not None:
        for storage in (PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage):
            result = process_config(storage.config_type(), postgres)
            assert result.success, f"{path}: storage.postgres: {[e.message for e in result.errors]}"
    for section in ("run_launcher", "run_coordinator"):
        if config.get(section):
            data = config[section]
            cls = getattr(importlib.import_module(data["module"]), data["class"])
            result = process_config(cls.config_type(), data.get("config") or {})
            assert result.success, f"{path}: {section}: {[e.message for e in result.errors]}"
    return config


@pytest.mark.parametrize("path", INSTANCES, ids=lambda p: str(p.relative_to(REPO)))
def test_instance_yaml_matches_dagsters_schema(path, tmp_path, monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    config = validate_instance(path, tmp_path)
    assert config["concurrency"]["pools"]["default_limit"] == 1  # the real_table pool stays a one-writer pool
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "ouroboros/writes_real_table", "limit": 1} in limits
    assert {"key": "ouroboros/trains", "limit": 1} in limits  # one training run at a time
    assert config["freshness"]["enabled"] is True  # else the champion's freshness policy is never evaluated


def test_a_wrong_instance_setting_is_caught(tmp_path, monkeypatch):
    """The check above is not vacuous: a misspelt launcher setting fails it."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    bad = yaml.safe_load((REPO / "deploy" / "k8s" / "instance.yaml").read_text())
    bad["run_launcher"]["config"]["job_namespaces"] = "typo"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(AssertionError, match="job_namespaces"):
        validate_instance(tmp_path / "src" / "bad.yaml", tmp_path)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifests_validate(path):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert documents
    for doc in documents:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def step_job(study: StudyConfig) -> dict:
    """The Job manifest k8s_job_executor builds for a generator step of `study`, from the asset's tag."""
    instance = yaml.safe_load((REPO / "deploy" / "k8s" / "instance.yaml").read_text())["run_launcher"]["config"]
    job_config = DagsterK8sJobConfig(
        job_image="registry.example.com/ouroboros:0.1.0", dagster_home=instance["dagster_home"],
        image_pull_policy=instance["image_pull_policy"], service_account_name=instance["service_account_name"],
        instance_config_map=instance["instance_config_map"], postgres_password_secret=instance["postgres_password_secret"],
        env_config_maps=instance["env_config_maps"], env_secrets=instance["env_secrets"],
    )
    user = UserDefinedDagsterK8sConfig.from_dict(step_resources(study))
    job = construct_dagster_k8s_job(job_config, ["dagster", "api", "execute_step"], "dagster-step-generator-g0",
                                    user_defined_k8s_config=user)
    return ApiClient().sanitize_for_serialization(job)


@pytest.mark.parametrize("family,params,gpu", [("copula", {}, False), ("vae", {}, False),
                                               ("gan", {"device": "cuda"}, True)])
def test_generator_step_pods_validate_and_request_what_they_need(family, params, gpu):
    study = StudyConfig.model_validate({"name": "s", "family": family, "params": params})
    manifest = step_job(study)
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    pod = manifest["spec"]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert "cpu" in resources["requests"] and "memory" in resources["limits"]
    assert ("nvidia.com/gpu" in resources["limits"]) is gpu
    assert (pod.get("nodeSelector") == {"ouroboros/pool": "gpu"}) is gpu


def test_generator_assets_carry_the_step_tags():
    study = StudyConfig.model_validate({"name": "s", "family": "diffusion", "params": {"device": "cuda"}})
    tags = build_generator_asset(study, 0).op.tags
    assert json.loads(tags["dagster-k8s/config"]) == step_resources(study)
