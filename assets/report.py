"""The collapse report: every generation's verdict and scores, for every study, as table, plot and page.

It also keeps the MLflow model registry honest: per study, the alias "approved" of the registered model
`ouroboros.<study>.generator` points at the newest generator whose batch passed all four gate checks.
The report is the place for that because it reads every stored verdict and runs even after the gate
stopped a run (`collapse_report_job`).
"""

import json

import dagster as dg
import mlflow
import polars as pl
from mlflow import MlflowClient

from assets.common import OWNER, batch_key, generator_key, key_text
from ouroboros.config import PipelineConfig, StudyConfig
from ouroboros.quality import evaluate
from ouroboros.report import (
    HEADLINE,
    GenerationRecord,
    data_uri,
    first_movers,
    guard_trips,
    noise_band,
    report_markdown,
    report_table,
    scorecard_bands,
)
from ouroboros.privacy.chain import privacy_section
from ouroboros.report_plot import plot_report
from ouroboros.schema import infer_schema
from resources import LakeResource, MlflowResource
from resources.lake import asset_file, atomic_write_bytes, atomic_write_parquet

APPROVED_ALIAS = "approved"


def registered_model_name(study: str) -> str:
    return f"ouroboros.{study}.generator"


def study_chain(lake: LakeResource, study: StudyConfig) -> list[tuple[GenerationRecord, dict]]:
    """The study's current chain: generations whose batch exists and whose generator learnt from the batches
    stored now (a batch left over from an earlier, longer run does not belong to this chain)."""
    chain: list[tuple[GenerationRecord, dict]] = []
    fingerprints: dict[str, str] = {}
    for k in range(study.generations):
        key = key_text(batch_key(study.name, k))
        gen_path = asset_file(lake.root, generator_key(study.name, k).path, ".json")
        stored = lake.read_batch_with_verdict(batch_key(study.name, k).path)
        if stored is None or not gen_path.exists():
            break
        generator = json.loads(gen_path.read_text())
        parents = generator.get("parents", {})
        if any(fingerprints.get(p) != fp for p, fp in parents.items() if p != "real_train"):
            break  # stale: this generation was trained on batches that have since been replaced
        verdict = stored[1]
        fingerprints[key] = verdict.batch_fingerprint
        # a batch no check has judged yet is 'not judged', not 'failed'
        passed = None if verdict.missing and all(verdict.checks.values()) else verdict.passed
        chain.append((GenerationRecord(study.name, k, passed, verdict.scores, verdict.failures, study.family,
                                       study.policy, generator.get("pool", {})), generator))
        if passed is not True:
            break  # the chain stops at a batch the gate did not approve
    return chain


def promote_approved(client: MlflowClient, study: str, generator: dict) -> str:
    """Register the generator's logged model (once) and point the study's "approved" alias at it."""
    name = registered_model_name(study)
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(name, description=f"Generators of study {study} whose batch passed the gate; "
                                                         f"alias '{APPROVED_ALIAS}' is the newest.")
    run_id = generator["mlflow_run_id"]
    existing = [v for v in client.search_model_versions(f"name='{name}'") if v.run_id == run_id]
    version = existing[0] if existing else client.create_model_version(
        name, generator["model_uri"], run_id=run_id,
        tags={"generation": str(generator["generation"]), "family": generator["family"]})
    client.set_registered_model_alias(name, APPROVED_ALIAS, version.version)
    client.set_model_version_tag(name, version.version, "approved_generation", str(generator["generation"]))
    return str(version.version)


def build_report_asset(config: PipelineConfig) -> dg.AssetsDefinition:
    batch_deps = [batch_key(s.name, k) for s in config.studies for k in range(s.generations)]

    @dg.asset(
        deps=["downstream_model", *batch_deps],
        ins={"real_train": dg.AssetIn("real_train"), "real_holdout": dg.AssetIn("real_holdout")},
        group_name="report", kinds={"matplotlib", "markdown", "mlflow"}, owners=[OWNER],
        description="Generation by generation, how far each study drifts from the real data and where the "
                    "guard stopped it; moves the 'approved' generator alias in the MLflow registry. Reads the "
                    "stored verdicts, so it also runs after a run the gate stopped.",
    )
    def collapse_report(context: dg.AssetExecutionContext, lake: LakeResource, mlflow_tracking: MlflowResource,
                        real_train: pl.DataFrame, real_holdout: pl.DataFrame) -> dg.MaterializeResult:
        chains = {s.name: study_chain(lake, s) for s in config.studies}
        records = [rec for chain in chains.values() for rec, _ in chain]
        bands = scorecard_bands(records)
        if not bands and records:
            # a scorecard without noise keys: score bootstrap draws of fresh real rows like a batch instead
            schema = infer_schema(real_train, id_columns=config.data.id_columns)
            rows = max((s.rows or real_train.height for s in config.studies), default=real_train.height)
            bands = noise_band(real_train, real_holdout,
                               lambda sample: evaluate(sample, real_train, real_holdout, config.gate,
                                                       schema=schema).scores,
                               rows=min(rows, real_holdout.height * 4), draws=4, seed=config.data.seed)

        out = lake.reports_dir()
        table = report_table(records)
        atomic_write_parquet(out / "collapse_report.parquet", table)
        plot = plot_report(records, table, out / "collapse_report.png", bands, config.gate)

        approved: dict[str, str] = {}
        with mlflow_tracking.run("collapse_report", tags={"dagster_run_id": context.run_id}):
            client = MlflowClient()
            for study, chain in chains.items():
                passed = [gen for rec, gen in chain if rec.passed is True]
                if passed:
                    version = promote_approved(client, study, passed[-1])
                    approved[study] = (f"`{registered_model_name(study)}@{APPROVED_ALIAS}` = version {version} "
                                       f"(generation {passed[-1]['generation']})")
            page = report_markdown(records, plot.name if plot else None, bands, approved)
            page += privacy_section({s: [gen for _, gen in chain] for s, chain in chains.items()})  # dp hook
            atomic_write_bytes(out / "collapse_report.md", page.encode())
            mlflow.log_artifacts(str(out), artifact_path="collapse_report")
            mlflow.log_metrics({f"{r.study}.{k}.g{r.generation}": v for r in records
                                for k, v in r.scores.items() if k in HEADLINE})
        trips = guard_trips(records)
        movers = first_movers(table, bands) if table.height else {}
        inline = page.replace(f"![collapse curves]({plot.name})", f"![collapse curves]({data_uri(plot)})") \
            if plot else page
        return dg.MaterializeResult(metadata={
            "report": dg.MetadataValue.md(inline),
            "plot": dg.MetadataValue.path(str(plot)) if plot else "none",
            "report_path": dg.MetadataValue.path(str(out / "collapse_report.md")),
            "generations_judged": len(records),
            "guard_trips": dg.MetadataValue.json({s: (list(t) if t else None) for s, t in trips.items()}),
            "first_movers": dg.MetadataValue.json({s: ([m[0], m[1]] if m else None) for s, m in movers.items()}),
            "approved_generators": dg.MetadataValue.json(approved),
            "chain_epsilon": dg.MetadataValue.json({s: (chain[-1][1].get("chain_epsilon") if chain else None)
                                                    for s, chain in chains.items()}),  # dp hook; null = unbounded
        })

    return collapse_report
