"""The Dagster code location: assets, checks, jobs, schedules, sensors and resources, assembled once."""

from __future__ import annotations

import dagster as dg

from assets.checks import build_gate_checks
from assets.common import batch_key, generator_key
from assets.generations import build_study_assets
from assets.real import build_real_assets
from assets.registry import approved_key, build_registry_assets
from assets.report import build_report_asset
from assets.training import build_training_assets
from ouroboros.chain.bakeoff import check_params
from ouroboros.config import AUTO, ConfigError, PipelineConfig, load_config
from ouroboros.generators import GeneratorError, create
from pipelines.sensors import (
    build_alert_sensor,
    build_landing_sensor,
    build_refusal_sensor,
    build_retrain_sensor,
    landing_sensor_for,
)
from pipelines.settings import Settings
from resources import GreatExpectationsResource, LakeIOManager, LakeResource, MlflowResource

PIPELINE_JOB = "ouroboros_pipeline"
REPORT_JOB = "collapse_report_job"
APPROVED_JOB = "train_on_approved_job"
PRODUCTION_JOB = "production_job"
INGEST_JOB = "ingest_job"
STUDY_SCHEDULE = "weekly_pipeline"
# Dagster's name for the sensor that evaluates automation conditions (automation.chain: eager defines it here)
DEFAULT_AUTOMATION_CONDITION_SENSOR = "default_automation_condition_sensor"
# runs with this tag append landed files to the real table (ingest_job); dagster.yaml lets one such run in
# progress at a time, because the table is append-only and each file's commit must see the one before
REAL_TABLE_TAG = {"ouroboros/writes_real_table": "true"}
# runs with this tag train (production_job, ouroboros_pipeline); dagster.yaml lets one in progress at a time.
# A different tag from the ingest's, so an ingest never queues behind a training run
TRAINING_TAG = {"ouroboros/trains": "true"}


def check_studies(config: PipelineConfig) -> None:
    """Create each study's generator once, unfitted, so a bad family or hyperparameter fails at load time."""
    for study in config.studies:
        try:
            if study.family == AUTO:  # every candidate, with the params it takes
                check_params(study.candidates, study.params)
                continue
            create(study.family, seed=study.seed, **study.params)
        except GeneratorError as exc:
            raise ConfigError(f"study {study.name!r}: {exc}") from exc


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    """in_process (default): one import of torch per run, no two steps racing on the sqlite MLflow store;
    multiprocess (the stack): independent studies train in parallel, at most `max_concurrent` steps at once;
    k8s: every step its own pod (the Helm deployment; resource requests from each asset's tags)."""
    if settings.executor == "multiprocess":
        return dg.multiprocess_executor.configured({"max_concurrent": settings.max_concurrent})
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor  # only in the image (extra `k8s`)

        return k8s_job_executor.configured({"max_concurrent": settings.max_concurrent})
    return dg.in_process_executor


def build_image_definitions(config: PipelineConfig, settings: Settings) -> dg.Definitions:
    """data.kind: images: the image graph (assets/images.py) on the same lake and MLflow store."""
    from assets.images import build_image_assets

    assets, checks = build_image_assets(config, settings.landing)
    lake = str(settings.lake)
    return dg.Definitions(
        assets=assets, asset_checks=checks, executor=executor_for(settings),
        jobs=[dg.define_asset_job(PIPELINE_JOB, selection=dg.AssetSelection.all(), executor_def=executor_for(settings),
                                  description="Real images -> each study's generations, each batch gated -> report."),
              dg.define_asset_job(REPORT_JOB, selection=dg.AssetSelection.assets("image_report"),
                                  executor_def=executor_for(settings),
                                  description="Rebuild the image report from the stored verdicts.")],
        resources={"io_manager": LakeIOManager(root=lake), "lake": LakeResource(root=lake),
                   "mlflow_tracking": MlflowResource(tracking_uri=settings.mlflow_tracking_uri,
                                                     artifact_root=settings.mlflow_artifact_uri,
                                                     ui_url=settings.mlflow_ui)},
    )


def pipeline_resources(settings: Settings) -> dict:
    """The resources every table graph (flat or dataset) runs with: the lake, its IO manager, MLflow and GX."""
    lake = str(settings.lake)
    return {
        "io_manager": LakeIOManager(root=lake),
        "lake": LakeResource(root=lake),
        "mlflow_tracking": MlflowResource(tracking_uri=settings.mlflow_tracking_uri,
                                          artifact_root=settings.mlflow_artifact_uri, ui_url=settings.mlflow_ui),
        "gx_context": GreatExpectationsResource(project_root=str(settings.gx_root)),
    }


