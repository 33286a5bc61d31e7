"""The gate: four blocking asset checks on every synthetic batch, run as one multi-asset check per batch (one
step reads the batch and the real rows once and computes the scorecard once).

contract  Great Expectations suite derived from real_train (schema, types, nulls, ranges, categories,
          category survival, spread), each rule set where fresh real rows of the batch's size break it
          only at the contract's share of the false-refusal rate
fidelity  column shapes, association retention, mode collapse, detection AUC (gradient-boosted trees) and
          utility against real_train / real_holdout; also the scorecard's own schema checks
privacy   exact and near copies and closer-to-train share against every real_train row, each against
          real_holdout rows judged the same way; DCR, NNDR
collapse  against the fixed real anchor: variance ratio, tail mass, category and rare-category survival

A refusal is an outcome, not a crash. A blocking failure (beyond the user's threshold AND beyond noise:
docs/gate.md) is a failed check that does not fail its step: Dagster fails the step (and the run) of any
failed check whose severity is ERROR and that is `blocking`, so a refusal is reported with severity WARN,
`verdict: refused` in its metadata and a description starting "REFUSED", and one warning line in the run log
(batch, check, indicator, value, limit). The checks stay `blocking=True` for what that still gives: every
consumer of the batch starts only after all four checks judged it. The block itself is the stored verdict: each
check stores its judgement beside the batch (one file per check, keyed by the batch's content fingerprint and
the rules key: gate settings, target, real_train and real_holdout), and every consumer reads it
(`assets.lineage`): the next generation makes no output when an input batch was refused (Dagster then skips
everything after it), and training_set never takes a refused batch, in this run or any later one. A soft-limit
breach alone passes the check (the batch is approved) and says so in its description and metadata.
"""


import json
import re
import time
from pathlib import Path

import dagster as dg
import polars as pl
from mlflow.entities import Metric

from assets.common import batch_key, generator_key, key_text
from assets.real import contract_rules, contract_suite_name, save_contract_suite
from ouroboros.config import PipelineConfig, StudyConfig
from ouroboros.privacy.gate import apply_epsilon_limit
from ouroboros.quality import Scorecard, evaluate
from ouroboros.quality.contract import Contract
from ouroboros.quality.report_card import scorecard_markdown
from ouroboros.rebalance import TRAIN_SALT, reweighted
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
               rules: str, generator: dict | None = None,
               target_share: dict | None = None) -> tuple[Scorecard, bool, Path]:
    """Evaluate a batch once per rules key; the three scorecard checks share the result through the lake.
    Returns the card, whether this call computed it (that check logs the page to MLflow) and the page's path.
    The cache is keyed by the batch fingerprint and the rules key, so edited gate settings, another target or
    new real data judge the batch again."""
    path = lake.path / "scorecards" / key / f"{fp}.{rules}.json"
    if path.exists():
        return Scorecard.from_dict(json.loads(path.read_text())), False, path.with_suffix(".md")
    card = evaluate(batch, real_train, real_holdout, config.gate, schema=contract.schema, target=config.data.target,
                    target_share=target_share)
    card = apply_epsilon_limit(card, generator, config.gate.max_epsilon)  # dp hook: ε on the card, gate.max_epsilon
    atomic_write_json(path, card.to_dict())
    page = scorecard_markdown(key, card, config.gate.model_dump(), fp, rules=rules)
    atomic_write_bytes(path.with_suffix(".md"), page.encode())
    return card, True, path.with_suffix(".md")


