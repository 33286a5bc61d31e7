"""Bring a table, get approved synthetic data: the default pipeline's generation 0 over many real tables.

    .venv/bin/python benchmarks/bench_any_table.py                         # every table in the manifest
    .venv/bin/python benchmarks/bench_any_table.py --only diabetes,fair    # some of them
    .venv/bin/python benchmarks/bench_any_table.py --only diabetes --budget 40 --no-score   # a smoke run

Per table (benchmarks/out/tables/manifest.json: file and target), exactly as `ouroboros run` would with the
README's ouroboros.yaml and only data.source and data.target changed:

- split it as the pipeline does (`ouroboros.split.train_holdout_split`, ouroboros.yaml's holdout fraction
  and seed);
- run generation 0 of the training study (`training.study`, `family: auto` by default) through the same core
  function the generator asset calls (`ouroboros.chain.step.run_step`): the bake-off on a validation split of
  real_train, the budgeted fit, repair on refusal gated on real_holdout;
- print the chosen family, the bake-off table (with the indicator that refused each loser), the attempts and
  the gate verdict at generation 0 on real_holdout, fit and total seconds;
- write real_train, real_holdout and a synthetic table as large as real_train under --out/<table>/ and score
  them independently with benchmarks/score.py (XGBoost TSTR against TRTR, detection AUC) in the tables venv
  (benchmarks/.venv-tables, or $TABLES_PYTHON): a separate process, so its XGBoost shares nothing with the gate.

Prints markdown (one section per table and a summary table) on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLES = ROOT / "benchmarks" / "out" / "tables"
OUT = ROOT / "benchmarks" / "out" / "any_table"
SCORE = ROOT / "benchmarks" / "score.py"


def tables_python() -> Path | None:
    p = Path(os.environ.get("TABLES_PYTHON", ROOT / "benchmarks" / ".venv-tables" / "bin" / "python"))
    return p if p.exists() else None


def score(folder: Path, target: str) -> dict | None:
    """benchmarks/score.py --no-quality on the table's files: {"tstr", "trtr", "detection_auc", ...}."""
    python = tables_python()
    if python is None:
        print("  (no tables venv: set TABLES_PYTHON or build benchmarks/.venv-tables; scoring skipped)",
              file=sys.stderr)
        return None
    cmd = [str(python), str(SCORE), "--no-quality", str(folder / "train.parquet"), str(folder / "holdout.parquet"),
           "auto", target, str(folder / "synthetic.parquet")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        print(f"  score.py failed: {done.stderr[-2000:]}", file=sys.stderr)
        return None
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    out = json.loads(line)
    syn = out[str(folder / "synthetic.parquet")]
    return {"tstr": syn.get("tstr"), "trtr": out["__real__"].get("trtr"),
            "detection_auc": syn.get("detection_auc"), "dcr_share": syn.get("dcr_share")}


def resampled(real, rows: int, seed: int = 0):
    """`real` drawn with replacement to `rows` rows (seeded), for timing only: the copies add no information, so
    the quality of a run on it says nothing; a `rownames` index is renumbered so it stays an identifier."""
    import polars as pl

    out = real.sample(rows, with_replacement=True, shuffle=True, seed=seed)
    if "rownames" in out.columns:
        out = out.with_columns(pl.int_range(1, rows + 1, dtype=pl.Int64).alias("rownames"))
    return out


def run_table(name: str, spec: dict, config, study, out: Path, do_score: bool, tables: Path = TABLES,
              resample_rows: int | None = None) -> dict:
    import polars as pl
    import torch

    from ouroboros.chain.step import BATCH_SEED_OFFSET, run_step
    from ouroboros.schema import infer_schema
    from ouroboros.split import train_holdout_split

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    started = time.perf_counter()
    real = pl.read_parquet(tables / spec["file"])
    if resample_rows:
        real = resampled(real, resample_rows)
    target = spec["target"]
    train, holdout = train_holdout_split(real, config.data.holdout_fraction, config.data.seed, config.data.key)
    log = lambda msg: print(f"  [{name}] {msg}", file=sys.stderr)  # noqa: E731
    result = run_step(train, study, config.gate, 0, batch_rows=study.rows, real_train=train, real_holdout=holdout,
                      target=target, id_columns=tuple(config.data.id_columns), data_seed=config.data.seed,
                      log=log)
    step_seconds = time.perf_counter() - started
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    # identifier columns (a row index, a key) are regenerated, never modelled: scored, they would let XGBoost
    # tell synthetic rows from real ones by the id's range alone, and put a meaningless feature into TSTR
    ids = list(infer_schema(train, target=target, id_columns=config.data.id_columns).identifiers())
    train.drop(ids).write_parquet(folder / "train.parquet")
    holdout.drop(ids).write_parquet(folder / "holdout.parquet")
    result.generator.sample(train.height, seed=result.seed + BATCH_SEED_OFFSET).drop(ids).write_parquet(
        folder / "synthetic.parquet")
    (folder / "step.json").write_text(json.dumps(result.summary(), indent=1, default=str))
    scores = score(folder, target) if do_score else None
    return {"table": name, "shape": list(real.shape), "target": target, "result": result,
            "step_seconds": step_seconds, "total_seconds": time.perf_counter() - started, "scores": scores}


def _f(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def section(row: dict) -> str:
    r = row["result"]
    verdict = {True: "approved", False: "REFUSED", None: "not gated"}[r.passed]
    s = row["scores"] or {}
    lines = [f"## {row['table']} ({row['shape'][0]:,} x {row['shape'][1]}, target `{row['target']}`)", "",
             f"- chosen family: **{r.family}**; gate at generation 0 on real_holdout: **{verdict}** "
             f"({r.holdout_looks} look(s))",
             f"- fit {r.fit_seconds:.1f} s (kept attempt); step {row['step_seconds']:.1f} s; total "
             f"{row['total_seconds']:.1f} s (with writing and scoring)",
             f"- independent XGBoost: TSTR {_f(s.get('tstr'))} vs TRTR {_f(s.get('trtr'))}; detection AUC "
             f"{_f(s.get('detection_auc'))}", "", r.markdown(), ""]
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    head = ("| table | rows x cols | chosen | gate g0 | attempts | fit s | total s | TSTR | TRTR | detection AUC |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    body = []
    for row in rows:
        r, s = row["result"], row["scores"] or {}
        body.append(f"| {row['table']} | {row['shape'][0]:,} x {row['shape'][1]} | {r.family} | "
                    f"{ {True: 'approved', False: 'REFUSED', None: '-'}[r.passed]} | {len(r.attempts)} | "
                    f"{r.fit_seconds:.0f} | {row['total_seconds']:.0f} | {_f(s.get('tstr'))} | {_f(s.get('trtr'))} | "
                    f"{_f(s.get('detection_auc'))} |")
    return head + "\n".join(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "ouroboros.yaml",
                        help="its data (split), gate and training study are used; data.source is ignored")
    parser.add_argument("--only", default="", help="comma-separated table names from the manifest")
    parser.add_argument("--budget", type=float, default=None, help="override study.budget_seconds")
    parser.add_argument("--tables", type=Path, default=TABLES, help="folder with manifest.json and the tables")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-score", action="store_true", help="skip benchmarks/score.py")
    parser.add_argument("--resample-rows", type=int, default=None,
                        help="timing only: draw each table with replacement to this many rows first (e.g. 300000); "
                             "its quality numbers mean nothing")
    args = parser.parse_args(argv)

    from ouroboros.config import load_config

    manifest = json.loads((args.tables / "manifest.json").read_text())
    names = [n for n in args.only.split(",") if n] or list(manifest)
    unknown = sorted(set(names) - set(manifest))
    if unknown:
        parser.error(f"--only {unknown}: not in {args.tables / 'manifest.json'} (tables: {sorted(manifest)})")
    config = load_config(args.config)
    study = config.study(config.training.study)
    if args.budget is not None:
        study = study.model_copy(update={"budget_seconds": args.budget})
    print(f"# Any table: generation 0 of study `{study.name}` (family {study.family}, budget "
          f"{study.budget_seconds:.0f} s, candidates {', '.join(study.candidates)})\n")
    rows = []
    for name in names:
        print(f"{name}...", file=sys.stderr)
        row = run_table(name, manifest[name], config, study, args.out, not args.no_score, args.tables,
                        args.resample_rows)
        rows.append(row)
        print(section(row), flush=True)
    print("## Summary\n\n" + summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
