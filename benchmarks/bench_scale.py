"""Scale benchmark on the production stack: the whole pipeline on a generated 19-column table at two sizes
(default 300,000 and 30,000 rows), with the copula and one PyTorch family (VAE), Dagster on the stack's
Postgres instance and MLflow on its tracking server. Steps run one after another in one process per size
(in-process executor): on this 2-core machine a step process of the multiprocess executor spends a minute
importing under load, which would swamp the numbers, and one process lets memory be read per step.

Per asset step: wall time (Dagster's step start/success events in Postgres), the process's peak RSS inside the
step's window (sampled every 0.1 s) and how far it rose over the RSS at the step's start, and the ratio between
the two sizes: ~4 for a cost linear in rows.

    bin/stack up
    .venv/bin/python benchmarks/bench_scale.py --rows 300000,30000 --out benchmarks/out/scale
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import psycopg2
import yaml

ROOT = Path(__file__).resolve().parents[1]


def make_table(rows: int, seed: int = 0) -> pl.DataFrame:
    """19 mixed columns with nulls, correlations and a skewed class target; same generator at every size."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(4), [[1, .6, .3, 0], [.6, 1, .2, .1], [.3, .2, 1, .4], [0, .1, .4, 1]], rows)

    def nulls(values, share):
        mask = rng.random(rows) < share
        return [None if m else v for v, m in zip(values.tolist(), mask, strict=True)]

    region = rng.choice(["north", "south", "east", "west", "centre"], rows, p=[.35, .25, .2, .15, .05])
    product = rng.choice([f"p{i:03d}" for i in range(120)], rows, p=np.r_[np.full(20, .03), np.full(100, .004)])
    income = np.exp(10 + 0.5 * z[:, 0])
    score = 600 + 80 * z[:, 1]
    logit = -2.0 + 0.8 * z[:, 0] - 0.6 * z[:, 2] + (region == "east") * 0.5
    return pl.DataFrame({
        "age": rng.integers(18, 90, rows).astype(np.int32),
        "income": nulls(income, 0.05),
        "credit_score": score.round(0).astype(np.int64),
        "balance": np.round(np.maximum(0, 5000 + 3000 * z[:, 2]), 2),
        "utilisation": nulls(1 / (1 + np.exp(-z[:, 3])), 0.02),
        "tenure_months": rng.poisson(36, rows).astype(np.int32),
        "num_products": rng.integers(1, 6, rows).astype(np.int16),
        "transactions": rng.negative_binomial(5, 0.1, rows).astype(np.int64),
        "avg_ticket": np.round(np.exp(3 + 0.4 * z[:, 1]), 2),
        "days_late": nulls(rng.exponential(3, rows).round(1), 0.1),
        "risk_index": z[:, 0] * 0.5 + z[:, 3] * 0.5,
        "region": region,
        "product": product,
        "channel": nulls(rng.choice(["web", "app", "branch", "phone"], rows, p=[.4, .35, .15, .1]), 0.03),
        "segment": rng.choice(["retail", "premium", "business"], rows, p=[.7, .2, .1]),
        "employment": nulls(rng.choice(["employed", "self", "retired", "student", "none"], rows), 0.04),
        "has_card": rng.random(rows) < 0.6,
        "opened": pl.Series(rng.integers(0, 3650, rows)).cast(pl.Int32).map_elements(
            lambda d: date.fromordinal(date(2014, 1, 1).toordinal() + d), return_dtype=pl.Date),
        "default": np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no"),
    })