def _metric_name(key: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", key)


def logged_model_id(generator: dict) -> str | None:
    """The MLflow 3 LoggedModel id of the generator (`models:/m-...`), or None for a record without one."""
    uri = generator.get("model_uri") or ""
    tail = uri.rsplit("/", 1)[-1]
    return tail if uri.startswith("models:/") and tail.startswith("m-") else None


def log_check_scores(mlflow_tracking: MlflowResource, generator: dict, check: str, passed: bool,
                     scores: dict[str, float], warned: bool = False) -> None:
    """The check's scores on the generation's run, each linked to the generator's LoggedModel (so the model's page
    lists them). Through the client: the finished run is written to, not re-opened as the active run."""
    ts = int(time.time() * 1000)
    model_id = logged_model_id(generator)
    metrics = [Metric(_metric_name(f"gate.{k}"), float(v), ts, 0, model_id=model_id) for k, v in scores.items()]
    metrics += [Metric(f"gate.{check}.passed", float(passed), ts, 0, model_id=model_id),
                Metric(f"gate.{check}.warned", float(warned), ts, 0, model_id=model_id)]
    client = mlflow_tracking.client()
    for at in range(0, len(metrics), 1000):  # MLflow takes at most 1,000 metrics per batch
        client.log_batch(generator["mlflow_run_id"], metrics=metrics[at:at + 1000])


def gate_result(key: dg.AssetKey, check: str, passed: bool, warnings: list, metadata: dict,
            description: str | None) -> dg.AssetCheckResult:
    """A refusal: failed, severity WARN (an ERROR would fail the step and the run: a refusal is an outcome, not a
    crash), `verdict: refused`; the block is the stored verdict every consumer reads. Soft limits only: passed
    (the batch is approved), with the breaches in the description and metadata."""
    if not passed:
        return dg.AssetCheckResult(asset_key=key, check_name=check, passed=False, severity=dg.AssetCheckSeverity.WARN,
                                   description=f"REFUSED by the gate ({check}): {description}",
                                   metadata={**metadata, "verdict": "refused"})
    if warnings:
        return dg.AssetCheckResult(asset_key=key, check_name=check, passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={**metadata, "verdict": "approved",
                                             "soft_limits_breached": len(warnings)},
                                   description=f"{check}: soft limit(s) breached, batch still approved: "
                                               + "; ".join(w.reason for w in warnings))
    return dg.AssetCheckResult(asset_key=key, check_name=check, passed=True, severity=dg.AssetCheckSeverity.WARN,
                               metadata={**metadata, "verdict": "approved"})


def refusal_line(name: str, check: str, failures: list[dict]) -> str:
    """The one log line of a refusal: which batch, which check and indicator, the value and the limit."""
    first = failures[0] if failures else {"indicator": check}
    value, limit = first.get("value"), first.get("threshold")
    if isinstance(value, (int, float)) and isinstance(limit, (int, float)):
        what = f"{first['indicator']} = {value:.4g}, limit {limit:.4g}"
    else:
        what = f"{first['indicator']}: {str(first.get('reason') or value)[:120]}"
    more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
    return f"REFUSED {name} by {check}: {what}{more}"


def contract_result(context, key: dg.AssetKey, study: StudyConfig, config: PipelineConfig, batch: pl.DataFrame,
                    generator: dict, real_train: pl.DataFrame, real_holdout: pl.DataFrame, lake: LakeResource,
                    gx_context: GreatExpectationsResource, mlflow_tracking: MlflowResource) -> dg.AssetCheckResult:
    """The contract check: the batch validated against the Great Expectations suite derived from real_train."""
    name = key_text(key)
    fp = fingerprint(batch)
    rules = judged_under(config, real_train, real_holdout)
    # a rebalanced study's batch is held to a contract derived from real_train stratified to its class mix
    # (ouroboros.rebalance): its own suite, since the name carries the rows' fingerprint
    reference = reweighted(real_train, config.data.target, study.target_share, config.gate.seed + TRAIN_SALT)
    suite = contract_suite_name(config, reference)
    if not gx_context.has_suite(suite):
        # the stored suite was derived under other rules (or never): rebuild it for today's, never reuse it
        suite, _ = save_contract_suite(gx_context, config, reference)
    result = gx_context.validate(batch, suite, name.replace("/", "."), run_id=context.run.run_id)
    docs = gx_context.docs_index()
    failures = [{"check": "contract", "indicator": f"{r['expectation']}:{r['column']}", "value": r["observed"],
                 "threshold": None, "reason": r["why"]} for r in result.failures]
    scores = {"contract.rules": float(len(result.results)), "contract.failed_rules": float(len(failures))}
    lake.write_check_record(name, CheckRecord("contract", fp, result.success, failures, scores,
                                              generator["mlflow_run_id"], rules_key=rules,
                                              rule_set=rule_set_hash(config.gate.model_dump())))
    log_check_scores(mlflow_tracking, generator, "contract", result.success, scores)
    if result.page is not None:
        # only this batch's validation page: uploading the whole site made the store grow with batches squared
        mlflow_tracking.client().log_artifact(generator["mlflow_run_id"], str(result.page),
                                              artifact_path="gate/data_docs")
    failed = "\n".join(f"| `{f['indicator']}` | {f['reason']} | {f['value']} |" for f in failures)
    if not result.success:
        context.log.warning(refusal_line(name, "contract", failures))
    return gate_result(key, "contract", result.success, [], {
        "rules": len(result.results), "failed_rules": len(failures), "batch_fingerprint": fp,
        **rule_set_metadata(config, rules),
        "data_docs": dg.MetadataValue.url(docs), "severity_policy": "contract rules are hard limits",
        "validation_page": dg.MetadataValue.path(str(result.page)) if result.page else "not on local disk",
        "failures": dg.MetadataValue.md("| rule | why | observed |\n|---|---|---|\n" + failed) if failed
        else dg.MetadataValue.md("all rules passed"),
    }, None if result.success else f"{len(failures)} contract rule(s) failed")


def scorecard_result(context, key: dg.AssetKey, check: str, config: PipelineConfig, card: Scorecard,
                     computed: bool, page: Path, fp: str, rules: str, generator: dict, lake: LakeResource,
                     mlflow_tracking: MlflowResource) -> dg.AssetCheckResult:
    """One of the scorecard's checks (fidelity, privacy, collapse) from the batch's one scorecard."""
    name = key_text(key)
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
    log_check_scores(mlflow_tracking, generator, check, passed, scores, bool(warnings))
    if computed:  # the card's rule set and page: the caller passes it for one check of a newly computed card
        client, run_id = mlflow_tracking.client(), generator["mlflow_run_id"]
        client.log_dict(run_id, {"rule_set": rule_set_hash(config.gate.model_dump()), "rules_key": rules,
                                 "target": config.data.target, "gate": config.gate.model_dump(),
                                 "skipped": card.skipped, "tests": card.scores.get("gate.tests"),
                                 "level_per_test": card.scores.get("gate.level_per_test")},
                        f"gate/{name}/rule_set.json")
        client.set_tag(run_id, "gate.rule_set", rule_set_hash(config.gate.model_dump()))
        if page.exists():
            client.log_artifact(run_id, str(page), artifact_path=f"gate/{name}")
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
    if not passed:
        context.log.warning(refusal_line(name, check, [f.__dict__ for f in failures]))
    return gate_result(key, check, passed, warnings, metadata, None if passed else "; ".join(f.reason for f in failures))


CHECK_DESCRIPTIONS = {
    "contract": "Great Expectations suite derived from real_train: columns, types, nulls, ranges, category sets, "
                "spread and tails.",
    "fidelity": "Column shapes (KS, chi-square), association retention, mode collapse, detection AUC "
                "(gradient-boosted trees) and utility against fresh real rows; pair trends and PRDC warn.",
    "privacy": "Exact and near copies and the share of rows closer to real_train than to real_holdout, against "
               "every real_train row and beyond what fresh real rows show; DCR and NNDR.",
    "collapse": "Variance ratio, tail mass, category and rare-category survival against the fixed real anchor, "
                "each tested against fresh real rows of the batch's size; Wasserstein distance warns.",
}


def build_batch_gate(study: StudyConfig, generation: int, config: PipelineConfig) -> dg.AssetChecksDefinition:
    """The four blocking checks of one batch as one multi-asset check: one step loads the batch and the real rows
    once and computes the scorecard once, instead of four steps each reloading them. It can be subset (a UI
    re-run of one check computes only what that check needs)."""
    key = batch_key(study.name, generation)
    reads = [generator_key(study.name, generation), "real_train", "real_holdout", "real_contract"]
    specs = [dg.AssetCheckSpec(check, asset=key, blocking=True, description=CHECK_DESCRIPTIONS[check],
                               additional_deps=reads) for check in ("contract", *SCORECARD_CHECKS)]

    @dg.multi_asset_check(
        name=f"{study.name}__batch_g{generation}_gate", specs=specs, can_subset=True,
        ins={"batch": dg.AssetIn(key), "generator": dg.AssetIn(generator_key(study.name, generation)),
             "real_train": dg.AssetIn("real_train"), "real_holdout": dg.AssetIn("real_holdout"),
             "real_contract": dg.AssetIn("real_contract")},
    )
    def batch_gate(context: dg.AssetCheckExecutionContext, batch: pl.DataFrame, generator: dict,
                   real_train: pl.DataFrame, real_holdout: pl.DataFrame, real_contract: dict, lake: LakeResource,
                   gx_context: GreatExpectationsResource, mlflow_tracking: MlflowResource):
        selected = {k.name for k in context.selected_asset_check_keys}
        if "contract" in selected:
            yield contract_result(context, key, study, config, batch, generator, real_train, real_holdout, lake,
                                  gx_context, mlflow_tracking)
        wanted = [c for c in SCORECARD_CHECKS if c in selected]
        if not wanted:
            return
        fp = fingerprint(batch)
        rules = judged_under(config, real_train, real_holdout)
        card, computed, page = _scorecard(lake, key_text(key), fp, batch, real_train, real_holdout, config,
                                          Contract.from_dict(real_contract), rules, generator, study.target_share)
        for check in wanted:
            yield scorecard_result(context, key, check, config, card, computed and check == wanted[0], page, fp,
                                   rules, generator, lake, mlflow_tracking)

    return batch_gate


def build_gate_checks(config: PipelineConfig, study: StudyConfig) -> list[dg.AssetChecksDefinition]:
    checks = []
    for k in range(study.generations):
        checks.append(build_batch_gate(study, k, config))
    return checks
