"""Downstream assets: the training set built only from approved batches, and the model trained on it."""


import re

import dagster as dg
import mlflow
import mlflow.data
import polars as pl

from assets.common import OWNER, batch_key, table_metadata
from assets.lineage import gate_refusal, read_chain
from ouroboros.config import PipelineConfig
from ouroboros.downstream import primary_metric, score, train_downstream
from ouroboros.provenance import (
    SYNTHETIC,
    Origin,
    composition,
    composition_markdown,
    label,
    origin_frame,
    synthetic_share,
    with_origin,
    without_origin,
)
from ouroboros.schema import infer_schema
from resources import LakeResource, MlflowResource
from resources.mlflow_tracking import evaluate_downstream, log_dataset_input


def build_training_assets(config: PipelineConfig) -> list[dg.AssetsDefinition]:
    study = config.study(config.training.study)
    # batches are read from the lake, not passed in: a generation after a failed one was never made, and that
    # must read as "chain stopped", not as a missing input
    batch_keys = [batch_key(study.name, k) for k in range(study.generations)]

    @dg.asset(
        deps=batch_keys, group_name="training", kinds={"polars", "parquet"}, owners=[OWNER],
        description=f"Synthetic rows that may feed training: the approved batches of study {study.name} "
                    f"({config.training.generations} generations) whose whole parent chain leads back to the "
                    "current real_train. Every batch is re-checked against its stored gate verdict and lineage; "
                    "the chain stops at the first batch that fails either. Each row carries its origin in the "
                    "_origin* columns (study, generation, batch fingerprint, row).",
        output_required=False,  # not made when the gate refused the first batch: nothing approved, not a crash
    )
    def training_set(context: dg.AssetExecutionContext, lake: LakeResource):
        # only verdicts made under today's gate settings, target and real data count
        rules = lake.current_rules(config.gate.model_dump(), config.data.target)
        stored = read_chain(lake, study.name, study.generations, rules=rules)
        chain = stored.chain
        refused = {}
        if chain.refusal is not None:
            refused[chain.refusal.key] = chain.refusal.reason
            # later generations learnt from this one (or from its ancestors), so they are not trusted either
            context.log.warning(f"refused {chain.refusal.reason}")
        approved = [(k, stored.batches[k], stored.verdicts[k].batch_fingerprint) for k in chain.accepted]
        if not approved and gate_refusal(stored, study.generations) is not None:
            context.log.warning(f"training_set not made: the gate refused every batch of study {study.name}")
            return
        if not approved:
            raise dg.Failure("training_set: no approved synthetic batch to train on", metadata={
                "refused": dg.MetadataValue.json(refused)})
        if config.training.generations == "latest":
            approved = approved[-1:]
        df = pl.concat([with_origin(b, origin_frame(Origin(SYNTHETIC, fp, study.name, k), b.height))
                        for k, b, fp in approved], how="vertical_relaxed")
        origin = without_origin(df)[1]
        parts = composition(origin)
        yield dg.Output(df, metadata={**table_metadata(df),
                                       "generations": dg.MetadataValue.json([k for k, _, _ in approved]),
                                       "refused": dg.MetadataValue.json(refused),
                                       "real_train_fingerprint": stored.real_train_fingerprint or "",
                                       "synthetic_share": synthetic_share(origin),
                                       "origin": dg.MetadataValue.md(composition_markdown(parts))})

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
        training_rows, origin = without_origin(training_set)  # provenance is bookkeeping, never a feature
        parts = composition(origin)
        share = synthetic_share(origin)
        synthetic_model = train_downstream(training_rows, schema, target, **params)
        baseline_model = train_downstream(real_train, schema, target, **params)
        tstr, trtr = score(synthetic_model, real_holdout), score(baseline_model, real_holdout)
        headline, _ = primary_metric(synthetic_model.task)
        target_dir = lake.model_dir("downstream")
        lake.replace_dir(target_dir, synthetic_model.save)
        with mlflow_tracking.run("downstream_model", tags={"dagster_run_id": context.run_id,
                                                           "study": study.name}) as run:
            mlflow.log_params({"task": synthetic_model.task, "target": target, "training_rows": training_set.height,
                               "study": study.name, **{f"model.{k}": v for k, v in params.items()},
                               "training.synthetic_share": share,
                               "training.synthetic_rows": int((origin["_origin"] == SYNTHETIC).sum()),
                               **{_param(f"training.origin.{label(p, fingerprint=False)}"): p["rows"] for p in parts}})
            mlflow.log_metric("training.synthetic_share", share)
            mlflow.log_dict({"synthetic_share": share, "origin": parts}, "training_set_origin.json")
            mlflow.log_metrics({**{f"tstr.{k}": v for k, v in tstr.items()},
                                **{f"trtr.{k}": v for k, v in trtr.items()}})
            # the rows each side learned from and was scored on, as the run's dataset inputs
            log_dataset_input(mlflow.data.from_polars(training_rows, name="training_set", targets=target),
                              context="training", tags={"rows": str(training_rows.height),
                                                        "synthetic_share": str(share)})
            log_dataset_input(mlflow.data.from_polars(real_holdout, name="real_holdout", targets=target),
                              context="evaluation", tags={"rows": str(real_holdout.height)})
            model_uri = mlflow_tracking.log_downstream(synthetic_model, real_holdout.drop(target).head(5))
            # the real-trained baseline is a model too: what TRTR scored can be loaded and compared
            baseline_uri = mlflow_tracking.log_downstream(baseline_model, real_holdout.drop(target).head(5),
                                                          name="real_baseline")
            # MLflow's own evaluator beside our headline scores: standard metrics and plots of each side
            evaluate_downstream(synthetic_model, real_holdout, "eval.tstr.", model_uri)
            evaluate_downstream(baseline_model, real_holdout, "eval.trtr.", baseline_uri)
            url = mlflow_tracking.run_url(run)
        result = {"task": synthetic_model.task, "headline": headline, "tstr": tstr, "trtr": trtr,
                  "training_rows": training_set.height, "synthetic_share": share, "training_origin": parts,
                  "mlflow_run_id": run.info.run_id, "path": str(target_dir), "model_uri": model_uri,
                  "baseline_model_uri": baseline_uri}
        return dg.Output(result, metadata={
            f"tstr_{headline}": tstr.get(headline), f"trtr_{headline}": trtr.get(headline),
            "tstr": dg.MetadataValue.json(tstr), "trtr": dg.MetadataValue.json(trtr),
            "mlflow_run": dg.MetadataValue.url(url), "mlflow_run_id": run.info.run_id,
            "synthetic_share": share, "training_origin": dg.MetadataValue.md(composition_markdown(parts)),
        })

    return [training_set, downstream_model]


def _param(name: str) -> str:
    """MLflow parameter names allow letters, digits, _ - . / and spaces."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)
