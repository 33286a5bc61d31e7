"""The collapse report: every generation's verdict and scores, for every study, as table, plot and page."""


import dagster as dg
import mlflow

from assets.common import OWNER, batch_key, key_text
from ouroboros.config import PipelineConfig
from ouroboros.verdict import fingerprint
from ouroboros.report import GenerationRecord, guard_trips, plot_curves, report_markdown, report_table
from resources import LakeResource, MlflowResource
from resources.lake import atomic_write_bytes, atomic_write_parquet


def build_report_asset(config: PipelineConfig) -> dg.AssetsDefinition:
    batch_deps = [batch_key(s.name, k) for s in config.studies for k in range(s.generations)]

    @dg.asset(
        deps=["downstream_model", *batch_deps], group_name="report", kinds={"matplotlib", "markdown", "mlflow"},
        owners=[OWNER],
        description="Generation by generation, how far each study drifts from the real data and where the "
                    "guard stopped it. Reads the stored verdicts, so it also runs after a run the gate stopped.",
    )
    def collapse_report(context: dg.AssetExecutionContext, lake: LakeResource,
                        mlflow_tracking: MlflowResource) -> dg.MaterializeResult:
        records = []
        for study in config.studies:
            for k in range(study.generations):
                key = key_text(batch_key(study.name, k))
                batch = lake.read_asset_table(batch_key(study.name, k).path)
                if batch is None:
                    continue
                verdict = lake.read_verdict(key, fingerprint(batch))
                # a batch no check has judged yet is 'not judged', not 'failed'
                passed = None if verdict.missing and all(verdict.checks.values()) else verdict.passed
                records.append(GenerationRecord(study.name, k, passed, verdict.scores, verdict.failures))
        out = lake.reports_dir()
        table = report_table(records)
        atomic_write_parquet(out / "collapse_report.parquet", table)
        plot = plot_curves(table, out / "collapse_report.png")
        page = report_markdown(records, plot.name if plot else None)
        atomic_write_bytes(out / "collapse_report.md", page.encode())
        with mlflow_tracking.run("collapse_report", tags={"dagster_run_id": context.run_id}):
            mlflow.log_artifacts(str(out), artifact_path="collapse_report")
        trips = guard_trips(records)
        return dg.MaterializeResult(metadata={
            "report": dg.MetadataValue.md(page.replace(f"![collapse curves]({plot.name})", "") if plot else page),
            "plot": dg.MetadataValue.path(str(plot)) if plot else "none",
            "generations_judged": len(records),
            "guard_trips": dg.MetadataValue.json({s: (list(t) if t else None) for s, t in trips.items()}),
        })

    return collapse_report
