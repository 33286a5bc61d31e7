"""Benchmark our generators against SDV (GaussianCopula, CTGAN, TVAE) and MOSTLY AI (TabularARGN), in one run.

    .venv/bin/python benchmarks/bench_generators.py --epochs 100 --docs     # everything
    .venv/bin/python benchmarks/bench_generators.py --epochs 5 --datasets crashes --sdv "" --mostly ""   # a quick look

Tables: the demo (crashes) and three made by `tables.py` (a 1,500-level categorical, 60 numeric columns,
mostly categorical). Each is split 80/20 into train and holdout, stratified on its binary target
(`--max-rows` caps the training rows). Every (table, model) pair runs in its own subprocess with the
same thread count and epochs, so fit time, sampling speed and peak memory are measured alike. SDV runs
in benchmarks/.venv-sdv, TabularARGN in benchmarks/.venv-mostly; every synthetic table is scored by
`score.py` in the SDV venv, the same code for every model (SDMetrics quality, XGBoost detection AUC,
DCR share, TSTR against TRTR). Results go to benchmarks/out/results.{json,md}; `--docs` also writes
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
SDV_PY = HERE / ".venv-sdv" / "bin" / "python"
MOSTLY_PY = HERE / ".venv-mostly" / "bin" / "python"
DATASETS = ["crashes", "loans", "survey", "insurance"]
OURS = ["copula", "gan", "vae", "diffusion"]
SDV = ["sdv_copula", "sdv_ctgan", "sdv_tvae"]
MOSTLY = ["mostly_argn"]
UNTRAINED = {"copula", "sdv_copula"}  # no epochs


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def _real(name: str):
    import polars as pl

    sys.path.insert(0, str(HERE))
    from tables import MAKERS

    if name == "crashes":
        return pl.read_parquet(ROOT / "ouroboros" / "data" / "crashes.parquet")
    return MAKERS[name]()


def prepare(name: str, max_rows: int, work: Path) -> dict:
    """Write train.parquet, holdout.parquet and metadata.json for one table; return its facts."""
    from tables import TARGETS

    from ouroboros.schema import ColumnKind, infer_schema
    from ouroboros.split import train_holdout_split

    real = _real(name)
    target = TARGETS[name]
    train, holdout = train_holdout_split(real, 0.2, 0)
    if train.height > max_rows:  # both sides shrink alike, so detection and DCR compare equal-sized samples
        train = train.sample(max_rows, seed=0)
        holdout = holdout.sample(min(holdout.height, max_rows // 4), seed=0)
    # written aside and renamed: a run of other models on the same table may be reading them (same content)
    for frame, file in ((train, "train.parquet"), (holdout, "holdout.parquet")):
        part = work / f".{file}.{os.getpid()}"
        frame.write_parquet(part)
        os.replace(part, work / file)
    schema = infer_schema(train)
    sdtype = {ColumnKind.CONTINUOUS: "numerical", ColumnKind.INTEGER: "numerical", ColumnKind.BOOLEAN: "boolean",
              ColumnKind.CATEGORICAL: "categorical", ColumnKind.DATETIME: "datetime"}
    meta = {"columns": {c.name: {"sdtype": sdtype[c.kind]} for c in schema.columns}}
    (work / "metadata.json").write_text(json.dumps(meta))
    widest = max((train[c.name].n_unique() for c in schema.columns if c.kind == ColumnKind.CATEGORICAL), default=0)
    numeric = sum(c.kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER) for c in schema.columns)
    return {"dataset": name, "target": target, "train_rows": train.height, "holdout_rows": holdout.height,
            "columns": train.width, "numeric_columns": numeric, "widest_categorical": widest,
            "null_cells": float(sum(train[c].null_count() for c in train.columns) / (train.height * train.width)),
            }


def run_one(train_path: Path, family: str, epochs: int, threads: int, out_path: Path) -> None:
    """Child process: fit and sample one of our families at its defaults (and the run's epochs); print one JSON line."""
    import polars as pl
    import torch
    from fit_timing import fit_and_sample, print_result

    from ouroboros.generators import create

    torch.set_num_threads(threads)
    real = pl.read_parquet(train_path)
    params = {} if family == "copula" else {"epochs": epochs}
    gen = create(family, seed=0, **params)
    syn, timings = fit_and_sample(lambda: gen.fit(real), lambda: gen.sample(real.height, seed=1))
    syn.write_parquet(out_path)
    print_result(timings, syn.height)


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
    ap.add_argument("--max-rows", type=int, default=1_000_000, help="cap on training rows per table")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--ours", default=",".join(OURS))
    ap.add_argument("--sdv", default=",".join(SDV), help="SDV models to run ('' for none)")
    ap.add_argument("--mostly", default=",".join(MOSTLY), help="MOSTLY AI models to run ('' for none)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per fit+sample before a model is given up")
    ap.add_argument("--docs", action="store_true", help="write the tables to docs/benchmarks.md")
    ap.add_argument("--merge", action="store_true",
                    help="only render: merge every benchmarks/out/results-*.json (runs of single tables) into one report")
    ap.add_argument("--run-commit", help="with --merge: the commit the runs were made at (default: recorded, or HEAD)")
    ap.add_argument("--label", default="", help="suffix of this run's results file, so runs of other models on the "
                    "same tables (peers in one process, ours in another) can be merged with --merge")
    ap.add_argument("--one", nargs=3, metavar=("TRAIN", "FAMILY", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        run_one(Path(args.one[0]), args.one[1], args.epochs, args.threads, Path(args.one[2]))
        return

    if args.merge:
        parts = [json.loads(p.read_text()) for p in sorted(OUT.glob("results-*.json"))]
        facts_by_table: dict[str, dict] = {}  # one entry per table, whichever part scored it
        for f in (f for part in parts for f in part["facts"]):
            facts_by_table.setdefault(f["dataset"], {}).update({k: v for k, v in f.items() if v is not None})
        facts = list(facts_by_table.values())
        results = [r for part in parts for r in part["results"]]
        started = min(datetime.fromisoformat(part["started"]) for part in parts)
        given = args.run_commit
        for part in parts:  # epochs and threads must be the same in every part (the row cap is per table)
            vars(args).update({k: v for k, v in part["settings"].items() if k != "max_rows" and v is not None})
        # parts run at other commits: say which, unless the caller did
        args.run_commit = given or ", ".join(sorted({str(p["settings"].get("run_commit")) for p in parts})) or _commit()
        _write(render(facts, results, args, started), args.docs)
        return

    datasets = [d for d in args.datasets.split(",") if d]
    ours = [f for f in args.ours.split(",") if f]
    sdv = [m for m in args.sdv.split(",") if m]
    mostly = [m for m in args.mostly.split(",") if m]
    if not SDV_PY.exists():
        sys.exit(f"{SDV_PY} is missing: create it as described in benchmarks/requirements-sdv.txt (it also scores)")
    if mostly and not MOSTLY_PY.exists():
        sys.exit(f"{MOSTLY_PY} is missing: create it as described in benchmarks/requirements-mostly.txt")

    started = datetime.now(timezone.utc)
    args.run_commit = _commit()
    results, facts = [], []
    for ds in datasets:
        work = OUT / ds
        work.mkdir(parents=True, exist_ok=True)
        info = prepare(ds, args.max_rows, work)
        facts.append(info)
        print(json.dumps(info), flush=True)
        train, holdout, meta = work / "train.parquet", work / "holdout.parquet", work / "metadata.json"
        runs = []
        for fam in ours:
            syn = work / f"{fam}.parquet"
            runs.append((fam, syn, [sys.executable, str(Path(__file__).resolve()), "--epochs", str(args.epochs),
                                    "--threads", str(args.threads), "--one", str(train), fam, str(syn)]))
        for model in sdv:
            syn = work / f"{model}.parquet"
            runs.append((model, syn, [str(SDV_PY), str(HERE / "sdv_runner.py"), str(train), str(meta), model,
                                      str(args.epochs), str(syn), str(args.threads)]))
        for model in mostly:
            syn = work / f"{model}.parquet"
            runs.append((model, syn, [str(MOSTLY_PY), str(HERE / "mostly_runner.py"), str(train), str(args.epochs),
                                      str(syn), str(args.threads), str(work / "mostly_ws")]))
        done = []
        for name, syn, cmd in runs:
            if syn.exists():
                syn.unlink()
            r = _child(cmd, args.threads, args.timeout)
            r.update(dataset=ds, model=name, epochs=None if name in UNTRAINED else args.epochs)
            print(json.dumps(r), flush=True)
            results.append(r)
            if "error" not in r:
                done.append((r, syn))
        if done:
            scores = _child([str(SDV_PY), str(HERE / "score.py"), str(train), str(holdout), str(meta), info["target"],
                             *[str(s) for _, s in done]], args.threads, args.timeout)
            info["trtr"] = scores.get("__real__", {}).get("trtr")
            info["holdout_quality"] = scores.get("__real__", {}).get("holdout_quality")
            for r, syn in done:
                r.update(scores.get(str(syn), {"score_error": scores.get("error")}))
                print(json.dumps(r), flush=True)

    settings = {k: getattr(args, k) for k in ("epochs", "threads", "max_rows")} | {"run_commit": args.run_commit}
    (OUT / f"results-{'-'.join(datasets)}{'-' + args.label if args.label else ''}.json").write_text(json.dumps(
        {"started": started.isoformat(), "settings": settings, "facts": facts, "results": results}, indent=2))
    _write(render(facts, results, args, started), args.docs)


def _write(text: str, docs: bool) -> None:
    (OUT / "results.md").write_text(text)
    print(text)
    if docs:
        (ROOT / "docs" / "benchmarks.md").write_text(text)


def _commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ouroboros", "benchmarks"], capture_output=True,
                               text=True, cwd=ROOT).stdout
        return sha.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    except OSError:
        return "unknown"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def render(facts: list[dict], results: list[dict], args: argparse.Namespace, started: datetime) -> str:
    f3 = lambda r, k: f"{r[k]:.3f}" if isinstance(r.get(k), float) else "-"  # noqa: E731
    out = [
        "# Generator benchmark\n",
        f"Run from {started:%Y-%m-%d %H:%M} UTC at commit {args.run_commit} by `benchmarks/bench_generators.py "
        f"--epochs {args.epochs} --threads {args.threads}` (training rows per table as listed) on {_cpu_name()}, "
        f"{os.cpu_count()} cores, no GPU, Linux {platform.release()}, Python {platform.python_version()}. "
        f"Every model (ours, SDV 2.0.0's and MOSTLY AI's mostlyai-engine 2.7.3) ran in its own process with "
        f"{args.threads} torch threads and {args.epochs} epochs (TabularARGN: at most {args.epochs}; it stops "
        "early on its own validation loss), at default hyperparameters otherwise, and sampled as many rows as "
        "the training table. The machine's 2 cores were shared with other work during the run, so fit times "
        "are noisy: compare ratios within this run, not across runs. **fit CPU s** is the CPU time of the fitting "
        "process and its worker processes during the fit: with one thread per model it is the steadier "
        "measure of the work a fit takes.\n",
        "Scores (`benchmarks/score.py`, the same code for every model): **quality** is SDMetrics' Quality "
        "Report against the training rows; **detection** is an XGBoost classifier telling real holdout rows "
        "from as many synthetic rows (5-fold ROC AUC; 0.5: indistinguishable); **DCR share** is the share of "
        "synthetic rows nearer to a training row than to any holdout row (training side subsampled to the "
        "holdout's size; 0.5: no nearer to the training rows than fresh data); **TSTR** is XGBoost trained "
        "on the synthetic rows, ROC AUC on the real holdout, against **TRTR**, the same trained on the real "
        "training rows.\n",
    ]
    for info in facts:
        ds = info["dataset"]
        trtr = info.get("trtr")
        out.append(f"## {ds}\n")
        out.append(f"{info['train_rows']:,} training rows, {info['holdout_rows']:,} holdout rows, {info['columns']} "
                   f"columns ({info['numeric_columns']} numeric; widest categorical {info['widest_categorical']:,} "
                   f"levels; {info['null_cells']:.1%} null cells); target `{info['target']}`, TRTR "
                   f"{trtr:.3f}." if trtr is not None else f"target `{info['target']}`.")
        if info.get("holdout_quality") is not None:
            out[-1] += (f" The real holdout rows, scored as if synthetic, reach a quality of {info['holdout_quality']:.3f}: "
                        "what fresh real data of that size scores.")
        out[-1] += "\n"
        out.append("| model | fit s | fit CPU s | sample rows/s | peak RSS MB | quality | detection AUC | DCR share | TSTR |")
        out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in (r for r in results if r["dataset"] == ds):
            if "error" in r:
                out.append(f"| {r['model']} | {r['error']} | | | | | | | |")
                continue
            rate = r["rows"] / r["sample_s"] if r["sample_s"] > 0 else float("inf")
            out.append(f"| {r['model']} | {r['fit_s']:.1f} | {r.get('fit_cpu_s', float('nan')):.1f} | {rate:,.0f} "
                       f"| {r['peak_mb']:,.0f} | {f3(r, 'quality')} "
                       f"| {f3(r, 'detection_auc')} | {f3(r, 'dcr_share')} | {f3(r, 'tstr')} |")
        out.append("")
    out += targets(facts, results)
    return "\n".join(out) + "\n"


def targets(facts: list[dict], results: list[dict]) -> list[str]:
    """Issue 11's targets, each met or missed per table, from this run's numbers (fit time: CPU seconds)."""
    lines = ["## Targets (issue 11)\n",
             "Speed ratios use fit CPU seconds (the wall times above include waiting for the shared cores).\n",
             "| table | target | numbers | met |", "| --- | --- | --- | --- |"]
    for info in facts:
        ds, trtr = info["dataset"], info.get("trtr")
        got = {r["model"]: r for r in results if r["dataset"] == ds and "error" not in r and "quality" in r}

        def row(target: str, numbers: str, ok: bool, ds: str = ds) -> None:
            lines.append(f"| {ds} | {target} | {numbers} | {'yes' if ok else '**no**'} |")

        for fam, limit in (("gan", 0.75), ("vae", 0.75), ("diffusion", 0.65)):
            if fam in got:
                r = got[fam]
                row(f"{fam}: detection <= {limit}", f"{r['detection_auc']:.3f}", r["detection_auc"] <= limit)
                if trtr is not None:
                    row(f"{fam}: TSTR within 0.03 of TRTR", f"{r['tstr']:.3f} vs {trtr:.3f}", r["tstr"] >= trtr - 0.03)
        for ours, peer in (("gan", "sdv_ctgan"), ("vae", "sdv_tvae")):
            if ours in got and peer in got:
                a, b = got[ours], got[peer]
                speed = b["fit_cpu_s"] / max(a["fit_cpu_s"], 1e-9)
                row(f"{ours} vs {peer}: >= 3x faster, higher quality, lower detection",
                    f"{speed:.1f}x; quality {a['quality']:.3f} vs {b['quality']:.3f}; detection "
                    f"{a['detection_auc']:.3f} vs {b['detection_auc']:.3f}",
                    speed >= 3 and a["quality"] > b["quality"] and a["detection_auc"] < b["detection_auc"])
        if "diffusion" in got and "mostly_argn" in got:
            a, b = got["diffusion"], got["mostly_argn"]
            row("diffusion vs TabularARGN: better quality, detection, TSTR in less fit time",
                f"quality {a['quality']:.3f} vs {b['quality']:.3f}; detection {a['detection_auc']:.3f} vs "
                f"{b['detection_auc']:.3f}; TSTR {a['tstr']:.3f} vs {b['tstr']:.3f}; CPU s {a['fit_cpu_s']:.1f} vs "
                f"{b['fit_cpu_s']:.1f}",
                a["quality"] > b["quality"] and a["detection_auc"] < b["detection_auc"] and a["tstr"] > b["tstr"]
                and a["fit_cpu_s"] < b["fit_cpu_s"])
        if info["widest_categorical"] > 1000:
            for fam in ("copula", "gan", "vae", "diffusion"):
                if fam in got:
                    r = got[fam]
                    row(f"{fam}: high cardinality: fit <= 120 s, quality >= 0.90, detection <= 0.85",
                        f"CPU {r['fit_cpu_s']:.1f} s; quality {r['quality']:.3f}; detection {r['detection_auc']:.3f}",
                        r["fit_cpu_s"] <= 120 and r["quality"] >= 0.90 and r["detection_auc"] <= 0.85)
    return lines + [""]


if __name__ == "__main__":
    main()