def stack_env() -> dict[str, str]:
    env_file = ROOT / ".stack" / "env"
    if not env_file.exists():
        sys.exit("the production stack is not up: run bin/stack up first")
    out = subprocess.run(["bash", "-c", f"source {env_file} && env -0"], capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


class RssSampler(threading.Thread):
    """Samples this process's RSS every `every` seconds, so each step's peak can be read from its time window."""

    def __init__(self, every: float = 0.1):
        super().__init__(daemon=True)
        self.every, self.samples, self.stop = every, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.samples.append((time.time(), int(line.split()[1]) / 1024))
            time.sleep(self.every)

    def window(self, start: float, end: float) -> tuple[float, float]:
        """(peak RSS in [start, end], RSS just before start), MiB."""
        inside = [rss for t, rss in self.samples if start <= t <= end]
        before = [rss for t, rss in self.samples if t < start]
        return (max(inside) if inside else float("nan")), (before[-1] if before else float("nan"))


def step_events(env: dict[str, str], run_id: str) -> dict[str, dict]:
    with psycopg2.connect(host=env["OUROBOROS_PG_HOST"], port=int(env["OUROBOROS_PG_PORT"]),
                          user=env["OUROBOROS_PG_USER"], password=env["OUROBOROS_PG_PASSWORD"],
                          dbname=env["OUROBOROS_PG_DAGSTER_DB"]) as conn, conn.cursor() as cur:
        cur.execute("select dagster_event_type, event from event_logs where run_id = %s and dagster_event_type in "
                    "('STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE')", (run_id,))
        steps: dict[str, dict] = {}
        for kind, raw in cur.fetchall():
            event = json.loads(raw)
            step = steps.setdefault(event["step_key"], {})
            if kind == "STEP_START":
                step["start"] = event["timestamp"]
            else:
                step["end"], step["status"] = event["timestamp"], kind
        return steps


def run_one(rows: int, out: Path, epochs: int) -> dict:
    """One size, in this process (called in a fresh child per size): the whole pipeline, in-process executor,
    on the stack's Postgres instance and MLflow server."""
    folder = out / f"rows_{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "real.parquet"
    make_table(rows).write_parquet(source)
    tag = f"s{rows // 1000}k_{int(time.time()) % 100000}"
    config = {
        "data": {"source": str(source), "target": "default", "holdout_fraction": 0.2, "seed": 0},
        "studies": [{"name": f"cop_{tag}", "family": "copula", "generations": 1},
                    {"name": f"vae_{tag}", "family": "vae", "generations": 1, "params": {"epochs": epochs}}],
        "training": {"study": f"cop_{tag}"},
        "downstream": {"epochs": 2},
    }
    (folder / "ouroboros.yaml").write_text(yaml.safe_dump(config))
    env = stack_env()
    os.environ.update({**env, "OUROBOROS_CONFIG": str(folder / "ouroboros.yaml"), "OUROBOROS_LAKE": str(folder / "lake"),
                       "OUROBOROS_EXECUTOR": "in_process"})
    import dagster as dg
    import torch

    # one thread per process: on a shared 2-core machine a second OpenMP thread mostly waits for a core
    torch.set_num_threads(1)

    from ouroboros.config import load_config
    from pipelines.definitions import PIPELINE_JOB, build_definitions
    from pipelines.settings import Settings

    settings = Settings.from_env()
    defs = build_definitions(load_config(settings.config_path), settings)
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, raise_on_error=False)
    wall = time.perf_counter() - started
    sampler.stop.set()
    per_step = {}
    for key, s in step_events(env, result.run_id).items():
        end = s.get("end", time.time())
        peak, before = sampler.window(s["start"], end)
        name = key.replace(f"cop_{tag}__", "copula/").replace(f"vae_{tag}__", "vae/")
        per_step[name] = {"seconds": round(end - s["start"], 2), "peak_mib": round(peak), "start_mib": round(before),
                          "status": s.get("status", "not finished")}
    return {"rows": rows, "columns": 19, "wall_seconds": round(wall, 1), "run_id": result.run_id,
            "success": result.success, "steps": per_step}


def run_size(rows: int, out: Path, epochs: int) -> dict:
    """Each size in a fresh Python process, so one size's memory never shows in the other's numbers."""
    done = subprocess.run([sys.executable, __file__, "--one", str(rows), "--epochs", str(epochs), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    (out / f"rows_{rows}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{rows} rows failed; see {out / f'rows_{rows}.log'}")
    return json.loads((out / f"rows_{rows}" / "result.json").read_text())


def table(results: list[dict]) -> str:
    small, large = sorted(results, key=lambda r: r["rows"])[0], sorted(results, key=lambda r: r["rows"])[-1]
    factor = large["rows"] / small["rows"]
    lines = [f"| asset step | time s @ {small['rows']:,} | time s @ {large['rows']:,} | time ratio | "
             f"peak MiB @ {small['rows']:,} (+ over step start) | peak MiB @ {large['rows']:,} (+ over step start) "
             "| growth ratio |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in sorted(large["steps"]):
        a, b = small["steps"].get(name), large["steps"][name]
        if a is None:
            continue
        t = b["seconds"] / a["seconds"] if a["seconds"] > 0 else float("nan")
        grow_a, grow_b = a["peak_mib"] - a["start_mib"], b["peak_mib"] - b["start_mib"]
        m = f"{grow_b / grow_a:.2f}" if grow_a > 20 else "-"  # below ~20 MiB the growth is noise
        lines.append(f"| {name} | {a['seconds']:.1f} | {b['seconds']:.1f} | {t:.2f} | {a['peak_mib']:,.0f} "
                     f"(+{grow_a:,.0f}) | {b['peak_mib']:,.0f} (+{grow_b:,.0f}) | {m} |")
    lines.append(f"| **whole run (wall)** | {small['wall_seconds']:.0f} | {large['wall_seconds']:.0f} | "
                 f"{large['wall_seconds'] / small['wall_seconds']:.2f} | | | |")
    return "\n".join(lines) + f"\n\n(rows ratio {factor:.1f}: a cost linear in rows shows a ratio near {factor:.1f})\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="300000,30000")
    parser.add_argument("--epochs", type=int, default=2, help="VAE epochs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "scale"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size in this process
    args = parser.parse_args()
    out = Path(args.out).resolve()
    if args.one:
        result = run_one(args.one, out, args.epochs)
        (out / f"rows_{args.one}" / "result.json").write_text(json.dumps(result, indent=1))
        return
    stack_env()  # fail early when the stack is not up
    results = []
    for rows in [int(r) for r in args.rows.split(",")]:
        print(f"==> {rows:,} rows", flush=True)
        result = run_size(rows, out, args.epochs)
        results.append(result)
        print(json.dumps(result, indent=1), flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    md = table(results) if len(results) > 1 else ""
    (out / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
