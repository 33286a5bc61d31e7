"""The gate: four blocking asset checks on every synthetic batch.

contract  Great Expectations suite derived from real_train (schema, types, nulls, ranges, categories,
          category survival, spread, tails)
fidelity  column shapes, pair trends and association retention, quality score, PRDC and detection AUC,
          utility (TSTR vs TRTR) against real_train / real_holdout; also the scorecard's own schema checks
privacy   exact copies beyond what fresh real rows show, closer-to-train share, DCR, NNDR
collapse  indicators against the fixed real anchor: variance ratio, tail mass, category and rare-category
          survival, Wasserstein distance, each against its real-data noise band

A blocking failure is an ERROR-severity failed check (downstream steps in the run do not start); a soft-limit
breach alone is a WARN-severity failed check, which does not block, and the stored record still approves.
Each check stores its judgement beside the batch (one file per check, keyed by the batch's content
fingerprint), so consumers in later runs can refuse a batch that was never approved.
"""


import json
import re

import dagster as dg
import mlflow
import polars as pl

from assets.common import batch_key, generator_key, key_text
from assets.real import CONTRACT_SUITE
from ouroboros.config import PipelineConfig, StudyConfig
from ouroboros.quality import Scorecard, evaluate
from ouroboros.quality.contract import Contract
from ouroboros.quality.report_card import scorecard_markdown
from ouroboros.verdict import CheckRecord, fingerprint
from resources import GreatExpectationsResource, LakeResource, MlflowResource
from resources.lake import atomic_write_bytes, atomic_write_json

SCORECARD_CHECKS = ("fidelity", "privacy", "collapse")


def _scorecard(lake: LakeResource, key: str, fp: str, batch: pl.DataFrame, real_train: pl.DataFrame,
               real_holdout: pl.DataFrame, config: PipelineConfig, contract: Contract) -> tuple[Scorecard, bool]:
    """Evaluate a batch once; the three scorecard checks share the result through the lake.
    Returns the card and whether this call computed it (that check logs the page to MLflow)."""
    path = lake.path / "scorecards" / key / f"{fp}.json"
    if path.exists():
        return Scorecard.from_dict(json.loads(path.read_text())), False
    card = evaluate(batch, real_train, real_holdout, config.gate, schema=contract.schema, target=config.data.target)
    atomic_write_json(path, card.to_dict())
    page = scorecard_markdown(key, card, config.gate.model_dump(), fp)
    atomic_write_bytes(path.with_suffix(".md"), page.encode())
    return card, True


def _metric_name(key: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", key)


def _log_to_generation_run(mlflow_tracking: MlflowResource, run_id: str, check: str, passed: bool,
                           scores: dict[str, float], warned: bool = False) -> None:
    with mlflow_tracking.resume(run_id):
        mlflow.log_metrics({_metric_name(f"gate.{k}"): float(v) for k, v in scores.items()})
        mlflow.log_metric(f"gate.{check}.passed", float(passed))
        mlflow.log_metric(f"gate.{check}.warned", float(warned))


def _result(check: str, passed: bool, warnings: list, metadata: dict, description: str | None) -> dg.AssetCheckResult:
    """ERROR when a hard limit failed (blocks); WARN when only soft limits did (reported, does not block)."""
    if not passed:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, description=description,
                                   metadata=metadata)
    if warnings:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=metadata,
                                   description=f"{check}: soft limit(s) breached, batch still approved: "
                                               + "; ".join(w.reason for w in warnings))
    return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata)


def build_contract_check(study: StudyConfig, generation: int) -> dg.AssetChecksDefinition:
    key = batch_key(study.name, generation)

    @dg.asset_check(
        asset=key, name="contract", blocking=True,
        description="Great Expectations suite derived from real_train: columns, types, nulls, ranges, "
                    "category sets, spread and tails.",
        additional_ins={"generator": dg.AssetIn(generator_key(study.name, generation))},
    )
    def contract_check(batch: pl.DataFrame, generator: dict, lake: LakeResource, gx_context: GreatExpectationsResource,
                       mlflow_tracking: MlflowResource) -> dg.AssetCheckResult:
        name = key_text(key)
        fp = fingerprint(batch)
        result = gx_context.validate(batch, CONTRACT_SUITE, name.replace("/", "."))
        docs = gx_context.docs_index()
        failures = [{"check": "contract", "indicator": f"{r['expectation']}:{r['column']}", "value": r["observed"],
                     "threshold": None, "reason": r["why"]} for r in result.failures]
        scores = {"contract.rules": float(len(result.results)), "contract.failed_rules": float(len(failures))}
        lake.write_check_record(name, CheckRecord("contract", fp, result.success, failures, scores,
                                                  generator["mlflow_run_id"]))
        _log_to_generation_run(mlflow_tracking, generator["mlflow_run_id"], "contract", result.success, scores)
        if result.page is not None:
            # only this batch's validation page: uploading the whole site made the store grow with batches squared
            with mlflow_tracking.resume(generator["mlflow_run_id"]):
                mlflow.log_artifact(str(result.page), artifact_path="gate/data_docs")
        failed = "\n".join(f"| `{f['indicator']}` | {f['reason']} | {f['value']} |" for f in failures)
        return dg.AssetCheckResult(
            passed=result.success,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if result.success else f"{len(failures)} contract rule(s) failed",
            metadata={
                "rules": len(result.results), "failed_rules": len(failures), "batch_fingerprint": fp,
                "data_docs": dg.MetadataValue.url(docs),
                "validation_page": dg.MetadataValue.path(str(result.page)) if result.page else "not on local disk", "severity_policy": "contract rules are hard limits",
                "failures": dg.MetadataValue.md("| rule | why | observed |\n|---|---|---|\n" + failed) if failed
                else dg.MetadataValue.md("all rules passed"),
            },
        )

    return contract_check


