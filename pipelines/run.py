"""`python -m pipelines.run`: materialise the whole pipeline on the Dagster instance, then print a summary.

Runs go to the instance under DAGSTER_HOME, so `dagster dev` on the same home shows them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import dagster as dg

from assets.lineage import read_chain
from ouroboros.config import PipelineConfig, load_config
from pipelines.definitions import (
    APPROVED_JOB,
    PIPELINE_JOB,
    REPORT_JOB,
    approved_job,
    build_definitions,
    pipeline_job,
    report_job,
)
from pipelines.settings import Settings
from resources import LakeResource
from resources.lake import asset_file


def summarise(config: PipelineConfig, lake: LakeResource, settings: Settings, result,
              gate_stopped: bool = False) -> str:
    status = "SUCCESS" if result.success else (
        "STOPPED BY THE GATE (then trained on the approved batches)" if gate_stopped else "FAILED (see the log above)")
    lines = [f"Dagster run {result.run_id}: {status}", ""]
    version = lake.real_table_version()
    if version is not None:
        lines[1:1] = [f"Real table: version {version} of {lake.real_table_uri()} (new real files go to "
                      f"{settings.landing})"]
    for study in config.studies:
        lines.append(f"Study {study.name} ({study.family}, {study.policy} policy)")
        stored = read_chain(lake, study.name, study.generations)
        refusal = stored.chain.refusal
        for k in range(study.generations):
            if k not in stored.verdicts:
                lines.append(f"  generation {k}: not materialised (stopped upstream)")
                continue
            if refusal is not None and refusal.kind == "lineage" and k >= refusal.generation:
                # made from an earlier real table (or from a parent re-made since): never used for training
                lines.append(f"  generation {k}: STALE - " + (refusal.reason if k == refusal.generation
                                                             else f"descends from {refusal.key}"))
                continue
            verdict = stored.verdicts[k]
            state = "PASS" if verdict.passed else "FAIL"
            detail = "" if verdict.passed else " - " + "; ".join(
                f["reason"] for f in verdict.failures[:3]) if verdict.failures else ""
            shape = verdict.scores.get("fidelity.column_shapes")
            lines.append(f"  generation {k}: gate {state}"
                         + (f" (column shapes {shape:.3f})" if shape is not None else "") + detail)
    model_path = asset_file(lake.root, ["downstream_model"], ".json")
    if model_path.exists():
        m = json.loads(model_path.read_text())
        h = m["headline"]
        share = m.get("synthetic_share")
        origin = ", ".join(f"{p['study']}/g{p['generation']} {p['rows']}" if p["origin"] == "synthetic"
                           else f"real {p['rows']}" for p in m.get("training_origin", []))
        rows = f"{m['training_rows']} training rows" + (f", {share:.0%} synthetic: {origin}" if share is not None else "")
        lines += ["", f"Downstream model ({m['task']}, {rows}), on real holdout:",
                  f"  trained on approved synthetic: {_metrics(m['tstr'], h)}",
                  f"  trained on real (baseline):    {_metrics(m['trtr'], h)}"]
        if h not in m["tstr"] or h not in m["trtr"]:
            lines.append(f"  ({h} is undefined: the real holdout rows of target {config.data.target!r} have one "
                         "class; only accuracy and log-loss are scored)")
    lines += ["", "Where to look next:",
              f"  collapse report   {settings.lake / 'reports' / 'collapse_report.md'}",
              "  Dagster UI        bin/ui            (http://127.0.0.1:3000)",
              "  MLflow UI         bin/mlflow-ui     (http://127.0.0.1:5000)",
              f"  GX Data Docs      {settings.gx_root / 'gx' / 'uncommitted' / 'data_docs' / 'local_site' / 'index.html'}"]
    return "\n".join(lines)


def _metrics(scores: dict[str, float], headline: str) -> str:
    """The headline metric first ('n/a' when undefined, e.g. ROC AUC of a one-class target), then the rest."""
    head = f"{headline} {scores[headline]:.3f}" if headline in scores else f"{headline} n/a"
    return "   ".join([head, ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if k != headline)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args(argv)
    settings = Settings.from_env()
    config = load_config(settings.config_path)
    defs = build_definitions(config, settings)
    instance = dg.DagsterInstance.get()
    started = time.perf_counter()
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # step chatter stays in the UI

    def execute(name: str):
        if settings.executor == "in_process":
            return defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False,
                                                                 run_config=quiet)
        # the job's own executor (multiprocess on the stack): steps in their own processes, studies in parallel
        entry = {PIPELINE_JOB: pipeline_job, APPROVED_JOB: approved_job, REPORT_JOB: report_job}[name]
        return dg.execute_job(dg.reconstructable(entry), instance=instance, run_config=quiet, raise_on_error=False)

    result = execute(PIPELINE_JOB)
    gate_stopped = not result.success and stopped_only_by_gate(result)
    if gate_stopped:
        # blocking checks skip everything downstream of a failed batch in that run; a follow-up run trains on
        # what the gate approved (training_set re-checks every verdict) and rebuilds the report
        follow_up = execute(APPROVED_JOB)
        if not follow_up.success:
            execute(REPORT_JOB)
    print()
    print(summarise(config, defs.resources["lake"], settings, result, gate_stopped))
    print(f"\npipeline time: {time.perf_counter() - started:.1f} s")
    return 0 if result.success or gate_stopped else 1


def stopped_only_by_gate(result) -> bool:
    """True when every failed step failed because a blocking check judged its batch (not a crash)."""
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return bool(failures) and all(
        e.event_specific_data.error.cls_name == "DagsterAssetCheckFailedError" for e in failures
    )


if __name__ == "__main__":
    sys.exit(main())
