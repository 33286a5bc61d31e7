"""`python -m pipelines.run`: materialise the whole pipeline on the Dagster instance, then print a summary.

Runs go to the instance under DAGSTER_HOME, so `dagster dev` on the same home shows them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import dagster as dg

from assets.common import batch_key
from ouroboros.config import PipelineConfig, load_config
from pipelines.definitions import APPROVED_JOB, PIPELINE_JOB, REPORT_JOB, build_definitions
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
        for k in range(study.generations):
            stored = lake.read_batch_with_verdict(batch_key(study.name, k).path)
            if stored is None:
                lines.append(f"  generation {k}: not materialised (stopped upstream)")
                continue
            verdict = stored[1]
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
        lines += ["", f"Downstream model ({m['task']}, {m['training_rows']} synthetic training rows), on real holdout:",
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
    result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, raise_on_error=False,
                                                                   run_config=quiet)
    gate_stopped = not result.success and stopped_only_by_gate(result)
    if gate_stopped:
        # blocking checks skip everything downstream of a failed batch in that run; a follow-up run trains on
        # what the gate approved (training_set re-checks every verdict) and rebuilds the report
        follow_up = defs.resolve_job_def(APPROVED_JOB).execute_in_process(instance=instance, raise_on_error=False,
                                                                          run_config=quiet)
        if not follow_up.success:
            defs.resolve_job_def(REPORT_JOB).execute_in_process(instance=instance, raise_on_error=False,
                                                                run_config=quiet)
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