def build_dataset_definitions(config: PipelineConfig, settings: Settings) -> dg.Definitions:
    """data.tables: the dataset graph (assets/datasets.py) on the same lake, MLflow store and GX context: per-table
    real, split and contract assets, each study's generators and dataset batches with checks per table and links,
    the dataset report; the landing sensor watches landing/<table>/."""
    from assets.datasets import REPORT, build_dataset_assets

    try:
        assets, checks = build_dataset_assets(config)
    except GeneratorError as exc:
        raise ConfigError(f"{settings.config_path}: {exc}") from exc
    executor = executor_for(settings)
    lake = str(settings.lake)
    roots = [t for t, spec in config.data.tables.items() if spec.parent is None]
    pipeline_job = dg.define_asset_job(
        PIPELINE_JOB, selection=dg.AssetSelection.all(), executor_def=executor, tags=TRAINING_TAG,
        description="The dataset study: real tables -> entity split -> every study's generations, each dataset batch "
                    "gated per table and on its links -> dataset report.")
    report_job = dg.define_asset_job(REPORT_JOB, selection=dg.AssetSelection.assets(REPORT), executor_def=executor,
                                     description="Rebuild the dataset report from the stored verdicts.")
    ingest_job = dg.define_asset_job(
        INGEST_JOB, selection=dg.AssetSelection.assets("real_ingest"), tags=REAL_TABLE_TAG,
        executor_def=executor if settings.executor == "k8s" else dg.in_process_executor,
        description="Triage one landed file of one table (landing/<table>/): append it to that table, let a child "
                    "file wait for its parents, or quarantine it with a reason file.")
    weekly = dg.ScheduleDefinition(name=STUDY_SCHEDULE, job=pipeline_job, cron_schedule="0 3 * * 1",
                                   default_status=dg.DefaultScheduleStatus.STOPPED,
                                   description="The dataset study every Monday at 03:00 (turn it on in the UI).")
    return dg.Definitions(
        executor=executor, assets=dg.with_source_code_references(assets), asset_checks=checks,
        jobs=[pipeline_job, report_job, ingest_job], schedules=[weekly],
        sensors=[landing_sensor_for(ingest_job, settings.landing, config, LakeResource(root=lake)),
                 # a new state of the tables (an accepted file) reruns the dataset study once, on the newest one
                 build_retrain_sensor(pipeline_job, real_asset=f"real_data/{roots[0]}",
                                      version_field="dataset_version"),
                 build_alert_sensor(settings.alert_webhook or config.landing.alert_webhook)],
        resources=pipeline_resources(settings),
    )


