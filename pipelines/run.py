"""`python -m pipelines.run` (`ouroboros run`): materialise the whole pipeline on the Dagster instance, then print
a summary.

Runs go to the instance under DAGSTER_HOME, so `dagster dev` on the same home shows them.

A gate refusal is an outcome: the run succeeds, each refusal is one warning line in the log, and the refused
batch's descendants are not made (the checks and `assets.lineage`). Exit status (EXIT_*): 0 when the training
study produced approved data, 1 when the gate refused all of it, 2 on a usage or input error (the config, a
setting, a study name), 3 when a run failed (a crash: see the log).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import dagster as dg

from assets.common import generator_key
from assets.lineage import read_chain
from assets.registry import study_chain
from ouroboros.chain.bakeoff import _num
from ouroboros.config import AUTO, ConfigError, PipelineConfig, load_config
from ouroboros.report import first_movers, report_table, scorecard_bands
from ouroboros.schema import infer_schema
from pipelines.cli import add_run_arguments
from pipelines.definitions import (
    APPROVED_JOB,
    PIPELINE_JOB,
    REPORT_JOB,
    approved_job,
    build_definitions,
    pipeline_job,
    report_job,
)
from pipelines.settings import Settings, SettingsError
from resources import LakeResource
from resources.lake import asset_file

EXIT_APPROVED, EXIT_ALL_REFUSED, EXIT_USAGE, EXIT_CRASHED = 0, 1, 2, 3
LOG_LEVELS = {-1: "WARNING", 0: "INFO", 1: "DEBUG"}  # -q, default, -v


def _limit_text(failure: dict) -> str:
    """'association_retention 0.12 < 0.15', or the check's own words where it has no numeric limit."""
    value, limit = failure.get("value"), failure.get("threshold")
    if isinstance(value, (int, float)) and isinstance(limit, (int, float)):
        sign = "<" if value < limit else ">"
        return f"{failure['indicator']} {value:.3g} {sign} {limit:.3g}"
    reason = str(failure.get("reason", ""))
    return f"{failure['indicator']}: {reason[:60]}" if reason else str(failure["indicator"])


def chain_rows(config: PipelineConfig, lake: LakeResource, notes: dict[str, str] | None = None) -> list[dict]:
    """Per study: verdict per generation, the first indicator to move beyond real-data noise, where the guard
    tripped. The same chain walk and statistics as the collapse report, so the two always agree."""
    rules = lake.current_rules(config.gate.model_dump(), config.data.target)  # today's gate only
    chains = {s.name: study_chain(lake, s, None, notes, rules) for s in config.studies}
    records = [rec for chain in chains.values() for rec, _ in chain]
    table = report_table(records)
    movers = first_movers(table, scorecard_bands(records)) if table.height else {}
    rows = []
    for study in config.studies:
        judged = {rec.generation: rec for rec, _ in chains[study.name]}
        verdicts = []
        for k in range(study.generations):
            rec = judged.get(k)
            verdicts.append("-" if rec is None else {True: "pass", False: "FAIL", None: "?"}[rec.passed])
        failed = next((rec for rec in judged.values() if rec.passed is False), None)
        mover = movers.get(study.name)
        if failed is not None:
            first = failed.failures[0] if failed.failures else {"indicator": "contract"}
            guard = f"STOPPED at g{failed.generation}: {_limit_text(first)}"
        elif len(judged) == study.generations and all(r.passed for r in judged.values()):
            guard = f"held all {study.generations}"
        else:
            guard = f"not run past g{len(judged) - 1}" if judged else "not run"
        chosen = judged[min(judged)].family if judged else None  # under family auto: what the bake-off chose
        family = f"auto: {chosen}" if study.family == AUTO and chosen else study.family
        rows.append({"chain": study.name, "family": family, "policy": study.policy, "verdicts": verdicts,
                     "first_to_move": f"{mover[1]} (g{mover[0]})" if mover else "nothing beyond noise",
                     "guard": guard})
    return rows


