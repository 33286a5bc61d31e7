"""Benchmark our generators against SDV's GaussianCopula, CTGAN and TVAE on three tables, in one run.

    .venv/bin/python benchmarks/bench_generators.py --epochs 100            # everything
    .venv/bin/python benchmarks/bench_generators.py --epochs 5 --datasets crashes --sdv ""   # quick look

Every (table, generator) pair runs in its own subprocess with the same thread count, so fit time,
sampling speed and peak memory (the process's peak RSS, imports included) are measured alike. SDV
runs in benchmarks/.venv-sdv (see requirements-sdv.txt); every synthetic table is scored there with
SDMetrics' QualityReport against the same real table and the same metadata. Results go to
benchmarks/out/results.{json,md}; `--docs` also writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
SDV_PY = HERE / ".venv-sdv" / "bin" / "python"
DATASETS = {
    "crashes": ROOT / "ouroboros" / "data" / "crashes.parquet",
    "loans": OUT / "data" / "loans.parquet",
    "caravan": OUT / "data" / "caravan.parquet",
}
OURS = ["copula", "gan", "vae", "diffusion"]
SDV = ["sdv_copula", "sdv_ctgan", "sdv_tvae"]


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def _metadata(real_path: Path) -> dict:
    """SDV/SDMetrics single-table metadata from our own schema, so every model and the scorer agree on types."""
    import polars as pl

    from ouroboros.schema import ColumnKind, infer_schema

    schema = infer_schema(pl.read_parquet(real_path))
    sdtype = {ColumnKind.CONTINUOUS: "numerical", ColumnKind.INTEGER: "numerical", ColumnKind.BOOLEAN: "boolean",
              ColumnKind.CATEGORICAL: "categorical", ColumnKind.DATETIME: "datetime"}
    return {"columns": {c.name: {"sdtype": sdtype[c.kind]} for c in schema.columns}}


def run_one(dataset: str, family: str, epochs: int, threads: int, out_path: Path) -> None:
    """Child process: fit and sample one of our families; print one JSON line."""
    import resource

    import polars as pl
    import torch

    from ouroboros.generators import create

    torch.set_num_threads(threads)
    real = pl.read_parquet(DATASETS[dataset])
    params = {} if family == "copula" else {"epochs": epochs}
    gen = create(family, seed=0, **params)
    t = time.perf_counter()
    gen.fit(real)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    syn = gen.sample(real.height, seed=1)
    sample_s = time.perf_counter() - t
    syn.write_parquet(out_path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"fit_s": fit_s, "sample_s": sample_s, "rows": syn.height, "peak_mb": peak}))


def _child(cmd: list[str], threads: int, timeout: int) -> dict:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(threads), timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--datasets", default="crashes,loans,caravan")
    ap.add_argument("--ours", default=",".join(OURS))
    ap.add_argument("--sdv", default=",".join(SDV), help="SDV models to run ('' for none)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per fit+sample before a model is given up")
    ap.add_argument("--docs", action="store_true", help="write the table to docs/benchmarks.md")
    ap.add_argument("--one", nargs=3, metavar=("DATASET", "FAMILY", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        run_one(args.one[0], args.one[1], args.epochs, args.threads, Path(args.one[2]))
        return

    datasets = [d for d in args.datasets.split(",") if d]
    ours = [f for f in args.ours.split(",") if f]
    sdv = [m for m in args.sdv.split(",") if m]
    if (sdv or True) and not SDV_PY.exists():
        sys.exit(f"{SDV_PY} is missing: create it as described in benchmarks/requirements-sdv.txt (it also scores)")
    if any(not DATASETS[d].exists() for d in datasets):
        subprocess.run([str(SDV_PY), str(HERE / "extract_data.py")], check=True)

    results = []
    for ds in datasets:
        work = OUT / ds
        work.mkdir(parents=True, exist_ok=True)
        real = DATASETS[ds]
        meta_path = work / "metadata.json"
        meta_path.write_text(json.dumps(_metadata(real)))
        runs = []
        for fam in ours:
            syn = work / f"{fam}.parquet"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--epochs", str(args.epochs), "--threads",
                   str(args.threads), "--one", ds, fam, str(syn)]
            runs.append((fam, syn, cmd))
        for model in sdv:
            syn = work / f"{model}.parquet"
            cmd = [str(SDV_PY), str(HERE / "sdv_runner.py"), str(real), str(meta_path), model, str(args.epochs),
                   str(syn), str(args.threads)]
            runs.append((model, syn, cmd))
        done = []
        for name, syn, cmd in runs:
            if syn.exists():
                syn.unlink()
            r = _child(cmd, args.threads, args.timeout)
            r.update(dataset=ds, model=name, epochs=None if name in ("copula", "sdv_copula") else args.epochs)
            print(json.dumps(r), flush=True)
            results.append(r)
            if "error" not in r:
                done.append((r, syn))
        if done:
            scores = _child([str(SDV_PY), str(HERE / "score.py"), str(real), str(meta_path),
                             *[str(s) for _, s in done]], 1, args.timeout)
            for r, syn in done:
                r.update(scores.get(str(syn), {"score_error": scores.get("error")}))
                print(json.dumps(r), flush=True)

    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    table = render(results, args)
    (OUT / "results.md").write_text(table)
    print(table)
    if args.docs:
        (ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "benchmarks.md").write_text(table)


def render(results: list[dict], args: argparse.Namespace) -> str:
    import polars as pl

    lines = [
        "| table | rows x cols | model | epochs | fit s | sample rows/s | peak RSS MB | quality | shapes | pairs |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    shapes = {ds: pl.read_parquet(DATASETS[ds]).shape for ds in {r["dataset"] for r in results}}
    for r in results:
        h, w = shapes[r["dataset"]]
        if "error" in r:
            lines.append(f"| {r['dataset']} | {h:,} x {w} | {r['model']} | {r['epochs'] or '-'} | {r['error']} "
                         "| | | | | |")
            continue
        rate = r["rows"] / r["sample_s"] if r["sample_s"] > 0 else float("inf")
        q = lambda k, r=r: f"{r[k]:.3f}" if k in r else "-"  # noqa: E731
        lines.append(
            f"| {r['dataset']} | {h:,} x {w} | {r['model']} | {r['epochs'] or '-'} | {r['fit_s']:.1f} | {rate:,.0f} "
            f"| {r['peak_mb']:,.0f} | {q('score')} | {q('column_shapes')} | {q('column_pair_trends')} |"
        )
    header = (
        "# Generator benchmark\n\n"
        f"Run on {date.today().isoformat()} by `benchmarks/bench_generators.py --epochs {args.epochs}` on "
        f"{platform.machine()} Linux, {os.cpu_count()} cores, no GPU, {args.threads} torch threads for every model "
        "(ours and SDV's, each in its own process). Quality is SDMetrics' QualityReport score (mean of Column "
        "Shapes and Column Pair Trends) of a synthetic table as large as the real one. `copula`, `gan`, `vae`, "
        "`diffusion` are ours with default hyperparameters; `sdv_*` are SDV 2.0.0 synthesizers with default "
        "hyperparameters at the same epochs. Peak RSS is the whole process's, imports included.\n\n"
    )
    return header + "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
