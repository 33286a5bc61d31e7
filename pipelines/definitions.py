"""The Dagster code location: assets, checks, jobs, schedules, sensors and resources, assembled once."""

from __future__ import annotations

import dagster as dg

from assets.checks import build_gate_checks
from assets.generations import build_study_assets
from assets.real import build_real_assets
from assets.report import build_report_asset
from assets.training import build_training_assets
from ouroboros.config import PipelineConfig, load_config
from pipelines.sensors import build_landing_sensor
from pipelines.settings import Settings
from resources import GreatExpectationsResource, LakeIOManager, LakeResource, MlflowResource

PIPELINE_JOB = "ouroboros_pipeline"
REPORT_JOB = "collapse_report_job"


def build_definitions(config: PipelineConfig, settings: Settings) -> dg.Definitions:
    assets = [*build_real_assets(config)]
    checks = []
    for study in config.studies:
        assets.extend(build_study_assets(config, study))
        checks.extend(build_gate_checks(config, study))
    assets.extend(build_training_assets(config))
    assets.append(build_report_asset(config))

    # in-process: one import of torch per run, and no two steps racing on the sqlite MLflow store
    pipeline_job = dg.define_asset_job(
        PIPELINE_JOB, selection=dg.AssetSelection.all(), executor_def=dg.in_process_executor,
        description="Real data -> every study's generations, each batch gated -> training set -> downstream "
                    "model -> collapse report.",
    )
    report_job = dg.define_asset_job(
        REPORT_JOB, selection=dg.AssetSelection.assets("collapse_report"), executor_def=dg.in_process_executor,
        description="Rebuild the collapse report from the stored verdicts (e.g. after the gate stopped a run).",
    )
    weekly = dg.ScheduleDefinition(
        name="weekly_pipeline", job=pipeline_job, cron_schedule="0 3 * * 1",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="The whole pipeline every Monday at 03:00; turn it on in the UI (Automation).",
    )
    lake = str(settings.lake)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[pipeline_job, report_job],
        schedules=[weekly],
        sensors=[build_landing_sensor(pipeline_job, settings.landing)],
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