def step_lines(config: PipelineConfig, lake: LakeResource) -> list[str]:
    """Per study whose generation 0 made choices (family auto, a budget cut, repair): the bake-off table, what
    the budget cut, every attempt and, when none passed, what the user can do. Read from the generator records."""

    lines: list[str] = []
    for study in config.studies:
        path = asset_file(lake.root, generator_key(study.name, 0).path, ".json")
        step = json.loads(path.read_text()).get("step") if path.exists() else None
        if not step or not (step.get("bakeoff") or step.get("budget_cut") or len(step.get("attempts", [])) > 1):
            continue
        lines += ["", f"{study.name}, generation 0: {step['family']}"
                  + (f" (family auto; bake-off on {step['bakeoff_validation_rows']} validation rows of real_train, "
                     "real_holdout not read)" if step.get("bakeoff") else "")
                  + f", {step['fit_seconds']:.0f} s fit, {step['total_seconds']:.0f} s in all"]
        for c in step.get("bakeoff") or []:
            lines.append(f"  {c['rank']}. {c['family']:<10} epochs {c['epochs'] if c['epochs'] is not None else '-':>4}"
                         f"  rows {c['train_rows']:>7,}  {'pass' if c['passed'] else 'FAIL'}  quality "
                         f"{c['quality']:.3f}  detection {c['detection_auc']:.3f}  utility {_num(c['utility'])}  "
                         f"{c['fit_seconds']:.1f} s" + (f"  refused by {c['refused_by']}" if c["refused_by"] else "")
                         + (f"  (budget cut {c['cut']})" if c["cut"] else ""))
        if step.get("budget_cut"):
            lines.append(f"  budget ({study.budget_seconds:.0f} s) cut: {step['budget_cut']}")
        attempts = step.get("attempts", [])
        if any(a["gated"] for a in attempts):
            lines.append(f"  attempts on real_holdout ({step['holdout_looks']} look(s)):")
            lines += [f"    {a['number']}. {a['strategy']}: {a['family']}, "
                      + ("passed" if a["passed"] else f"refused by {a['refused_by']}") for a in attempts]
        if step.get("advice"):
            lines.append(f"  {step['advice']}")
    return (["Generation 0 choices (bake-off, budget, repair):"] + lines) if lines else []


