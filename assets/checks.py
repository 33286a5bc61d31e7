"""The gate: four blocking asset checks on every synthetic batch.

contract  Great Expectations suite derived from real_train (schema, types, nulls, ranges, categories,
          spread, tails)
fidelity  column shapes against real_train
privacy   exact copies of real_train rows beyond what fresh real rows show
collapse  indicators against the fixed real anchor (category survival, variance ratios)

Each check stores its judgement beside the batch (one file per check, keyed by the batch's content
fingerprint), so consumers in later runs can refuse a batch that was never approved.
"""


import json

import dagster as dg
import mlflow
import polars as pl

from assets.common import batch_key, generator_key, key_text
from assets.real import CONTRACT_SUITE
from ouroboros.config import PipelineConfig, StudyConfig
from ouroboros.quality import Scorecard, evaluate
from ouroboros.quality.contract import Contract
from ouroboros.verdict import CheckRecord, fingerprint
from resources import GreatExpectationsResource, LakeResource, MlflowResource
from resources.lake import atomic_write_json

SCORECARD_CHECKS = ("fidelity", "privacy", "collapse")


def _scorecard(lake: LakeResource, key: str, fp: str, batch: pl.DataFrame, real_train: pl.DataFrame,
               real_holdout: pl.DataFrame, config: PipelineConfig, contract: Contract) -> Scorecard:
    """Evaluate a batch once; the three scorecard checks share the result through the lake."""
    path = lake.path / "scorecards" / key / f"{fp}.json"
    if path.exists():
        return Scorecard.from_dict(json.loads(path.read_text()))
    card = evaluate(batch, real_train, real_holdout, config.gate, schema=contract.schema)
    atomic_write_json(path, card.to_dict())
    return card


def _log_to_generation_run(mlflow_tracking: MlflowResource, run_id: str, check: str, passed: bool,
                           scores: dict[str, float]) -> None:
    with mlflow_tracking.resume(run_id):
        mlflow.log_metrics({f"gate.{k}": float(v) for k, v in scores.items()})
        mlflow.log_metric(f"gate.{check}.passed", float(passed))


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
        docs = gx_context.build_docs()
        failures = [{"check": "contract", "indicator": f"{r['expectation']}:{r['column']}", "value": r["observed"],
                     "threshold": None, "reason": r["why"]} for r in result.failures]
        scores = {"contract.rules": float(len(result.results)), "contract.failed_rules": float(len(failures))}
        lake.write_check_record(name, CheckRecord("contract", fp, result.success, failures, scores,
                                                  generator["mlflow_run_id"]))
        _log_to_generation_run(mlflow_tracking, generator["mlflow_run_id"], "contract", result.success, scores)
        failed = "\n".join(f"| `{f['indicator']}` | {f['reason']} | {f['value']} |" for f in failures)
        return dg.AssetCheckResult(
            passed=result.success,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if result.success else f"{len(failures)} contract rule(s) failed",
            metadata={
                "rules": len(result.results), "failed_rules": len(failures), "batch_fingerprint": fp,
                "data_docs": dg.MetadataValue.url(docs),
                "failures": dg.MetadataValue.md("| rule | why | observed |\n|---|---|---|\n" + failed) if failed
                else dg.MetadataValue.md("all rules passed"),
            },
        )

    return contract_check


def build_scorecard_check(study: StudyConfig, generation: int, check: str,
                          config: PipelineConfig) -> dg.AssetChecksDefinition:
    key = batch_key(study.name, generation)
    descriptions = {
        "fidelity": "Per-column shape (1 - KS, 1 - TVD) against real_train.",
        "privacy": "Exact copies of real_train rows, compared with the rate fresh real rows show.",
        "collapse": "Collapse indicators against the fixed real anchor: category survival, variance ratios.",
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
        card = _scorecard(lake, name, fp, batch, real_train, real_holdout, config, Contract.from_dict(real_contract))
        failures = card.failures_for(check)
        scores = {k: v for k, v in card.scores.items() if k.startswith(check + ".") or
                  (check == "fidelity" and k.startswith("shape."))}
        passed = not failures
        lake.write_check_record(name, CheckRecord(check, fp, passed, [f.__dict__ for f in failures], scores,
                                                  generator["mlflow_run_id"]))
        _log_to_generation_run(mlflow_tracking, generator["mlflow_run_id"], check, passed, scores)
        failed = "\n".join(f"| `{f.indicator}` | {f.value:.4g} | {f.threshold:.4g} | {f.reason} |" for f in failures)
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if passed else "; ".join(f.reason for f in failures),
            metadata={
                **{k: float(v) for k, v in list(scores.items())[:40]},
                "batch_fingerprint": fp,
                "failures": dg.MetadataValue.md("| indicator | value | threshold | reason |\n|---|---|---|---|\n"
                                                + failed) if failed else dg.MetadataValue.md("none"),
            },
        )

    return scorecard_check


def build_gate_checks(config: PipelineConfig, study: StudyConfig) -> list[dg.AssetChecksDefinition]:
    checks = []
    for k in range(study.generations):
        checks.append(build_contract_check(study, k))
        checks.extend(build_scorecard_check(study, k, c, config) for c in SCORECARD_CHECKS)
    return checks
