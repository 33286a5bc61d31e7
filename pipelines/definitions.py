"""The Dagster code location: assets, checks, jobs, schedules, sensors and resources, assembled once."""

from __future__ import annotations

import dagster as dg

from assets.checks import build_gate_checks
from assets.common import batch_key, generator_key
from assets.generations import build_study_assets
from assets.real import build_real_assets
from assets.report import build_report_asset
from assets.training import build_training_assets
from ouroboros.config import ConfigError, PipelineConfig, load_config
from ouroboros.generators import GeneratorError, create
from pipelines.sensors import build_alert_sensor, build_landing_sensor
from pipelines.settings import Settings
from resources import GreatExpectationsResource, LakeIOManager, LakeResource, MlflowResource

PIPELINE_JOB = "ouroboros_pipeline"
REPORT_JOB = "collapse_report_job"
APPROVED_JOB = "train_on_approved_job"
PRODUCTION_JOB = "production_job"
STUDY_SCHEDULE = "weekly_pipeline"
# runs with this tag write the real table; dagster.yaml lets one such run in progress at a time
REAL_TABLE_TAG = {"ouroboros/writes_real_table": "true"}


def check_studies(config: PipelineConfig) -> None:
    """Create each study's generator once, unfitted, so a bad family or hyperparameter fails at load time."""
    for study in config.studies:
        try:
            create(study.family, seed=study.seed, **study.params)
        except GeneratorError as exc:
            raise ConfigError(f"study {study.name!r}: {exc}") from exc


def build_definitions(config: PipelineConfig, settings: Settings) -> dg.Definitions:
    check_studies(config)
    assets = [*build_real_assets(config)]
    checks = []
    for study in config.studies:
        assets.extend(build_study_assets(config, study))
        checks.extend(build_gate_checks(config, study))
    assets.extend(build_training_assets(config))
    assets.append(build_report_asset(config))

    # in-process: one import of torch per run, and no two steps racing on the sqlite MLflow store
    pipeline_job = dg.define_asset_job(
        PIPELINE_JOB, selection=dg.AssetSelection.all(), executor_def=dg.in_process_executor, tags=REAL_TABLE_TAG,
        description="The full collapse study: real data -> every study's generations, each batch gated -> "
                    "training set -> downstream model -> collapse report.",
    )
    report_job = dg.define_asset_job(
        REPORT_JOB, selection=dg.AssetSelection.assets("collapse_report"), executor_def=dg.in_process_executor,
        description="Rebuild the collapse report from the stored verdicts (e.g. after the gate stopped a run).",
    )
    approved_job = dg.define_asset_job(
        APPROVED_JOB, selection=dg.AssetSelection.assets("training_set", "downstream_model", "collapse_report"),
        executor_def=dg.in_process_executor,
        description="After the gate stopped a chain: train on the batches it approved (training_set re-checks every "
                    "stored verdict and stops at the first refused generation) and rebuild the report.",
    )
    production = config.training.study
    production_job = dg.define_asset_job(
        PRODUCTION_JOB, executor_def=dg.in_process_executor, tags=REAL_TABLE_TAG,
        selection=dg.AssetSelection.assets("real_ingest", "real_data", "real_train", "real_holdout", "real_contract",
                                           generator_key(production, 0), batch_key(production, 0),
                                           "training_set", "downstream_model"),
        description=f"On newly landed real data: ingest the file (quarantine stops the run), retrain the "
                    f"production generator ({production} generation 0) on the new real table version, sample and "
                    "gate a new batch; only if every blocking check passes, refresh training_set and "
                    "downstream_model.",
    )
    weekly = dg.ScheduleDefinition(
        name=STUDY_SCHEDULE, job=pipeline_job, cron_schedule="0 3 * * 1",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="The full collapse study (all studies) every Monday at 03:00; turn it on in the UI "
                    "(Automation -> weekly_pipeline -> toggle).",
    )
    lake = str(settings.lake)
    return dg.Definitions(
        # also the executor of runs launched from the UI ("Materialize"): one process, one torch import, and no
        # two steps racing on the sqlite MLflow store (the default would start a process per step)
        executor=dg.in_process_executor,
        assets=assets,
        asset_checks=checks,
        jobs=[pipeline_job, report_job, approved_job, production_job],
        schedules=[weekly],
        sensors=[build_landing_sensor(production_job, settings.landing, config.landing.settle_seconds,
                                      config.landing.max_attempts),
                 build_alert_sensor(settings.alert_webhook or config.landing.alert_webhook)],
        resources={
            "io_manager": LakeIOManager(root=lake),
            "lake": LakeResource(root=lake),
            "mlflow_tracking": MlflowResource(tracking_uri=settings.mlflow_tracking_uri,
                                              artifact_root=str(settings.mlflow_artifacts)),
            "gx_context": GreatExpectationsResource(project_root=str(settings.gx_root)),
        },
    )


def load_definitions() -> dg.Definitions:
    settings = Settings.from_env()
    return build_definitions(load_config(settings.config_path), settings)


defs = load_definitions()