def build_definitions(config: PipelineConfig, settings: Settings) -> dg.Definitions:
    if config.data.tables is not None:
        return build_dataset_definitions(config, settings)
    if config.data.kind == "images":
        return build_image_definitions(config, settings)
    check_studies(config)
    assets = [*build_real_assets(config)]
    checks = []
    for study in config.studies:
        assets.extend(build_study_assets(config, study))
        checks.extend(build_gate_checks(config, study))
    assets.extend(build_training_assets(config))
    assets.extend(build_registry_assets(config))
    assets.append(build_report_asset(config))

    executor = executor_for(settings)
    pipeline_job = dg.define_asset_job(
        PIPELINE_JOB, selection=dg.AssetSelection.all(), executor_def=executor, tags=TRAINING_TAG,
        description="The full collapse study: real data -> every study's generations, each batch gated -> "
                    "training set -> downstream model -> collapse report.",
    )
    report_job = dg.define_asset_job(
        REPORT_JOB, executor_def=executor,
        selection=dg.AssetSelection.assets("collapse_report", *(approved_key(s.name) for s in config.studies)),
        description="Rebuild the collapse report from the stored verdicts (e.g. after the gate stopped a run).",
    )
    approved_job = dg.define_asset_job(
        APPROVED_JOB, selection=dg.AssetSelection.assets("training_set", "downstream_model", "downstream_champion",
                                                         "collapse_report",
                                                         *(approved_key(s.name) for s in config.studies)),
        executor_def=executor,
        description="After the gate stopped a chain: train on the batches it approved (training_set re-checks every "
                    "stored verdict and stops at the first refused generation) and rebuild the report.",
    )
    # production rebuilds the training study's whole chain: after new real data every generation descends from
    # the new real_train, so `training.generations: all` and `latest` both train on batches of today's data
    production = config.study(config.training.study)
    chain_keys = [key for k in range(production.generations)
                  for key in (generator_key(production.name, k), batch_key(production.name, k))]
    # the landing sensor's job: real_ingest alone, a few seconds per file, whatever is training. In-process
    # (no step processes to start for one light step) except on k8s, where steps need the step pods' volumes
    ingest_job = dg.define_asset_job(
        INGEST_JOB, selection=dg.AssetSelection.assets("real_ingest"), tags=REAL_TABLE_TAG,
        executor_def=executor if settings.executor == "k8s" else dg.in_process_executor,
        description="Triage one landed file: validate it and append it to the real table as one Delta commit, or "
                    "quarantine it with a reason file. Started by landing_sensor per file; no training "
                    "(retrain_on_new_data starts production_job once per new table version).",
    )
    # real_ingest stays in production_job: without a landed_file it only makes sure the real table exists, and
    # with one (a run launched by hand) it ingests that file first, as before ingest_job existed
    production_job = dg.define_asset_job(
        PRODUCTION_JOB, executor_def=executor, tags=TRAINING_TAG,
        selection=dg.AssetSelection.assets("real_ingest", "real_data", "real_train", "real_holdout", "real_contract",
                                           *chain_keys, approved_key(production.name), "training_set",
                                           "downstream_model", "downstream_champion"),
        description=f"On a new real table version (started by retrain_on_new_data): make sure the table exists "
                    f"(or ingest a landed_file given in run config; quarantine stops the run), then rebuild every "
                    f"generation of the production study {production.name} ({production.generations} in all) on the new "
                    "real table version, each batch gated; only if every blocking check passes, refresh "
                    "training_set and downstream_model (and move the registry aliases), which accept a batch only "
                    "when its whole parent chain leads back to the current real_train.",
    )
    weekly = dg.ScheduleDefinition(
        name=STUDY_SCHEDULE, job=pipeline_job, cron_schedule="0 3 * * 1",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="The full collapse study (all studies) every Monday at 03:00; turn it on in the UI "
                    "(Automation -> weekly_pipeline -> toggle).",
    )
    automation = []
    if config.automation.chain != "off":
        # the chain's generators and batches carry their conditions (assets.generations.chain_condition); this is
        # the sensor that evaluates them, under Dagster's default name, defined here so that its runs carry the
        # training tag (one training run at a time, dagster.yaml) as production_job's do. Stopped until turned on.
        # The jobs stay: bin/run executes ouroboros_pipeline, the weekly schedule runs it, retrain_on_new_data
        # runs production_job (one retrain per table version, which eager cannot say); this only carries a chain
        # on, a generation at a time, after a batch its gate approved, e.g. one re-made from the UI
        chain = [key for s in config.studies for k in range(s.generations)
                 for key in (generator_key(s.name, k), batch_key(s.name, k))]
        automation.append(dg.AutomationConditionSensorDefinition(
            DEFAULT_AUTOMATION_CONDITION_SENSOR, target=dg.AssetSelection.assets(*chain), run_tags=TRAINING_TAG,
            default_status=dg.DefaultSensorStatus.STOPPED,
            description="automation.chain: eager: requests a chain's next generator (and its batch) once its parent "
                        "batch is new and every blocking gate check of it passed; a refused batch's child is never "
                        "requested. Its runs carry the training tag, so they queue behind a training run."))
    return dg.Definitions(
        # also the executor of runs launched from the UI ("Materialize"): in-process by default (one torch import,
        # no two steps racing on the sqlite MLflow store); the stack's multiprocess executor when configured
        executor=executor,
        # each asset links to the file and line that defines it (the UI's "code references")
        assets=dg.with_source_code_references(assets),
        asset_checks=checks,
        jobs=[pipeline_job, report_job, approved_job, production_job, ingest_job],
        schedules=[weekly],
        sensors=[build_landing_sensor(ingest_job, settings.landing, config.landing.settle_seconds,
                                      config.landing.max_attempts),
                 build_retrain_sensor(production_job, watch=(PIPELINE_JOB,)),
                 build_alert_sensor(settings.alert_webhook or config.landing.alert_webhook),
                 *([build_refusal_sensor(settings.alert_webhook or config.landing.alert_webhook)]
                   if settings.refusal_alerts else []),
                 *automation],
        resources=pipeline_resources(settings),
    )


def load_definitions() -> dg.Definitions:
    settings = Settings.from_env()
    return build_definitions(load_config(settings.config_path), settings)


defs = load_definitions()


# Entry points for executors that run steps in other processes (dg.reconstructable needs module-level functions):
# each step process imports this module and so builds its own Settings from its own environment.
def pipeline_job() -> dg.JobDefinition:
    return defs.resolve_job_def(PIPELINE_JOB)


def approved_job() -> dg.JobDefinition:
    return defs.resolve_job_def(APPROVED_JOB)


def report_job() -> dg.JobDefinition:
    return defs.resolve_job_def(REPORT_JOB)
