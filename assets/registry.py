"""The MLflow model registry, moved by assets of its own so the lineage shows it.

- `<study>/approved_generator`: per study, the alias "approved" of `ouroboros.<study>.generator` points at the
  newest generator whose batch passed all four gate checks. It reads the stored verdicts (not the batches), so
  it also runs after a run the gate stopped.
- `downstream_champion`: the alias "champion" of `ouroboros.downstream_model` points at the newest downstream
  model; that model is only ever trained on gate-approved batches (training_set refuses anything else).
"""

import json

import dagster as dg
import mlflow
import polars as pl
from mlflow import MlflowClient

from assets.common import OWNER, batch_key, freshness_policy, generator_key
from assets.lineage import read_chain
from ouroboros.config import PipelineConfig, StudyConfig
from ouroboros.report import GenerationRecord
from ouroboros.verdict import generator_approvable
from resources import LakeResource, MlflowResource
from resources.lake import asset_file

APPROVED_ALIAS = "approved"
CHAMPION_ALIAS = "champion"
DOWNSTREAM_MODEL_NAME = "ouroboros.downstream_model"


def registered_model_name(study: str) -> str:
    return f"ouroboros.{study}.generator"


def approved_key(study: str) -> dg.AssetKey:
    return dg.AssetKey([study, "approved_generator"])


def study_chain(lake: LakeResource, study: StudyConfig, real_train: pl.DataFrame | None = None,
                notes: dict[str, str] | None = None, rules: str | None = None) -> list[tuple[GenerationRecord, dict]]:
    """The study's current chain: the generations whose whole parent chain leads back to the current real_train
    (`assets.lineage.read_chain`), plus the first batch the gate refused (shown as the guard's trip). A batch
    made from another real_train, or from a parent re-made since, ends the chain and is noted in `notes`."""
    stored = read_chain(lake, study.name, study.generations, real_train, rules=rules)
    shown = list(stored.chain.accepted)
    refusal = stored.chain.refusal
    if refusal is not None and refusal.kind == "gate":
        shown.append(refusal.generation)
    elif refusal is not None and refusal.kind == "lineage" and notes is not None:
        notes[study.name] = f"chain ends before generation {refusal.generation}: {refusal.reason}"
    chain: list[tuple[GenerationRecord, dict]] = []
    for k in shown:
        gen_path = asset_file(lake.root, generator_key(study.name, k).path, ".json")
        if not gen_path.exists():
            break
        generator = json.loads(gen_path.read_text())
        verdict = stored.verdicts[k]
        # a batch no check has judged yet is 'not judged', not 'failed'
        passed = None if verdict.missing and all(verdict.checks.values()) else verdict.passed
        chain.append((GenerationRecord(study.name, k, passed, verdict.scores, verdict.failures,
                                       generator.get("family", study.family),  # under auto: the chosen one
                                       study.policy, generator.get("pool", {}), generator.get("pool_origin", []),
                                       generator.get("mitigation") or "", study.gate_mode),
                      generator))
    return chain


def _ensure_registered(client: MlflowClient, name: str, description: str) -> None:
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(name, description=description)


def register_and_alias(client: MlflowClient, name: str, alias: str, model_uri: str, run_id: str,
                       tags: dict[str, str], description: str) -> str:
    """Register the run's logged model once (a rebuild never adds a version) and point `alias` at it."""
    _ensure_registered(client, name, description)
    existing = [v for v in client.search_model_versions(f"name='{name}'") if v.run_id == run_id]
    # mlflow.register_model resolves a logged model's `models:/m-...` URI (the tracking server's REST store
    # needs its model id; create_model_version with the bare URI is refused there)
    version = existing[0] if existing else mlflow.register_model(model_uri, name, tags=tags)
    client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def promote_approved(client: MlflowClient, study: str, generator: dict) -> str:
    """Register the generator's logged model (once) and point the study's "approved" alias at it."""
    name = registered_model_name(study)
    version = register_and_alias(
        client, name, APPROVED_ALIAS, generator["model_uri"], generator["mlflow_run_id"],
        tags={"generation": str(generator["generation"]), "family": generator["family"]},
        description=f"Generators of study {study} whose batch passed the gate; alias '{APPROVED_ALIAS}' is the newest.")
    client.set_model_version_tag(name, version, "approved_generation", str(generator["generation"]))
    return version