def build_scorecard_check(study: StudyConfig, generation: int, check: str,
                          config: PipelineConfig) -> dg.AssetChecksDefinition:
    key = batch_key(study.name, generation)
    descriptions = {
        "fidelity": "Column shapes (1 - KS, 1 - TVD), pair trends and association retention, overall quality score, "
                    "precision/recall/density/coverage, detection AUC and utility (TSTR vs TRTR) against real data.",
        "privacy": "Exact copies beyond what fresh real rows show, share of rows closer to real_train than to "
                   "real_holdout, distance to closest record and nearest-neighbour distance ratio.",
        "collapse": "Collapse indicators against the fixed real anchor: variance ratio, tail mass, category and "
                    "rare-category survival, Wasserstein distance, each with its real-data noise band.",
    }

    @dg.asset_check(
        asset=key, name=check, blocking=True, description=descriptions[check],
        additional_ins={"real_train": dg.AssetIn("real_train"), "real_holdout": dg.AssetIn("real_holdout"),
                        "real_contract": dg.AssetIn("real_contract"),
                        "generator": dg.AssetIn(generator_key(study.name, generation))},
    )
    def scorecard_check(batch: pl.DataFrame, real_train: pl.DataFrame, real_holdout: pl.DataFrame,
                        real_contract: dict, generator: dict, lake: LakeResource,
                        mlflow_tracking: MlflowResource) -> dg.AssetCheckResult:
        name = key_text(key)
        fp = fingerprint(batch)
        card, computed = _scorecard(lake, name, fp, batch, real_train, real_holdout, config,
                                    Contract.from_dict(real_contract))
        # the scorecard's own schema checks (dtypes, unknown categories, nulls) block through fidelity
        failures = card.failures_for(check) + (card.failures_for("contract") if check == "fidelity" else [])
        warnings = card.warnings_for(check)
        scores = card.scores_for(check)
        passed = not failures
        lake.write_check_record(name, CheckRecord(check, fp, passed, [f.__dict__ for f in failures], scores,
                                                  generator["mlflow_run_id"],
                                                  warnings=[w.__dict__ for w in warnings]))
        _log_to_generation_run(mlflow_tracking, generator["mlflow_run_id"], check, passed, scores, bool(warnings))
        page = lake.path / "scorecards" / name / f"{fp}.md"
        if computed and page.exists():
            with mlflow_tracking.resume(generator["mlflow_run_id"]):
                mlflow.log_artifact(str(page), artifact_path=f"gate/{name}")
        rows = "\n".join(f"| {f.severity} | `{f.indicator}` | {f.value:.4g} | {f.threshold:.4g} | {f.reason} |"
                         for f in failures + warnings)
        headline = {k: float(v) for k, v in scores.items() if k.count(".") <= 1 or k.startswith("shape.")}
        metadata = {
            **dict(list(headline.items())[:60]),
            "scores": dg.MetadataValue.json({k: float(v) for k, v in scores.items()}),
            "thresholds": dg.MetadataValue.json(config.gate.model_dump()),
            "batch_fingerprint": fp,
            "scorecard": dg.MetadataValue.path(str(page)),
            "failures": dg.MetadataValue.md("| severity | indicator | value | threshold | reason |\n|---|---|---|---|---|\n"
                                            + rows) if rows else dg.MetadataValue.md("none"),
        }
        return _result(check, passed, warnings, metadata, None if passed else "; ".join(f.reason for f in failures))

    return scorecard_check


def build_gate_checks(config: PipelineConfig, study: StudyConfig) -> list[dg.AssetChecksDefinition]:
    checks = []
    for k in range(study.generations):
        checks.append(build_contract_check(study, k))
        checks.extend(build_scorecard_check(study, k, c, config) for c in SCORECARD_CHECKS)
    return checks
