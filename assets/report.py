"""The collapse report: every generation's verdict and scores, for every study, as table, plot and page.

It reads every stored verdict, so it also runs after the gate stopped a run (`collapse_report_job`), and it
names the generator each study's `approved_generator` asset promoted in the MLflow registry.
"""

import json

import dagster as dg
import mlflow
import polars as pl

from assets.common import OWNER, batch_key
from assets.registry import APPROVED_ALIAS, approved_key, registered_model_name, study_chain
from ouroboros.config import PipelineConfig
from ouroboros.privacy.chain import privacy_section
from ouroboros.quality import evaluate
from ouroboros.report import (
    HEADLINE,
    data_uri,
    first_movers,
    guard_trips,
    noise_band,
    report_markdown,
    report_table,
    scorecard_bands,
    summarise,
)
from ouroboros.report_plot import plot_report
from ouroboros.schema import infer_schema
from resources import LakeResource, MlflowResource
from resources.lake import asset_file, atomic_write_bytes, atomic_write_parquet


def build_report_asset(config: PipelineConfig) -> dg.AssetsDefinition:
    batch_deps = [batch_key(s.name, k) for s in config.studies for k in range(s.generations)]

    @dg.asset(
        # the alias assets are deps, not inputs: the report reads what they stored when they exist, so it can be
        # rebuilt on its own (from the UI, or after a run the gate stopped) before any alias was ever moved
        deps=["downstream_model", *batch_deps, *(approved_key(s.name) for s in config.studies)],
        ins={"real_train": dg.AssetIn("real_train"), "real_holdout": dg.AssetIn("real_holdout")},
        group_name="report", kinds={"matplotlib", "markdown", "mlflow"}, owners=[OWNER],
        description="Generation by generation, how far each study drifts from the real data and where the "
                    "guard stopped it, and which generator each study's registry alias "
                    "'approved' points at. Reads the stored verdicts, so it also runs after a run the gate stopped.",
    )
    def collapse_report(context: dg.AssetExecutionContext, lake: LakeResource, mlflow_tracking: MlflowResource,
                        real_train: pl.DataFrame, real_holdout: pl.DataFrame) -> dg.MaterializeResult:
        stored = [asset_file(lake.root, approved_key(s.name).path, ".json") for s in config.studies]
        promoted = [json.loads(path.read_text()) for path in stored if path.exists()]
        notes: dict[str, str] = {}
        rules = lake.current_rules(config.gate.model_dump(), config.data.target)  # today's gate only
        chains = {s.name: study_chain(lake, s, real_train, notes, rules) for s in config.studies}
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

        approved = {p["study"]: f"`{registered_model_name(p['study'])}@{APPROVED_ALIAS}` = version {p['version']} "
                                f"(generation {p['generation']})" for p in promoted if p.get("version")}
        with mlflow_tracking.run("collapse_report", tags={"dagster_run_id": context.run_id}):
            page = report_markdown(records, plot.name if plot else None, bands, approved, notes)
            page += privacy_section({s: [gen for _, gen in chain] for s, chain in chains.items()})  # dp hook
            atomic_write_bytes(out / "collapse_report.md", page.encode())
            mlflow.log_artifacts(str(out), artifact_path="collapse_report")
            # one metric per study and indicator, its generations as MLflow steps: MLflow draws it as a curve
            for generation in sorted({r.generation for r in records}):
                mlflow.log_metrics({f"{r.study}.{k}": v for r in records if r.generation == generation
                                    for k, v in summarise(r.scores).items() if k in HEADLINE}, step=generation)
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
            "lineage_notes": dg.MetadataValue.json(notes),
            "chain_epsilon": dg.MetadataValue.json({s: (chain[-1][1].get("chain_epsilon") if chain else None)
                                                    for s, chain in chains.items()}),  # dp hook; null = unbounded
        })

    return collapse_report
