"""One asset group per study: generation k's generator and synthetic batch, k = 0..N-1.

Generation 0 learns from real_train; generation k from the pool its mixing policy builds out of
earlier approved batches (and real rows). Every input batch is re-checked against its stored gate
verdict and its lineage before a generator may learn from it (`assets.lineage.read_chain`), so a batch
that failed, or one whose ancestors were made from another real_train, never feeds the chain, even
when a generation is materialised on its own in a later run.

The generator asset is thin: it reads and checks its inputs and calls one framework-free function
(`ouroboros.chain.generation.fit_generation`: the policy's pool, then the step with its budget, the
`family: auto` bake-off, repair at generation 0 and mitigation at k >= 1), then writes and logs what it
returned. The batch asset draws with `ouroboros.chain.generation.draw_generation_batch`.

Each batch records its lineage (its generator's parents by fingerprint, the real-table version) with its
verdict; each generator stores its pool's row origins as a sidecar aligned by row
(`lake/provenance/<study>/generator_g<k>.pool.parquet`), written only with the fitted generator, so a fit
that dies leaves none.
"""


import json

import dagster as dg
import mlflow
import mlflow.data
import polars as pl
from mlflow.data.delta_dataset_source import DeltaDatasetSource

import ouroboros.collapse  # noqa: F401 - registers the "gaussian" reference family
from assets.common import OWNER, batch_key, generator_key, key_text, table_metadata
from assets.lineage import gate_refusal, read_chain
from assets.progress import FitProgress
from ouroboros.chain.generation import draw_generation_batch, fit_generation
from ouroboros.chain.observe import observed_chain
from ouroboros.chain.step import StepResult, step_seed
from ouroboros.config import AUTO, GateConfig, PipelineConfig, StudyConfig
from ouroboros.generators import GeneratorError, load
from ouroboros.lineage import REAL_TRAIN
from ouroboros.policies import source_name
from ouroboros.privacy.chain import chain_entry, parents_in_pool
from ouroboros.privacy.report import PrivacyReport
from ouroboros.provenance import REAL, SYNTHETIC, Origin, composition, composition_markdown
from ouroboros.verdict import GateRefusal, fingerprint
from resources import LakeResource, MlflowResource
from resources.lake import asset_file, atomic_write_parquet
from resources.mlflow_tracking import log_dataset_input


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


