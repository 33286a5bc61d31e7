"""`ouroboros`: the command line. run, ui and report drive the Dagster project; evaluate needs no Dagster.

Dagster is imported inside the subcommands that use it, so `ouroboros --help` and `ouroboros evaluate` start
fast and work without a Dagster instance.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipelines.settings import PROJECT_ROOT

DESCRIPTION = """\
Ouroboros: a synthetic-data factory with a guard against model collapse.

Locations come from environment variables (OUROBOROS_CONFIG, OUROBOROS_LAKE, DAGSTER_HOME, ...;
see the README, "Where things live"); by default everything lives in the project folder."""

COMMANDS = {
    "run": "materialise the whole pipeline of ouroboros.yaml on the Dagster instance, then print a summary: "
           "per chain the gate's verdict per generation, the first indicator to move and where the guard "
           "tripped; the downstream model against the real-only baseline; where to look next",
    "ui": "start the Dagster UI and daemon (dagster dev) on the same instance and lake: assets, checks, runs, "
          "the landing sensor",
    "report": "rebuild the collapse report (markdown, plot, table) from the stored verdicts and print where it is",
    "evaluate": "score a synthetic table against a real one with the gate, without Dagster, and print the "
                "scorecard; exit status 0 if the gate would approve it, 1 if it would block it",
}


RUN_EPILOG = """\
exit status: 0 the training study produced approved data (the gate may have refused other batches);
             1 the gate refused every batch of the training study (nothing approved to train on);
             2 a usage or input error (arguments, the config file, a setting, a study name);
             3 a run failed (a crash, not a refusal: see the log)."""


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return f"ouroboros {installed('ouroboros')}"
    except PackageNotFoundError:
        return "ouroboros (not installed)"


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `ouroboros run` (here, so `ouroboros --help` parses them without importing Dagster)."""
    p.add_argument("--config", type=Path, metavar="PATH",
                   help="the ouroboros.yaml to run (default: OUROBOROS_CONFIG, else ./ouroboros.yaml)")
    p.add_argument("--study", action="append", metavar="NAME",
                   help="run only this study (repeatable); the training study must be among them")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (debug)")
    p.add_argument("-q", "--quiet", action="count", default=0,
                   help="fewer log lines: warnings only (refusals still print, one line each)")
    p.add_argument("--version", action="version", version=version())


def dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to the project's own instance, with the project's dagster.yaml in it."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and not config.is_symlink() and (PROJECT_ROOT / "dagster.yaml").exists():
        config.symlink_to(PROJECT_ROOT / "dagster.yaml")
    return home


def cmd_run(args: argparse.Namespace) -> int:
    dagster_home()
    from pipelines.run import run

    return run(args)


def cmd_ui(args: argparse.Namespace) -> int:
    home = dagster_home()
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster) if dagster.exists() else "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
               "-h", args.host, "-p", str(args.port)]
    print(f"Dagster UI: http://{args.host}:{args.port}  (instance {home}; Ctrl-C stops it)", flush=True)
    # started from DAGSTER_HOME so dagster does not also pick up the repository's dagster.yaml from the cwd
    os.chdir(home)
    os.execvp(command[0], command)
    return 0  # not reached: exec replaces this process


def cmd_report(args: argparse.Namespace) -> int:
    dagster_home()
    import dagster as dg

    from ouroboros.config import load_config
    from pipelines.definitions import REPORT_JOB, build_definitions
    from pipelines.settings import Settings

    settings = Settings.from_env()
    defs = build_definitions(load_config(settings.config_path), settings)
    result = defs.resolve_job_def(REPORT_JOB).execute_in_process(
        instance=dg.DagsterInstance.get(), raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    page = settings.lake / "reports" / "collapse_report.md"
    if not result.success or not page.exists():
        print(f"the report could not be built (Dagster run {result.run_id}); run `ouroboros run` first", file=sys.stderr)
        return 1
    summary = [line for line in page.read_text().splitlines() if line.startswith("- **")]
    print("\n".join(summary))
    print(f"\nreport  {page}\nplot    {page.with_suffix('.png')}\ntable   {page.with_suffix('.parquet')}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipelines.evaluate import evaluate_files

    return evaluate_files(Path(args.synthetic), Path(args.real), target=args.target, config_path=args.config,
                          holdout_fraction=args.holdout_fraction, seed=args.seed, markdown=args.markdown)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ouroboros", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = sub.add_parser("run", help=COMMANDS["run"], description=COMMANDS["run"], epilog=RUN_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(run)
    run.set_defaults(func=cmd_run)
    ui = sub.add_parser("ui", help=COMMANDS["ui"], description=COMMANDS["ui"])
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    ui.set_defaults(func=cmd_ui)
    sub.add_parser("report", help=COMMANDS["report"], description=COMMANDS["report"]).set_defaults(func=cmd_report)
    ev = sub.add_parser("evaluate", help=COMMANDS["evaluate"], description=COMMANDS["evaluate"] + (
        ". REAL is split into a training part (what a generator would have seen) and a holdout, as the pipeline "
        "does; the gate's limits are widened to what fresh real rows of the synthetic table's size score."))
    ev.add_argument("synthetic", metavar="SYNTHETIC", help="synthetic table, CSV or parquet")
    ev.add_argument("real", metavar="REAL", help="the real table it imitates, CSV or parquet, same columns")
    ev.add_argument("--target", help="label column: adds the utility scores (train on synthetic, test on real)")
    ev.add_argument("--config", type=Path, help="take the gate's thresholds (gate:) from this ouroboros.yaml")
    ev.add_argument("--holdout-fraction", type=float, default=0.2, help="share of REAL kept as holdout (0.2)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the split and the gate's subsamples (0)")
    ev.add_argument("--markdown", action="store_true", help="print the full scorecard as markdown")
    ev.set_defaults(func=cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
