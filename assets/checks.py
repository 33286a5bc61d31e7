"""The gate: four blocking asset checks on every synthetic batch.

contract  Great Expectations suite derived from real_train (schema, types, nulls, ranges, categories,
          category survival, spread), each rule set where fresh real rows of the batch's size break it
          only at the contract's share of the false-refusal rate
fidelity  column shapes, association retention, mode collapse, detection AUC (gradient-boosted trees) and
          utility against real_train / real_holdout; also the scorecard's own schema checks
privacy   exact and near copies and closer-to-train share against every real_train row, each against
          real_holdout rows judged the same way; DCR, NNDR
collapse  against the fixed real anchor: variance ratio, tail mass, category and rare-category survival

A blocking failure (beyond the user's threshold AND beyond noise: docs/gate.md) is an ERROR-severity failed
check (downstream steps in the run do not start); a soft-limit breach alone is a WARN-severity failed check,
which does not block, and the stored record still approves. Each check stores its judgement beside the batch
(one file per check, keyed by the batch's content fingerprint and the rules key: gate settings, target,
real_train and real_holdout), so consumers in later runs refuse a batch never approved under today's rules.
"""


import json
import re
from pathlib import Path

import dagster as dg
import mlflow
import polars as pl

from assets.common import batch_key, generator_key, key_text
from assets.real import contract_rules, contract_suite_name, save_contract_suite
from ouroboros.config import PipelineConfig, StudyConfig
from ouroboros.privacy.gate import apply_epsilon_limit
from ouroboros.quality import Scorecard, evaluate
from ouroboros.quality.contract import Contract
from ouroboros.quality.report_card import scorecard_markdown
from ouroboros.verdict import CheckRecord, fingerprint, rule_set_hash, rules_key
from resources import GreatExpectationsResource, LakeResource, MlflowResource
from resources.lake import atomic_write_bytes, atomic_write_json

SCORECARD_CHECKS = ("fidelity", "privacy", "collapse")


def judged_under(config: PipelineConfig, real_train: pl.DataFrame, real_holdout: pl.DataFrame) -> str:
    """The rules key a verdict made now carries: gate settings and the contract's batch size, target, real_train
    and real_holdout (`LakeResource.current_rules` computes the same from the stored assets)."""
    return rules_key(contract_rules(config, real_train.height), config.data.target, fingerprint(real_train),
                     fingerprint(real_holdout))


def rule_set_metadata(config: PipelineConfig, rules: str) -> dict:
    """What the check metadata shows of the rules that judged: the hashes and every setting."""
    gate = config.gate.model_dump()
    return {"rule_set": rule_set_hash(gate), "rules_key": rules, "target": str(config.data.target),
            "thresholds": dg.MetadataValue.json(gate)}


def _scorecard(lake: LakeResource, key: str, fp: str, batch: pl.DataFrame, real_train: pl.DataFrame,
               real_holdout: pl.DataFrame, config: PipelineConfig, contract: Contract,
               rules: str, generator: dict | None = None) -> tuple[Scorecard, bool, Path]:
    """Evaluate a batch once per rules key; the three scorecard checks share the result through the lake.
    Returns the card, whether this call computed it (that check logs the page to MLflow) and the page's path.
    The cache is keyed by the batch fingerprint and the rules key, so edited gate settings, another target or
    new real data judge the batch again."""
    path = lake.path / "scorecards" / key / f"{fp}.{rules}.json"
    if path.exists():
        return Scorecard.from_dict(json.loads(path.read_text())), False, path.with_suffix(".md")
    card = evaluate(batch, real_train, real_holdout, config.gate, schema=contract.schema, target=config.data.target)
    card = apply_epsilon_limit(card, generator, config.gate.max_epsilon)  # dp hook: ε on the card, gate.max_epsilon
    atomic_write_json(path, card.to_dict())
    page = scorecard_markdown(key, card, config.gate.model_dump(), fp, rules=rules)
    atomic_write_bytes(path.with_suffix(".md"), page.encode())
    return card, True, path.with_suffix(".md")