GPU_POOL = {"node_selector": {"ouroboros/pool": "gpu"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}


def step_resources(study: StudyConfig) -> dict:
    """Per-step pod settings for the k8s_job_executor (tag `dagster-k8s/config`; other executors ignore it):
    the copula and gaussian fit in numpy on a small pod, a PyTorch family asks for more CPU and memory, and one
    with `device: cuda` for a GPU on the GPU node pool."""
    if study.family in KINDS:
        requests, limits, pod = {"cpu": "1", "memory": "4Gi"}, {"memory": "8Gi"}, {}
    elif str(study.params.get("device", "cpu")).startswith("cuda"):
        requests, limits, pod = {"cpu": "4", "memory": "16Gi"}, {"memory": "32Gi", "nvidia.com/gpu": "1"}, GPU_POOL
    else:
        requests, limits, pod = {"cpu": "4", "memory": "8Gi"}, {"memory": "16Gi"}, {}
    return {"container_config": {"resources": {"requests": requests, "limits": limits}}, "pod_spec_config": pod}


def log_pool_inputs(lake: LakeResource, study: StudyConfig, generation: int, rows: pl.DataFrame,
                    composition: dict, parents: dict[str, str], real: pl.DataFrame | None) -> None:
    """Record the generation's inputs as MLflow datasets: the real table version real_train was cut from, and
    the training pool itself with its composition (how many rows from real data and from each batch)."""
    version = lake.real_table_version()
    real_source = DeltaDatasetSource(path=lake.real_table_uri(), delta_table_version=version)
    if real is not None:
        log_dataset_input(mlflow.data.from_polars(real, source=real_source, name=f"real_train@v{version}"),
                          context="real", tags={"real_table_version": str(version), "rows": str(real.height),
                                                "fingerprint": parents["real_train"]})
    tags = {f"pool.{k}": str(v) for k, v in composition.items()}
    tags.update({f"parent.{k}": v for k, v in parents.items()})
    log_dataset_input(mlflow.data.from_polars(rows, source=real_source,
                                              name=f"{study.name}/pool_g{generation}"),
                      context="training", tags={"rows": str(rows.height), **tags})


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


def generator_inputs(study: StudyConfig, generation: int) -> dict[str, dg.AssetIn]:
    """The pool's inputs, plus real_holdout at generation 0 of an `auto` study: the step re-gates a refused
    attempt on it (repair). The family itself is chosen on real_train alone (ouroboros.chain.bakeoff). At
    k >= 1 of a study with `mitigation`, real_train and real_holdout: every attempt is gated, anchor adds real
    rows and verify's verifier learns from real_train (ouroboros.chain.mitigation)."""
    ins = pool_inputs(study, generation)
    if generation == 0 and study.family == AUTO:
        ins["real_holdout"] = dg.AssetIn("real_holdout")
    if generation >= 1 and study.mitigation:
        ins.setdefault("real_train", dg.AssetIn("real_train"))
        ins["real_holdout"] = dg.AssetIn("real_holdout")
    return ins


def chosen_family(lake: LakeResource, study: StudyConfig, generation: int) -> str | None:
    """Under `family: auto`, generations k >= 1 keep the family generation 0 chose (its stored record)."""
    if study.family != AUTO or generation == 0:
        return None
    path = asset_file(lake.root, generator_key(study.name, 0).path, ".json")
    return json.loads(path.read_text()).get("family") if path.exists() else None


def log_step(result: StepResult) -> None:
    """MLflow: the step's choices as params, its timings as metrics, the bake-off and attempts as artifacts."""
    mlflow.log_params({"chosen_family": result.family, "requested_family": result.requested_family,
                       "epochs": result.plan.epochs if result.plan.epochs is not None else "none",
                       "train_rows": result.plan.rows, "budget_cut": result.plan.cut or "none",
                       "holdout_looks": result.holdout_looks, "attempts": len(result.attempts)})
    mlflow.log_metrics({"fit_seconds": result.fit_seconds, "step_seconds": result.total_seconds})
    if result.bakeoff or len(result.attempts) > 1:
        mlflow.log_text(result.markdown(), "bakeoff.md")
        mlflow.log_dict(result.summary(), "bakeoff.json")


OBSERVED_NOTE = ("observe mode: the gate scores this batch but does not block the chain; it never reaches "
                 "training_set or an approved alias")


def mode_metadata(study: StudyConfig, result: StepResult) -> dict:
    """What the UI shows of the gate's mode and of the mitigation that made the generation pass."""
    out = {"gate_mode": study.gate_mode}
    if study.gate_mode == "observe":
        out["observed"] = OBSERVED_NOTE
    if study.mitigation:
        out["mitigation"] = result.mitigation or ("none needed" if result.passed else
                                                  "none passed" if result.passed is False else "not gated")
    return out


def chain_condition(config: PipelineConfig | None, study: StudyConfig) -> dg.AutomationCondition | None:
    """`automation.chain: eager`: the condition of each generator and batch of the study's chain (None when off).

    eager(): made when a parent is newly updated (not while one is missing or in progress). Under gate_mode block,
    also all_deps_blocking_checks_passed(): every blocking check of every parent evaluated against its latest
    materialisation and passed. Dagster reads a check's stored status, which is FAILED for any evaluation with
    passed=False whatever its severity, so a refusal (severity WARN, `verdict: refused`; assets/checks.py) or a
    batch re-made and not judged yet never satisfies it, and the refused batch's child is never requested. An
    observe-mode chain is not stopped by its gate (ouroboros.chain.observe), so it carries eager() alone.
    """
    if config is None or config.automation.chain == "off":
        return None
    eager = dg.AutomationCondition.eager()
    if study.gate_mode == "observe":
        return eager
    return eager & dg.AutomationCondition.all_deps_blocking_checks_passed()


def build_generator_asset(study: StudyConfig, generation: int, id_columns: tuple[str, ...] = (),
                          config: PipelineConfig | None = None) -> dg.AssetsDefinition:
    ins = generator_inputs(study, generation)
    family = "auto-chosen" if study.family == AUTO else study.family

    @dg.asset(
        key=generator_key(study.name, generation), ins=ins, group_name=study.name,
        kinds={KINDS.get(study.family, "pytorch"), "mlflow"}, owners=[OWNER],
        description=f"{family} generator, generation {generation} of study {study.name} "
                    f"({study.policy} policy); trained on "
                    + ("real_train." if generation == 0 else f"{', '.join(pool_inputs(study, generation))} "
                       "(approved batches only).")
                    + (" The family is chosen by a bake-off on a validation split of real_train; real_holdout "
                       "only re-gates a refused attempt (repair)." if "real_holdout" in ins else ""),
        tags={"family": study.family, "policy": study.policy},
        op_tags={"dagster-k8s/config": step_resources(study)},
        output_required=False,  # not made when the gate refused an input batch: Dagster skips what follows
        automation_condition=chain_condition(config, study),
    )
    def generator(context: dg.AssetExecutionContext, lake: LakeResource, mlflow_tracking: MlflowResource,
                  **inputs: pl.DataFrame):
        real = inputs.get("real_train")
        batches, parents = [], {}
        origins: dict[str, Origin] = {}
        # the stored chain up to this generation: each input must be approved and descend from today's real_train
        # only verdicts made under today's gate settings, target and real data count (as in training_set): a batch
        # approved before `gate:` was tightened is judged again before a generation may learn from it
        rules = lake.current_rules(config.gate.model_dump(), config.data.target) if config and generation else None
        stored = read_chain(lake, study.name, generation, real, rules=rules) if generation else None
        if stored is not None and study.gate_mode == "observe":
            # observe mode: the lineage must hold, the gate's verdicts do not stop the chain (ouroboros.chain.observe)
            stored.chain = observed_chain([key_text(batch_key(study.name, j)) for j in range(generation)],
                                          stored.verdicts, stored.real_train_fingerprint, lake.real_table_version())
        if generation and (refused := gate_refusal(stored, generation)) is not None:
            # a refusal is an outcome: the check already logged it; this generation is simply not made
            # said at INFO: a run that asked for this generation alone has no other line saying why it is absent
            context.log.info(f"generation {generation} not made: {refused.reason}")
            return
        for j in range(generation):
            name = f"batch_g{j}"
            if name not in inputs:
                batches.append(pl.DataFrame())  # not used by this policy
                continue
            key = key_text(batch_key(study.name, j))
            fp = fingerprint(inputs[name])
            try:
                stored.chain.require(j, key)
                if stored.verdicts[j].batch_fingerprint != fp:
                    raise GateRefusal(f"{key}: the batch changed while this generation was reading it")
            except GateRefusal as exc:
                raise dg.Failure(f"generation {generation} refuses its training pool: {exc}") from exc
            batches.append(inputs[name])
            parents[key] = fp
            origins[source_name(j)] = Origin(SYNTHETIC, fp, study.name, j)
        if real is not None:
            parents[REAL_TRAIN] = fingerprint(real)
            origins["real"] = Origin(REAL, parents[REAL_TRAIN])
        run_name = f"{study.name}/gen_{generation}"
        # the real-table (Delta) version real_train was cut from: any model traces back to exact real rows
        lineage = {"real_table_version": ver} if (ver := lake.real_table_version()) is not None else {}
        gate = config.gate if config else GateConfig()
        with mlflow_tracking.run(run_name, tags={"study": study.name, "family": study.family,
                                                  "dagster_run_id": context.run_id}) as run:
            mlflow.log_params({"family": study.family, "generation": generation, "study": study.name,
                               "policy": study.policy, "parent_generation": generation - 1 if generation else "real",
                               "seed": step_seed(study, generation), **lineage,
                               "budget_seconds": study.budget_seconds,
                               **{f"param.{k}": v for k, v in study.params.items()}})
            epochs = study.params.get("epochs") if study.family != AUTO else None
            with FitProgress(run_name, epochs if isinstance(epochs, int) else None, context.log.info) as shown:

                def progress(epoch: int, losses: dict[str, float]) -> None:
                    mlflow.log_metrics({f"train.{k}": float(v) for k, v in losses.items()}, step=epoch)
                    shown(epoch, losses)  # terminal bar per epoch; a run-log line every tenth of the fit

                try:
                    step = fit_generation(study, gate, generation, real, batches,
                                          real_holdout=inputs.get("real_holdout"), origins=origins,
                                          chosen_family=chosen_family(lake, study, generation),
                                          target=config.data.target if config else None, id_columns=id_columns,
                                          data_seed=config.data.seed if config else 0,
                                          callback=progress, log=context.log.info)
                except GeneratorError as exc:
                    raise dg.Failure(str(exc)) from exc
            result, pool, learned, origin = step.result, step.pool, step.learned, step.origin
            # the pool the kept generator read (the anchor mitigation may have raised its real share)
            mlflow.log_params({"pool_rows": pool.rows.height, **{f"pool.{k}": v for k, v in pool.composition.items()}})
            log_step(result)
            gen = result.generator
            pool_origin = composition(origin)
            mlflow.log_dict({"pool_origin": pool_origin}, "pool_origin.json")
            log_pool_inputs(lake, study, generation, learned, pool.composition, parents, real)
            # dp hook: ε requested/spent, δ, noise and clipping as params and metrics; the chain's ε in the record
            privacy = privacy_fields(generation, gen.privacy, pool.composition, _parent_records(lake, study, pool))
            log_privacy(gen.privacy, privacy)
            target = lake.generator_dir(study.name, generation)
            lake.replace_dir(target, gen.save)
            # the pool's row origins only once the fit succeeded, with the generator: a killed fit leaves none
            origin_path = lake.pool_origin_file(study.name, generation)
            atomic_write_parquet(origin_path, origin)  # aligned by row with the rows the generator learned from
            model_uri = mlflow_tracking.log_generator(target, result.family, gen.sample(5, seed=0).to_pandas())
            url = mlflow_tracking.run_url(run)
        step = result.summary()
        record = {"study": study.name, "family": result.family, "requested_family": study.family,
                  "generation": generation, "path": str(target),
                  "seed": result.seed, "mlflow_run_id": run.info.run_id, "model_uri": model_uri,
                  "pool": pool.composition, "parents": parents, "pool_origin": pool_origin,
                  "pool_origin_path": str(origin_path), "step": step, "gate_mode": study.gate_mode,
                  "mitigation": result.mitigation, "batch_selection": result.selection, **lineage, **privacy}
        yield dg.Output(record, metadata={
            "mlflow_run": dg.MetadataValue.url(url), "mlflow_run_id": run.info.run_id, "model_uri": model_uri,
            "family": result.family, "requested_family": study.family,
            "fit_seconds": round(result.fit_seconds, 3), "step_seconds": round(result.total_seconds, 3),
            "pool_rows": pool.rows.height, "train_rows": result.plan.rows,
            "budget_cut": result.plan.cut or "none", "holdout_looks": result.holdout_looks,
            **({"bakeoff": dg.MetadataValue.md(result.markdown())}
               if result.bakeoff or len(result.attempts) > 1 else {}),
            **({"repair_advice": result.advice} if result.advice else {}),
            **mode_metadata(study, result),
            "pool_composition": dg.MetadataValue.json(pool.composition), "path": dg.MetadataValue.path(str(target)),
            "pool_origin": dg.MetadataValue.md(composition_markdown(pool_origin)),
            "parents": dg.MetadataValue.json(parents),
            **lineage, **privacy_metadata(gen.privacy, privacy),
        })

    return generator


def build_batch_asset(study: StudyConfig, generation: int, default_rows: int | None,
                      target: str | None = None,
                      automation_condition: dg.AutomationCondition | None = None) -> dg.AssetsDefinition:
    """`target`: data.target, the class column a study's target_share rebalances; `automation_condition`: the
    chain's (`chain_condition`), None unless automation.chain is on."""
    @dg.asset(
        key=batch_key(study.name, generation), ins={"generator": dg.AssetIn(generator_key(study.name, generation))},
        group_name=study.name, kinds={"polars", "parquet"}, owners=[OWNER],
        description=f"Synthetic batch of generation {generation} ({study.name}); may feed training only "
                    "after its blocking gate checks pass.",
        automation_condition=automation_condition,
    )
    def batch(context: dg.AssetExecutionContext, generator: dict, real_train: pl.DataFrame,
              lake: LakeResource) -> dg.Output[pl.DataFrame]:
        gen = load(generator["path"])
        rows = study.rows or default_rows or real_train.height
        # as run_step gated it: a verified batch is the verifier's selection of a larger draw, a rebalanced one
        # the asked class mix (ouroboros.rebalance)
        df = draw_generation_batch(gen, rows, generator["seed"], selection=generator.get("batch_selection"),
                                   target=target, target_share=study.target_share,
                                   real_target=real_train[target] if target in real_train.columns else None)
        context.log.info(f"sampled {df.height} rows from {generator['path']}")
        fp = fingerprint(df)
        # what this exact batch descends from, kept with its verdict: consumers walk it back to real_train
        lake.write_lineage(key_text(batch_key(study.name, generation)), fp, {
            "study": study.name, "generation": generation, "parents": generator["parents"],
            "real_table_version": generator.get("real_table_version"),
            "generator_run_id": generator["mlflow_run_id"], "observed": study.gate_mode == "observe"})
        return dg.Output(df, metadata={**table_metadata(df), "fingerprint": fp,
                                       "mlflow_run_id": generator["mlflow_run_id"],
                                       "parents": dg.MetadataValue.json(generator["parents"]),
                                       **({"observed": OBSERVED_NOTE} if study.gate_mode == "observe" else {}),
                                       **({"verified_selection": f"{rows} of {generator['batch_selection']['draw_rows']} "
                                           "rows drawn, kept by the verifier (mitigation verify)"}
                                          if generator.get("batch_selection") else {}),
                                       **({"real_table_version": generator["real_table_version"]}
                                          if generator.get("real_table_version") is not None else {})})

    return batch


def build_study_assets(config: PipelineConfig, study: StudyConfig) -> list[dg.AssetsDefinition]:
    out = []
    for k in range(study.generations):
        out.append(build_generator_asset(study, k, tuple(config.data.id_columns), config))
        out.append(build_batch_asset(study, k, study.rows, config.data.target, chain_condition(config, study)))
    return out