def chain_table(rows: list[dict]) -> list[str]:
    """Fixed-width table, one row per chain: readable in a terminal and in a log."""
    generations = max(len(r["verdicts"]) for r in rows)
    head = ["chain", "family", "policy", *[f"g{k}" for k in range(generations)], "first to move", "guard"]
    body = [[r["chain"], r["family"], r["policy"], *(r["verdicts"] + [""] * (generations - len(r["verdicts"]))),
             r["first_to_move"], r["guard"]] for r in rows]
    widths = [max(len(str(x)) for x in column) for column in zip(head, *body)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [fmt(head), *(fmt(b) for b in body)]


def identifier_lines(config: PipelineConfig, lake: LakeResource) -> list[str]:
    """Which columns were taken as identifiers (regenerated, never modelled) and why, from real_train's schema."""
    train = lake.read_asset_table(["real_train"])
    if train is None:
        return []
    ids = infer_schema(train, target=config.data.target, id_columns=config.data.id_columns).identifiers()
    if not ids:
        return ["Identifiers: none (every column is modelled)"]
    return ["Identifiers (regenerated, not modelled): " + "; ".join(f"{c}: {why}" for c, why in ids.items())]


def summarise(config: PipelineConfig, lake: LakeResource, settings: Settings, result,
              refused: list[dict] | None = None, seconds: tuple[float, float] | None = None) -> str:
    refused = refused or []
    status = "FAILED (see the log above)" if not result.success else (
        f"succeeded; the gate refused {len({r['batch'] for r in refused})} batch(es), whose descendants were not "
        "made" if refused else "succeeded")
    took = f" in {seconds[0]:.0f} s ({seconds[1]:.0f} s of CPU)" if seconds is not None else ""
    lines = [f"Dagster run {result.run_id}: {status}{took}", ""]
    version = lake.real_table_version()
    if version is not None:
        lines[1:1] = [f"Real table: version {version} of {lake.real_table_uri()} (new real files go to "
                      f"{settings.landing})"]
        lines[2:2] = identifier_lines(config, lake)
    notes: dict[str, str] = {}
    rows = chain_rows(config, lake, notes)
    lines += ["Chains (gate verdict per generation; '-' = not made, the chain was stopped before it):", ""]
    lines += ["  " + line for line in chain_table(rows)]
    steps = step_lines(config, lake)
    if steps:
        lines += ["", *steps]
    stopped = sum(r["guard"].startswith("STOPPED") for r in rows)
    held = sum(r["guard"].startswith("held") for r in rows)
    lines += ["", f"  The guard stopped {stopped} chain(s); {held} held every generation."]
    # batches made from an earlier real table (or from a parent re-made since) are never used for training
    lines += [f"  {study}: STALE, {note}" for study, note in notes.items()]
    model_path = asset_file(lake.root, ["downstream_model"], ".json")
    if model_path.exists():
        m = json.loads(model_path.read_text())
        h = m["headline"]
        metrics = [h, *(k for k in m["tstr"] if k != h)]
        cell = lambda scores, k: f"{scores[k]:>10.3f}" if k in scores else f"{'n/a':>10}"  # noqa: E731
        share = m.get("synthetic_share")
        origin = ", ".join(f"{p['study']}/g{p['generation']} {p['rows']:,}" if p["origin"] == "synthetic"
                           else f"real {p['rows']:,}" for p in m.get("training_origin", []))
        trained_on = f"{m['training_rows']:,} rows" + (f", {share:.0%} synthetic: {origin}" if share is not None else "")
        lines += ["", f"Downstream {m['task']} model, scored on real holdout rows (trained on {trained_on}):",
                  f"  {'':<22}" + "".join(f"{k:>10}" for k in metrics),
                  f"  {'synthetic-trained':<22}" + "".join(cell(m["tstr"], k) for k in metrics),
                  f"  {'real-trained baseline':<22}" + "".join(cell(m["trtr"], k) for k in metrics)]
        if h in m["tstr"] and h in m["trtr"]:
            lines.append(f"  gap {m['tstr'][h] - m['trtr'][h]:+.3f} {h}")
        else:  # e.g. ROC AUC when the holdout rows of the target have a single class
            lines.append(f"  {h} n/a: the real holdout rows of target {config.data.target!r} have one class; only "
                         "accuracy and log-loss are scored")
    reports = settings.lake / "reports"
    lines += ["", "Where to look:",
              f"  collapse report  {reports / 'collapse_report.md'}  (plot: collapse_report.png)",
              "  Dagster UI       ouroboros ui  (or bin/ui)      http://127.0.0.1:3000",
              "  MLflow UI        bin/mlflow-ui                  http://127.0.0.1:5000",
              f"  GX Data Docs     {settings.gx_root / 'gx' / 'uncommitted' / 'data_docs' / 'local_site' / 'index.html'}"]
    return "\n".join(lines)


def refusals(result) -> list[dict]:
    """The gate's refusals in a run, from its check evaluations (`verdict: refused`, written by assets.checks):
    batch, check and the check's own description. Nothing is inferred from errors: a refusal fails no step."""
    out = []
    for e in result.get_asset_check_evaluations():
        verdict = e.metadata.get("verdict")
        if not e.passed and getattr(verdict, "value", verdict) == "refused":
            out.append({"batch": e.asset_key.to_user_string(), "check": e.check_name,
                        "description": e.description or ""})
    return out


def materialised(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def training_approved(config: PipelineConfig, lake: LakeResource) -> list[int]:
    """The generations of the training study whose batches training may take (today's rules, today's real_train)."""
    study = config.study(config.training.study)
    rules = lake.current_rules(config.gate.model_dump(), config.data.target)
    return list(read_chain(lake, study.name, study.generations, rules=rules).chain.accepted)


def select_studies(config: PipelineConfig, names: list[str] | None) -> PipelineConfig:
    """`--study NAME ...`: only these studies (the training study among them); ConfigError names what is wrong."""
    if not names:
        return config
    known = [s.name for s in config.studies]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"--study {', '.join(unknown)}: no such study in the config (studies: {', '.join(known)})")
    if config.training.study not in names:
        raise ConfigError(f"--study: the training study {config.training.study!r} (training.study) must be among "
                          "the studies run, or the downstream model has nothing to train on; add "
                          f"--study {config.training.study}")
    return config.model_copy(update={"studies": [s for s in config.studies if s.name in names]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ouroboros run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        if args.config is not None:
            settings = dataclasses.replace(settings, config_path=args.config.resolve())
        config = select_studies(load_config(settings.config_path), args.study)
        defs = build_definitions(config, settings)
    except (ConfigError, SettingsError) as exc:
        print(f"ouroboros run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    instance = dg.DagsterInstance.get()
    started, cpu = time.perf_counter(), time.process_time()  # CPU time too: wall time on a shared machine misleads
    level = LOG_LEVELS[max(-1, min(1, args.verbose - args.quiet))]
    logging = {"loggers": {"console": {"config": {"log_level": level}}}}  # step chatter stays in the UI
    custom = args.config is not None or bool(args.study)

    def execute(name: str):
        if settings.executor == "in_process" or custom:
            # a --config or --study run builds its definitions here: step processes could not rebuild them
            return defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False,
                                                                 run_config=logging)
        # the job's own executor (multiprocess on the stack): steps in their own processes, studies in parallel
        entry = {PIPELINE_JOB: pipeline_job, APPROVED_JOB: approved_job, REPORT_JOB: report_job}[name]
        return dg.execute_job(dg.reconstructable(entry), instance=instance, run_config=logging, raise_on_error=False)

    result = execute(PIPELINE_JOB)
    refused = refusals(result)
    if config.data.kind == "images":
        return _image_summary(config, defs, execute, result, refused, started)
    if config.data.tables is not None:
        return _dataset_summary(config, defs, execute, result, refused, started)
    lake = defs.resources["lake"]
    if result.success and "collapse_report" not in materialised(result):
        # a refused batch's descendants were not made, and Dagster skips every asset downstream of one not made
        # (training_set, the report): a follow-up run trains on what the gate approved (training_set re-checks
        # every verdict) and rebuilds the report; only the report when the training study has nothing approved
        follow = APPROVED_JOB if training_approved(config, lake) else REPORT_JOB
        follow_up = execute(follow)
        if not follow_up.success:
            print(f"\nthe follow-up run {follow_up.run_id} ({follow}) FAILED: see the log above", file=sys.stderr)
            result = follow_up
    print()
    print(summarise(config, lake, settings, result, refused,
                    (time.perf_counter() - started, time.process_time() - cpu)))
    if not result.success:
        return EXIT_CRASHED
    return EXIT_APPROVED if training_approved(config, lake) else EXIT_ALL_REFUSED


def _report_summary(execute, result, refused: list[dict], started: float, page, label: str,
                    refused_what: str, list_refusals: bool = False):
    """The summary of a graph whose report is a page (images, datasets): after a run whose gate refused a batch
    (the report was skipped with the refused batch's descendants) the report is rebuilt from the stored verdicts,
    then the run's state and the page are printed. Returns the follow-up's result when it failed, else the run's."""
    if result.success and refused:
        follow_up = execute(REPORT_JOB)
        if not follow_up.success:
            print(f"\nthe follow-up run {follow_up.run_id} ({REPORT_JOB}) FAILED: see the log above", file=sys.stderr)
            result = follow_up
    state = "FAILED (see the log above)" if not result.success else (
        f"succeeded; the gate refused {len({r['batch'] for r in refused})} {refused_what}" if refused
        else "succeeded")
    print(f"\nDagster run {result.run_id}: {state} in {time.perf_counter() - started:.0f} s")
    for r in refused if list_refusals else ():
        print(f"  REFUSED {r['batch']} by {r['check']}: {r['description'][:160]}")
    if page.exists():
        print(page.read_text())
        print(f"{label}  {page}")
    return result


def _image_summary(config: PipelineConfig, defs, execute, result, refused: list[dict], started: float) -> int:
    """Image studies have no downstream training job. A refusal is an outcome here too (assets/images.py: a
    failed check of severity WARN, `verdict: refused`, the next generation not made, so Dagster skips the
    report): after one the report is rebuilt, then its page (verdict per generation, sample grids) is printed.
    Exit status as for tables: 0 when the training study has an approved batch, 1 when the gate refused all of
    it, 3 when a run failed."""
    from assets.images import approved_generations

    lake = defs.resources["lake"]
    result = _report_summary(execute, result, refused, started, lake.reports_dir() / "images_report.md",
                             "image report", "batch(es), whose descendants were not made")
    if not result.success:
        return EXIT_CRASHED
    return EXIT_APPROVED if approved_generations(lake, config.study(config.training.study)) else EXIT_ALL_REFUSED


def _dataset_summary(config: PipelineConfig, defs, execute, result, refused: list[dict], started: float) -> int:
    """A dataset of several tables (assets/datasets.py) has no downstream training job yet: after a refusal the
    dataset report is rebuilt from the stored verdicts, then printed (each generation's checks per table and on
    the links, the link statistics). Exit status as for tables: 0 when a study has an approved batch, 1 when the
    gate refused every study's first batch, 3 when a run failed."""
    from assets.datasets import approved_dataset_generations

    lake = defs.resources["lake"]
    result = _report_summary(execute, result, refused, started, lake.reports_dir() / "dataset_report.md",
                             "dataset report", "table batch(es), whose generations' descendants were not made",
                             list_refusals=True)
    if not result.success:
        return EXIT_CRASHED
    approved = {s.name: approved_dataset_generations(lake, config, s) for s in config.studies}
    return EXIT_APPROVED if any(approved.values()) else EXIT_ALL_REFUSED


if __name__ == "__main__":
    sys.exit(main())