def _metric_name(key: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", key)


def _log_to_generation_run(mlflow_tracking: MlflowResource, run_id: str, check: str, passed: bool,
                           scores: dict[str, float], warned: bool = False) -> None:
    with mlflow_tracking.resume(run_id):
        mlflow.log_metrics({_metric_name(f"gate.{k}"): float(v) for k, v in scores.items()})
        mlflow.log_metric(f"gate.{check}.passed", float(passed))
        mlflow.log_metric(f"gate.{check}.warned", float(warned))


def refusal_severity(study: StudyConfig) -> dg.AssetCheckSeverity:
    """The one place the gate's blocking decision reads the study's mode: a failed check blocks (ERROR), or under
    `gate_mode: observe` is scored and recorded without blocking (WARN; ouroboros.chain.observe)."""
    return dg.AssetCheckSeverity.WARN if study.gate_mode == "observe" else dg.AssetCheckSeverity.ERROR


def _result(check: str, passed: bool, warnings: list, metadata: dict, description: str | None,
            severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    """ERROR when a hard limit failed (blocks); WARN when only soft limits did (reported, does not block)."""
    if not passed:
        return dg.AssetCheckResult(passed=False, severity=severity, description=description, metadata=metadata)
    if warnings:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=metadata,
                                   description=f"{check}: soft limit(s) breached, batch still approved: "
                                               + "; ".join(w.reason for w in warnings))
    return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata)


def build_contract_check(study: StudyConfig, generation: int, config: PipelineConfig) -> dg.AssetChecksDefinition:
    key = batch_key(study.name, generation)

    @dg.asset_check(
        asset=key, name="contract", blocking=True,
        description="Great Expectations suite derived from real_train: columns, types, nulls, ranges, "
                    "category sets, spread and tails.",
        additional_ins={"generator": dg.AssetIn(generator_key(study.name, generation)),
                        "real_train": dg.AssetIn("real_train"), "real_holdout": dg.AssetIn("real_holdout")},
    )
    def contract_check(batch: pl.DataFrame, generator: dict, real_train: pl.DataFrame, real_holdout: pl.DataFrame,
                       lake: LakeResource, gx_context: GreatExpectationsResource,
                       mlflow_tracking: MlflowResource) -> dg.AssetCheckResult:
        name = key_text(key)
        fp = fingerprint(batch)
        rules = judged_under(config, real_train, real_holdout)
        suite = contract_suite_name(config, real_train)
        if not gx_context.has_suite(suite):
            # the stored suite was derived under other rules (or never): rebuild it for today's, never reuse it
            suite, _ = save_contract_suite(gx_context, config, real_train)
        result = gx_context.validate(batch, suite, name.replace("/", "."))
        docs = gx_context.docs_index()
        failures = [{"check": "contract", "indicator": f"{r['expectation']}:{r['column']}", "value": r["observed"],
                     "threshold": None, "reason": r["why"]} for r in result.failures]
        scores = {"contract.rules": float(len(result.results)), "contract.failed_rules": float(len(failures))}
        lake.write_check_record(name, CheckRecord("contract", fp, result.success, failures, scores,
                                                  generator["mlflow_run_id"], rules_key=rules,
                                                  rule_set=rule_set_hash(config.gate.model_dump())))
        _log_to_generation_run(mlflow_tracking, generator["mlflow_run_id"], "contract", result.success, scores)
        if result.page is not None:
            # only this batch's validation page: uploading the whole site made the store grow with batches squared
            with mlflow_tracking.resume(generator["mlflow_run_id"]):
                mlflow.log_artifact(str(result.page), artifact_path="gate/data_docs")
        failed = "\n".join(f"| `{f['indicator']}` | {f['reason']} | {f['value']} |" for f in failures)
        return dg.AssetCheckResult(
            passed=result.success,
            severity=refusal_severity(study),
            description=None if result.success else f"{len(failures)} contract rule(s) failed",
            metadata={
                "rules": len(result.results), "failed_rules": len(failures), "batch_fingerprint": fp,
                **rule_set_metadata(config, rules),
                "data_docs": dg.MetadataValue.url(docs), "severity_policy": "contract rules are hard limits",
                "validation_page": dg.MetadataValue.path(str(result.page)) if result.page else "not on local disk",
                "failures": dg.MetadataValue.md("| rule | why | observed |\n|---|---|---|\n" + failed) if failed
                else dg.MetadataValue.md("all rules passed"),
            },
        )

    return contract_check


