"""One asset group per study: generation k's generator and synthetic batch, k = 0..N-1.

Generation 0 learns from real_train; generation k from the pool its mixing policy builds out of
earlier approved batches (and real rows). Every input batch is re-checked against its stored gate
verdict before a generator may learn from it, so a batch that failed never feeds the chain, even
when a generation is materialised on its own in a later run.
"""


import json
import time

import dagster as dg
import mlflow
import polars as pl

import ouroboros.collapse  # noqa: F401 - registers the "gaussian" reference family
from assets.common import OWNER, batch_key, generator_key, key_text, table_metadata
from assets.progress import FitProgress
from ouroboros.privacy.chain import chain_entry, parents_in_pool
from ouroboros.privacy.report import PrivacyReport
from ouroboros.config import PipelineConfig, StudyConfig
from ouroboros.generators import create, load
from ouroboros.policies import build_pool
from ouroboros.verdict import GateRefusal, fingerprint, require_approved
from resources import LakeResource, MlflowResource
from resources.lake import asset_file


def pool_inputs(study: StudyConfig, generation: int) -> dict[str, dg.AssetIn]:
    """The assets generation k reads, by policy: the graph shows exactly what each generation learns from."""
    if generation == 0:
        return {"real_train": dg.AssetIn("real_train")}
    previous = {f"batch_g{generation - 1}": dg.AssetIn(batch_key(study.name, generation - 1))}
    if study.policy == "replace":
        return previous
    if study.policy == "anchor":
        return {"real_train": dg.AssetIn("real_train"), **previous}
    earlier = {f"batch_g{j}": dg.AssetIn(batch_key(study.name, j)) for j in range(generation)}
    return {"real_train": dg.AssetIn("real_train"), **earlier}


KINDS = {"copula": "scipy", "gaussian": "numpy"}  # every other family is a PyTorch model


def _parent_records(lake: LakeResource, study: StudyConfig, pool) -> dict[int, dict]:
    """Stored records of the generations whose batches are in the pool (they carry their chain's ε)."""
    out = {}
    for j in parents_in_pool(pool.composition):
        path = asset_file(lake.root, generator_key(study.name, j).path, ".json")
        if path.exists():
            out[j] = json.loads(path.read_text())
    return out


def privacy_fields(generation: int, privacy: dict | None, composition: dict, parents: dict[int, dict]) -> dict:
    return {"privacy": privacy, **chain_entry(generation, privacy, composition, parents)}


def log_privacy(privacy: dict | None, fields: dict) -> None:
    if privacy:
        mlflow.log_params({f"dp.{k}": privacy[k] for k in ("epsilon_requested", "delta", "max_grad_norm",
                                                           "noise_multiplier", "accountant")})
        mlflow.log_metrics({k: v for k, v in PrivacyReport.from_dict(privacy).metrics().items()})
    mlflow.log_param("dp", bool(privacy))
    if fields["chain_epsilon"] is not None:
        mlflow.log_metric("dp.chain_epsilon", fields["chain_epsilon"])


def privacy_metadata(privacy: dict | None, fields: dict) -> dict:
    chain = fields["chain_epsilon"]
    out = {"dp": bool(privacy), "chain_epsilon": round(chain, 4) if chain is not None else "unbounded (no DP)"}
    if privacy:
        out.update({f"dp_{k}": round(float(privacy[k]), 6) for k in (
            "epsilon_requested", "epsilon_spent", "epsilon_training", "epsilon_preprocessing", "delta",
            "noise_multiplier", "max_grad_norm", "sample_rate")})
        out["dp_columns"] = dg.MetadataValue.json(privacy["columns"])
    return out


