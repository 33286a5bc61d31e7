"""Downstream assets: the training set built only from approved batches, and the model trained on it."""


import dagster as dg
import mlflow
import polars as pl

from assets.common import OWNER, batch_key, key_text, table_metadata
from ouroboros.config import PipelineConfig
from ouroboros.downstream import primary_metric, score, train_downstream
from ouroboros.schema import infer_schema
from ouroboros.verdict import GateRefusal, require_approved
from resources import LakeResource, MlflowResource


def build_training_assets(config: PipelineConfig) -> list[dg.AssetsDefinition]:
    study = config.study(config.training.study)
    # batches are read from the lake, not passed in: a generation after a failed one was never made, and that
    # must read as "chain stopped", not as a missing input
    batch_keys = [batch_key(study.name, k) for k in range(study.generations)]

    @dg.asset(
        deps=batch_keys, group_name="training", kinds={"polars", "parquet"}, owners=[OWNER],
        description=f"Synthetic rows that may feed training: the approved batches of study {study.name} "
                    f"({config.training.generations} generations). Every batch is re-checked against its stored "
                    "gate verdict; the chain stops at the first batch without one.",
    )
    def training_set(context: dg.AssetExecutionContext, lake: LakeResource):
        approved, refused = [], {}
        # only verdicts made under today's gate settings, target and real data count
        rules = lake.current_rules(config.gate.model_dump(), config.data.target)
        for k, asset_key in enumerate(batch_keys):
            key = key_text(asset_key)
            stored = lake.read_batch_with_verdict(asset_key.path, rules=rules)
            try:
                if stored is None:
                    raise GateRefusal(f"{key}: the batch has not been materialised")
                batch, verdict = stored
                require_approved(verdict)
            except GateRefusal as exc:
                refused[key] = str(exc)
                context.log.warning(f"refused {exc}")
                break  # later generations learned from this one, so they are not trusted either
            approved.append((k, batch))
        if not approved:
            raise dg.Failure("training_set: no approved synthetic batch to train on", metadata={
                "refused": dg.MetadataValue.json(refused)})
        if config.training.generations == "latest":
            approved = approved[-1:]
        df = pl.concat([b for _, b in approved], how="vertical_relaxed")
        return dg.Output(df, metadata={**table_metadata(df),
                                       "generations": dg.MetadataValue.json([k for k, _ in approved]),
                                       "refused": dg.MetadataValue.json(refused)})

    @dg.asset(
        group_name="training", kinds={"pytorch", "mlflow"}, owners=[OWNER],
        description="PyTorch model trained on training_set and scored on real_holdout, beside the same model "
                    "trained on real_train (train-synthetic-test-real vs the real-only baseline).",
    )
    def downstream_model(context: dg.AssetExecutionContext, training_set: pl.DataFrame, real_train: pl.DataFrame,
                         real_holdout: pl.DataFrame, lake: LakeResource,
                         mlflow_tracking: MlflowResource) -> dg.Output[dict]:
        target = config.data.target
        schema = infer_schema(real_train, target=target, id_columns=config.data.id_columns)
        params = config.downstream.model_dump()
        synthetic_model = train_downstream(training_set, schema, target, **params)
        baseline_model = train_downstream(real_train, schema, target, **params)
        tstr, trtr = score(synthetic_model, real_holdout), score(baseline_model, real_holdout)
        headline, _ = primary_metric(synthetic_model.task)
        target_dir = lake.model_dir("downstream")
        lake.replace_dir(target_dir, synthetic_model.save)
        with mlflow_tracking.run("downstream_model", tags={"dagster_run_id": context.run_id,
                                                           "study": study.name}) as run:
            mlflow.log_params({"task": synthetic_model.task, "target": target, "training_rows": training_set.height,
                               "study": study.name, **{f"model.{k}": v for k, v in params.items()}})
            mlflow.log_metrics({**{f"tstr.{k}": v for k, v in tstr.items()},
                                **{f"trtr.{k}": v for k, v in trtr.items()}})
            mlflow.log_artifacts(str(target_dir), artifact_path="model")
            url = mlflow_tracking.run_url(run)
        result = {"task": synthetic_model.task, "headline": headline, "tstr": tstr, "trtr": trtr,
                  "training_rows": training_set.height, "mlflow_run_id": run.info.run_id, "path": str(target_dir)}
        return dg.Output(result, metadata={
            f"tstr_{headline}": tstr.get(headline), f"trtr_{headline}": trtr.get(headline),
            "tstr": dg.MetadataValue.json(tstr), "trtr": dg.MetadataValue.json(trtr),
            "mlflow_run": dg.MetadataValue.url(url), "mlflow_run_id": run.info.run_id,
        })

    return [training_set, downstream_model]