def build_approved_asset(study: StudyConfig, config: PipelineConfig) -> dg.AssetsDefinition:
    batches = [batch_key(study.name, k) for k in range(study.generations)]

    @dg.asset(
        key=approved_key(study.name), deps=batches, group_name=study.name, kinds={"mlflow"}, owners=[OWNER],
        description=f"Moves the alias '{APPROVED_ALIAS}' of the registered model {registered_model_name(study.name)} "
                    "to the newest generator whose batch passed every gate check (from the stored verdicts).",
    )
    def approved_generator(context: dg.AssetExecutionContext, lake: LakeResource,
                           mlflow_tracking: MlflowResource) -> dg.Output[dict]:
        chain = study_chain(lake, study, rules=lake.current_rules(config.gate.model_dump(), config.data.target))
        # a generator whose batch passed only as a verifier's selection, or one of an observe study, is not
        # itself approved: the selection can reweight what the generator draws in wrong proportions
        passed = []
        for rec, gen in chain:
            if rec.passed is not True:
                continue
            ok, why = generator_approvable(gen)
            if ok:
                passed.append(gen)
            else:
                context.log.info(f"{study.name} generation {gen['generation']}: {why}")
        if not passed:
            context.log.warning(f"study {study.name}: no generation passed the gate; alias not moved")
            return dg.Output({"study": study.name, "version": None, "generation": None},
                             metadata={"alias": "not moved: no approved generation"})
        newest = passed[-1]
        version = promote_approved(mlflow_tracking.client(), study.name, newest)
        uri = f"models:/{registered_model_name(study.name)}@{APPROVED_ALIAS}"
        return dg.Output({"study": study.name, "version": version, "generation": newest["generation"],
                          "model_uri": uri},
                         metadata={"registered_model": registered_model_name(study.name), "version": version,
                                   "generation": newest["generation"], "model_uri": uri})

    return approved_generator


def build_champion_asset(config: PipelineConfig) -> dg.AssetsDefinition:
    max_age = config.training.champion_max_age_hours
    # a model trained once and never again goes stale silently; the UI's freshness status says when it is overdue
    freshness = freshness_policy(max_age)

    @dg.asset(
        group_name="training", kinds={"mlflow"}, owners=[OWNER], freshness_policy=freshness,
        description=f"Moves the alias '{CHAMPION_ALIAS}' of {DOWNSTREAM_MODEL_NAME} to the model just trained on "
                    "gate-approved synthetic data.",
    )
    def downstream_champion(downstream_model: dict, mlflow_tracking: MlflowResource) -> dg.Output[dict]:
        version = register_and_alias(
            mlflow_tracking.client(), DOWNSTREAM_MODEL_NAME, CHAMPION_ALIAS, downstream_model["model_uri"],
            downstream_model["mlflow_run_id"],
            tags={"training_rows": str(downstream_model["training_rows"]), "task": downstream_model["task"]},
            description="Downstream model trained on gate-approved synthetic data; alias 'champion' is the newest.")
        uri = f"models:/{DOWNSTREAM_MODEL_NAME}@{CHAMPION_ALIAS}"
        return dg.Output({"version": version, "model_uri": uri},
                         metadata={"registered_model": DOWNSTREAM_MODEL_NAME, "version": version, "model_uri": uri})

    return downstream_champion


def build_registry_assets(config: PipelineConfig) -> list[dg.AssetsDefinition]:
    return [*(build_approved_asset(s, config) for s in config.studies), build_champion_asset(config)]