def build_generator_asset(study: StudyConfig, generation: int,
                          id_columns: tuple[str, ...] = ()) -> dg.AssetsDefinition:
    ins = pool_inputs(study, generation)

    @dg.asset(
        key=generator_key(study.name, generation), ins=ins, group_name=study.name,
        kinds={KINDS.get(study.family, "pytorch"), "mlflow"}, owners=[OWNER],
        description=f"{study.family} generator, generation {generation} of study {study.name} "
                    f"({study.policy} policy); trained on "
                    + ("real_train." if generation == 0 else f"{', '.join(ins)} (approved batches only)."),
        tags={"family": study.family, "policy": study.policy},
    )
    def generator(context: dg.AssetExecutionContext, lake: LakeResource, mlflow_tracking: MlflowResource,
                  **inputs: pl.DataFrame) -> dg.Output[dict]:
        real = inputs.get("real_train")
        batches, parents = [], {}
        for j in range(generation):
            name = f"batch_g{j}"
            if name not in inputs:
                batches.append(pl.DataFrame())  # not used by this policy
                continue
            key = key_text(batch_key(study.name, j))
            fp = fingerprint(inputs[name])
            try:
                require_approved(lake.read_verdict(key, fp))
            except GateRefusal as exc:
                raise dg.Failure(f"generation {generation} refuses its training pool: {exc}") from exc
            batches.append(inputs[name])
            parents[key] = fp
        if real is not None:
            parents["real_train"] = fingerprint(real)
        pool = build_pool(study.policy, generation, real if real is not None else pl.DataFrame(), batches,
                          lam=study.lam, seed=study.seed)
        seed = study.seed * 1000 + generation
        gen = create(study.family, seed=seed, id_columns=id_columns, **study.params)
        run_name = f"{study.name}/gen_{generation}"
        # the real-table (Delta) version real_train was cut from: any model traces back to exact real rows
        lineage = {"real_table_version": ver} if (ver := lake.real_table_version()) is not None else {}
        with mlflow_tracking.run(run_name, tags={"study": study.name, "family": study.family,
                                                  "dagster_run_id": context.run_id}) as run:
            mlflow.log_params({"family": study.family, "generation": generation, "study": study.name,
                               "policy": study.policy, "parent_generation": generation - 1 if generation else "real",
                               "seed": seed, "pool_rows": pool.rows.height, **lineage,
                               **{f"pool.{k}": v for k, v in pool.composition.items()},
                               **{f"param.{k}": v for k, v in study.params.items()}})

            epochs = gen.params.get("epochs")  # None for families without epochs (copula: one pass)
            with FitProgress(run_name, epochs if isinstance(epochs, int) else None, context.log.info) as shown:

                def progress(epoch: int, losses: dict[str, float]) -> None:
                    mlflow.log_metrics({f"train.{k}": float(v) for k, v in losses.items()}, step=epoch)
                    shown(epoch, losses)  # terminal bar per epoch; a run-log line every tenth of the fit

                started = time.perf_counter()
                gen.fit(pool.rows, callback=progress)
                fit_seconds = time.perf_counter() - started
            mlflow.log_metric("fit_seconds", fit_seconds)
            # dp hook: ε requested/spent, δ, noise and clipping as params and metrics; the chain's ε in the record
            privacy = privacy_fields(generation, gen.privacy, pool.composition, _parent_records(lake, study, pool))
            log_privacy(gen.privacy, privacy)
            target = lake.generator_dir(study.name, generation)
            lake.replace_dir(target, gen.save)
            model_uri = mlflow_tracking.log_generator(target)
            url = mlflow_tracking.run_url(run)
        record = {"study": study.name, "family": study.family, "generation": generation, "path": str(target),
                  "seed": seed, "mlflow_run_id": run.info.run_id, "model_uri": model_uri,
                  "pool": pool.composition, "parents": parents, **lineage, **privacy}
        return dg.Output(record, metadata={
            "mlflow_run": dg.MetadataValue.url(url), "mlflow_run_id": run.info.run_id, "model_uri": model_uri,
            "fit_seconds": round(fit_seconds, 3), "pool_rows": pool.rows.height,
            "pool_composition": dg.MetadataValue.json(pool.composition), "path": dg.MetadataValue.path(str(target)),
            **lineage, **privacy_metadata(gen.privacy, privacy),
        })

    return generator


def build_batch_asset(study: StudyConfig, generation: int, default_rows: int | None) -> dg.AssetsDefinition:
    @dg.asset(
        key=batch_key(study.name, generation), ins={"generator": dg.AssetIn(generator_key(study.name, generation))},
        group_name=study.name, kinds={"polars", "parquet"}, owners=[OWNER],
        description=f"Synthetic batch of generation {generation} ({study.name}); may feed training only "
                    "after its blocking gate checks pass.",
    )
    def batch(context: dg.AssetExecutionContext, generator: dict, real_train: pl.DataFrame) -> dg.Output[pl.DataFrame]:
        gen = load(generator["path"])
        rows = study.rows or default_rows or real_train.height
        df = gen.sample(rows, seed=generator["seed"] + 7919)
        context.log.info(f"sampled {df.height} rows from {generator['path']}")
        return dg.Output(df, metadata={**table_metadata(df), "fingerprint": fingerprint(df),
                                       "mlflow_run_id": generator["mlflow_run_id"]})

    return batch


def build_study_assets(config: PipelineConfig, study: StudyConfig) -> list[dg.AssetsDefinition]:
    out = []
    for k in range(study.generations):
        out.append(build_generator_asset(study, k, tuple(config.data.id_columns)))
        out.append(build_batch_asset(study, k, study.rows))
    return out
