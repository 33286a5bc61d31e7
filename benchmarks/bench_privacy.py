"""Privacy benchmark: each torch family on the demo table at ε = 1, 3, 10 and without DP.

    .venv/bin/python benchmarks/bench_privacy.py --epochs 20            # appends to benchmarks/out/privacy.jsonl
    .venv/bin/python benchmarks/bench_privacy.py --epochs 20 --docs     # that file's table into docs/privacy.md

The demo table (ouroboros/data/crashes.parquet) is split 80/20 into real_train / real_holdout as the pipeline
does. Every run fits on real_train with the same epochs and batch size, samples as many rows, and is scored by
the gate's own scorecard (`ouroboros.quality.evaluate`): quality score, detection AUC, TSTR accuracy on the
holdout (target `outcome`), and the distance-based membership attack (`ouroboros.quality.membership`). DP runs
declare the demo table's published data dictionary public (PUBLIC below); one extra diffusion run at ε = 3
declares nothing, so every encoder statistic is released with noise from 10% of ε.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
OUT = HERE / "out" / "privacy.jsonl"
DOC = ROOT / "docs" / "privacy.md"
FAMILIES = ("diffusion", "vae", "gan")
BUDGETS = (None, 3.0, 10.0, 1.0)  # diffusion without DP and at ε = 3 first: the target
# What a data owner can declare public for this table without looking at it: the category lists and ranges of
# the published NASS CDS data dictionary (ouroboros/data/README.md). sampling_weight has no documented range,
# and the shapes of the continuous columns are always learnt with noise.
PUBLIC = {
    "impact_speed_band": {"categories": ["1-9km/h", "10-24", "25-39", "40-54", "55+"], "nullable": False},
    "airbag": {"categories": ["airbag", "none"], "nullable": False},
    "seatbelt": {"categories": ["belted", "none"], "nullable": False},
    "sex": {"categories": ["f", "m"], "nullable": False},
    "airbag_status": {"categories": ["deploy", "nodeploy", "unavail"], "nullable": False},
    "occupant_role": {"categories": ["driver", "pass"], "nullable": False},
    "outcome": {"categories": ["alive", "dead"], "nullable": False},
    "occupant_age": {"min": 0, "max": 100, "nullable": False},
    "accident_year": {"min": 1997, "max": 2002, "nullable": False},
    "vehicle_year": {"min": 1950, "max": 2003},
    "injury_severity": {"min": 0, "max": 6},
}
RUNS = [(f, e, "schema") for f in FAMILIES for e in BUDGETS] + [("diffusion", 3.0, "none")]
BEGIN, END = "<!-- bench_privacy:begin -->", "<!-- bench_privacy:end -->"


def run(epochs: int, families: tuple[str, ...], budgets: tuple, seed: int) -> None:
    import polars as pl
    import torch

    from ouroboros.generators import create
    from ouroboros.quality import evaluate
    from ouroboros.quality.membership import dp_advantage_bound
    from ouroboros.split import train_holdout_split

    torch.set_num_threads(1)
    real = pl.read_parquet(ROOT / "ouroboros" / "data" / "crashes.parquet")
    train, holdout = train_holdout_split(real, 0.2, seed)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if OUT.exists():
        for line in OUT.read_text().splitlines():
            r = json.loads(line)
            if r["epochs"] == epochs:
                done.add((r["family"], r["epsilon"], r["public"]))
    for family, eps, public in RUNS:
        if family in families and (family, eps, public) not in done:
            params = {"epochs": epochs}
            if eps is not None:
                params["dp"] = {"epsilon": eps, **({"public": PUBLIC} if public == "schema" else {})}
            started = time.perf_counter()
            gen = create(family, seed=seed, **params).fit(train)
            fit_s = time.perf_counter() - started
            syn = gen.sample(train.height, seed=seed + 1)
            card = evaluate(syn, train, holdout, target="outcome")
            s = card.scores
            p = gen.privacy or {}
            row = {"family": family, "epsilon": eps, "public": public, "epochs": epochs,
                   "fit_seconds": round(fit_s, 1),
                   "epsilon_spent": p.get("epsilon_spent"), "delta": p.get("delta"),
                   "noise_multiplier": p.get("noise_multiplier"), "steps": p.get("steps"),
                   "quality": s.get("fidelity.quality_score"), "detection_auc": s.get("joint.detection_auc"),
                   "tstr_accuracy": s.get("utility.tstr.accuracy"), "trtr_accuracy": s.get("utility.trtr.accuracy"),
                   "tstr_log_loss": s.get("utility.tstr.log_loss"), "trtr_log_loss": s.get("utility.trtr.log_loss"),
                   "membership_auc": s.get("privacy.membership.auc"),
                   "membership_advantage": s.get("privacy.membership.advantage"),
                   "membership_advantage_noise": s.get("privacy.membership.advantage.noise_high"),
                   "advantage_bound": dp_advantage_bound(p["epsilon_spent"], p["delta"]) if p else None,
                   "train_rows": train.height, "cpu": platform.processor() or platform.machine()}
            with OUT.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


MEMBERSHIP_OUT = HERE / "out" / "privacy_membership.jsonl"
M_BEGIN, M_END = "<!-- bench_privacy_membership:begin -->", "<!-- bench_privacy_membership:end -->"


def run_membership(epochs: int, seed: int) -> None:
    """Where memorisation shows: 500 training rows, many epochs. Members vs non-members at 500 each."""
    import polars as pl
    import torch

    from ouroboros.generators import create
    from ouroboros.quality import evaluate
    from ouroboros.split import train_holdout_split

    torch.set_num_threads(1)
    real = pl.read_parquet(ROOT / "ouroboros" / "data" / "crashes.parquet").sample(n=1000, seed=seed)
    train, holdout = train_holdout_split(real, 0.5, seed)
    for family in ("vae", "diffusion"):
        for eps in (None, 10.0, 3.0):
            params = {"epochs": epochs, "batch_size": 100}
            if eps is not None:
                params["dp"] = {"epsilon": eps, "public": PUBLIC}
            gen = create(family, seed=seed, **params).fit(train)
            s = evaluate(gen.sample(train.height, seed=seed + 1), train, holdout, target="outcome").scores
            row = {"family": family, "epsilon": eps, "epochs": epochs, "train_rows": train.height,
                   "epsilon_spent": (gen.privacy or {}).get("epsilon_spent"),
                   "membership_auc": s.get("privacy.membership.auc"),
                   "membership_advantage": s.get("privacy.membership.advantage"),
                   "advantage_noise": s.get("privacy.membership.advantage.noise_high"),
                   "closer_to_train_share": s.get("privacy.closer_to_train_share"),
                   "quality": s.get("fidelity.quality_score")}
            with MEMBERSHIP_OUT.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def write_membership_docs() -> None:
    rows = [json.loads(line) for line in MEMBERSHIP_OUT.read_text().splitlines()]
    lines = ["| family | ε | ε spent | membership AUC | membership adv. | closer-to-train share | quality |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['family']} | {'no DP' if r['epsilon'] is None else _fmt(r['epsilon'], 0)} | "
                     f"{_fmt(r['epsilon_spent'], 2)} | {_fmt(r['membership_auc'])} | "
                     f"{_fmt(r['membership_advantage'])} | {_fmt(r['closer_to_train_share'])} | {_fmt(r['quality'])} |")
    text = "\n".join([M_BEGIN, f"{rows[0]['train_rows']} real_train rows, {rows[0]['epochs']} epochs, batch 100; "
                      f"advantage below {rows[0]['advantage_noise']:.3f} is within the no-leak band.", "",
                      *lines, M_END])
    doc = DOC.read_text()
    start, end = doc.index(M_BEGIN), doc.index(M_END) + len(M_END)
    DOC.write_text(doc[:start] + text + doc[end:])


def _fmt(v, digits=3) -> str:
    return "–" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def write_docs(epochs: int) -> None:
    rows = [json.loads(line) for line in OUT.read_text().splitlines()]
    rows = [r for r in rows if r["epochs"] == epochs]
    order = {f: i for i, f in enumerate(FAMILIES)}
    rows.sort(key=lambda r: (order[r["family"]], r["epsilon"] is not None, -(r["epsilon"] or 0), r["public"]))
    lines = ["| family | ε | public schema | ε spent | noise σ | quality | detection AUC | TSTR acc. | "
             "TSTR acc. − no DP | TSTR log-loss | membership AUC | membership adv. | DP bound on adv. | fit s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    base = {r["family"]: r["tstr_accuracy"] for r in rows if r["epsilon"] is None}
    for r in rows:
        dp = r["epsilon"] is not None
        gap = None if not dp or r["tstr_accuracy"] is None or base.get(r["family"]) is None \
            else r["tstr_accuracy"] - base[r["family"]]
        lines.append(" | ".join([
            f"| {r['family']}", _fmt(r["epsilon"], 0) if dp else "no DP",
            ("data dictionary" if r["public"] == "schema" else "nothing") if dp else "–",
            _fmt(r["epsilon_spent"], 2), _fmt(r["noise_multiplier"], 2), _fmt(r["quality"]),
            _fmt(r["detection_auc"]), _fmt(r["tstr_accuracy"]), _fmt(gap, 4) if dp else "–",
            _fmt(r["tstr_log_loss"]), _fmt(r["membership_auc"]), _fmt(r["membership_advantage"]),
            _fmt(r["advantage_bound"], 2), _fmt(r["fit_seconds"], 0)]) + " |")
    noise = max((r["membership_advantage_noise"] or 0) for r in rows)
    first = rows[0]
    text = "\n".join([
        BEGIN, f"{first['train_rows']} real_train rows, {epochs} epochs for every run, δ = {rows[-1]['delta']:.0e}, "
        f"one CPU thread on a 2-core machine shared with other jobs (fit times are loose). Real rows (TRTR) score "
        f"accuracy {_fmt(first['trtr_accuracy'])}, log-loss {_fmt(first['trtr_log_loss'])}. A membership advantage "
        f"below {noise:.3f} is within what a generator that learnt nothing row-specific shows (95% band).", "",
        *lines, END])
    doc = DOC.read_text()
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    DOC.write_text(doc[:start] + text + doc[end:])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--docs", action="store_true", help="only write the tables in docs/privacy.md")
    ap.add_argument("--membership", action="store_true", help="the small-table memorisation runs")
    args = ap.parse_args()
    if args.docs:
        write_docs(args.epochs)
        if MEMBERSHIP_OUT.exists():
            write_membership_docs()
    elif args.membership:
        run_membership(args.epochs, args.seed)
    else:
        run(args.epochs, tuple(args.families.split(",")), BUDGETS, args.seed)
