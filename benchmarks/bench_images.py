"""Image benchmark on scikit-learn's 8x8 digits: per family, fit time, Fréchet distance, precision/recall,
TSTR vs TRTR accuracy and the gate's verdict at generation 0; then a replace chain against accumulate with
the gate's scores per generation (the guard is recorded, not enforced, so the curve shows what it stops).

    nice -n 10 env PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_images.py \
        [--families ddpm,vae,gan] [--generations 10] [--chain-family vae] [--null-draws 200]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from ouroboros.images.chain import build_pool
from ouroboros.images.config import ImageGateConfig
from ouroboros.images.data import load_source
from ouroboros.images.gate import ImageGate
from ouroboros.images.gate import metrics as M
from ouroboros.images.generators import create
from ouroboros.images.split import split_images


def family_row(gate: ImageGate, family: str, train, holdout, n: int, params: dict) -> dict:
    gen = create(family, seed=0, **params)
    started = time.perf_counter()
    gen.fit(train)
    fit = time.perf_counter() - started
    batch = gen.sample(n, seed=7919)
    v = gate.evaluate(batch)
    trtr = M.utility(train.flat(), train.labels, holdout.flat(), holdout.labels)
    return {"family": family, "fit_s": round(fit, 1), "fd": round(v.scores["fidelity.frechet_distance"], 3),
            "fd_real": round(gate.null(n)["fidelity.frechet_distance"]["mean"], 3),
            "precision": round(v.scores["fidelity.precision"], 3), "recall": round(v.scores["fidelity.recall"], 3),
            "tstr": round(v.scores["fidelity.utility_accuracy"], 3), "trtr": round(trtr, 3),
            "verdict": "pass" if v.passed else "FAIL", "failed": v.failed()}


def chain(gate: ImageGate, family: str, policy: str, generations: int, train, n: int, params: dict) -> list[dict]:
    batches, rows = [], []
    for k in range(generations):
        pool = build_pool(policy, k, train, batches, seed=0)
        batch = create(family, seed=k, **params).fit(pool).sample(n, seed=7919 + k)
        batches.append(batch)
        v = gate.evaluate(batch)
        rows.append({"policy": policy, "generation": k, "verdict": "pass" if v.passed else "FAIL",
                     "fd": round(v.scores["fidelity.frechet_distance"], 3),
                     "recall": round(v.scores["fidelity.recall"], 3),
                     "diversity": round(v.scores["collapse.min_class_diversity"], 3),
                     "variance": round(v.scores["collapse.intensity_variance_low"], 3),
                     "tstr": round(v.scores["fidelity.utility_accuracy"], 3), "failed": v.failed()})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="ddpm,vae,gan")
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--chain-family", default="vae")
    ap.add_argument("--chain-epochs", type=int, default=60)
    ap.add_argument("--null-draws", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(2)
    train, holdout = split_images(load_source("sklearn:digits"), 0.2, 0)
    gate = ImageGate(train, holdout, ImageGateConfig(null_draws=args.null_draws))
    n = len(train)
    for family in filter(None, args.families.split(",")):
        print(json.dumps(family_row(gate, family, train, holdout, n, {})), flush=True)
    if args.generations:
        for policy in ("replace", "accumulate"):
            chain(gate, args.chain_family, policy, args.generations, train, n, {"epochs": args.chain_epochs})


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