def build_scorecard_check(study: StudyConfig, generation: int, check: str,
                          config: PipelineConfig) -> dg.AssetChecksDefinition:
    key = batch_key(study.name, generation)
    descriptions = {
        "fidelity": "Column shapes (KS, chi-square), association retention, mode collapse, detection AUC "
                    "(gradient-boosted trees) and utility against fresh real rows; pair trends and PRDC warn.",
        "privacy": "Exact and near copies and the share of rows closer to real_train than to real_holdout, against "
                   "every real_train row and beyond what fresh real rows show; DCR and NNDR.",
        "collapse": "Variance ratio, tail mass, category and rare-category survival against the fixed real anchor, "
                    "each tested against fresh real rows of the batch's size; Wasserstein distance warns.",
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
        rules = judged_under(config, real_train, real_holdout)
        card, computed, page = _scorecard(lake, name, fp, batch, real_train, real_holdout, config,
                                          Contract.from_dict(real_contract), rules, generator)
        # the scorecard's own schema checks (dtypes, unknown categories, nulls) block through fidelity
        failures = card.failures_for(check) + (card.failures_for("contract") if check == "fidelity" else [])
        warnings = card.warnings_for(check)
        scores = card.scores_for(check)
        passed = not failures
        skipped = card.skipped_for(check) if check != "fidelity" else {**card.skipped_for("fidelity"),
                                                                         **card.skipped_for("contract")}
        lake.write_check_record(name, CheckRecord(check, fp, passed, [f.__dict__ for f in failures], scores,
                                                  generator["mlflow_run_id"],
                                                  warnings=[w.__dict__ for w in warnings], rules_key=rules,
                                                  rule_set=rule_set_hash(config.gate.model_dump())))
        _log_to_generation_run(mlflow_tracking, generator["mlflow_run_id"], check, passed, scores, bool(warnings))
        if computed:
            with mlflow_tracking.resume(generator["mlflow_run_id"]):
                mlflow.log_dict({"rule_set": rule_set_hash(config.gate.model_dump()), "rules_key": rules,
                                 "target": config.data.target, "gate": config.gate.model_dump(),
                                 "skipped": card.skipped, "tests": card.scores.get("gate.tests"),
                                 "level_per_test": card.scores.get("gate.level_per_test")},
                                f"gate/{name}/rule_set.json")
                mlflow.set_tag("gate.rule_set", rule_set_hash(config.gate.model_dump()))
                if page.exists():
                    mlflow.log_artifact(str(page), artifact_path=f"gate/{name}")
        rows = "\n".join(f"| {f.severity} | `{f.indicator}` | {f.value:.4g} | {f.threshold:.4g} | {f.reason} |"
                         for f in failures + warnings)
        headline = {k: float(v) for k, v in scores.items() if k.count(".") <= 1 or k.startswith("shape.")}
        metadata = {
            **dict(list(headline.items())[:60]),
            "scores": dg.MetadataValue.json({k: float(v) for k, v in scores.items()}),
            **rule_set_metadata(config, rules),
            "batch_fingerprint": fp,
            "skipped": dg.MetadataValue.md("\n".join(f"- `{k}`: {v}" for k, v in skipped.items()) or "none"),
            "scorecard": dg.MetadataValue.path(str(page)),
            "failures": dg.MetadataValue.md("| severity | indicator | value | threshold | reason |\n|---|---|---|---|---|\n"
                                            + rows) if rows else dg.MetadataValue.md("none"),
        }
        return _result(check, passed, warnings, metadata, None if passed else "; ".join(f.reason for f in failures),
                       refusal_severity(study))

    return scorecard_check


def build_gate_checks(config: PipelineConfig, study: StudyConfig) -> list[dg.AssetChecksDefinition]:
    checks = []
    for k in range(study.generations):
        checks.append(build_contract_check(study, k, config))
        checks.extend(build_scorecard_check(study, k, c, config) for c in SCORECARD_CHECKS)
    return checks
