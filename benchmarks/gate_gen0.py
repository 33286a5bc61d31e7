"""Does each generator family, at its default settings, pass the project's gate at generation 0?

    .venv/bin/python benchmarks/gate_gen0.py                       # every torch family and the copula
    .venv/bin/python benchmarks/gate_gen0.py --family vae --params '{"epochs": 50}'

Splits the table as the pipeline does (ouroboros.yaml's data section: holdout fraction, seed, target),
fits one generator on real_train, samples a batch as large as real_train (the studies' `rows: null`)
and scores it with `ouroboros.quality.evaluate` and the gate limits of ouroboros.yaml, exactly as the
gate's asset checks do. Prints one JSON line per family: passed, fit seconds, failures, warnings and
the headline scores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADLINE = ("fidelity.quality_score", "joint.detection_auc", "utility.tstr", "utility.trtr",
            "privacy.closer_to_train_share")


def run(family: str, params: dict, config_path: Path, threads: int, rows: int | None = None) -> dict:
    import torch

    from ouroboros.config import load_config
    from ouroboros.generators import create
    from ouroboros.quality import evaluate
    from ouroboros.schema import infer_schema
    from ouroboros.split import train_holdout_split
    from ouroboros.tables import read_table

    torch.set_num_threads(threads)
    config = load_config(config_path)
    real = read_table(config.data.source)
    train, holdout = train_holdout_split(real, config.data.holdout_fraction, config.data.seed, config.data.key)
    gen = create(family, seed=0, **params)
    t, c = time.perf_counter(), time.process_time()
    gen.fit(train)
    fit_s = time.perf_counter() - t
    fit_cpu_s = time.process_time() - c
    batch = gen.sample(rows or train.height, seed=1)
    card = evaluate(batch, train, holdout, config.gate, schema=infer_schema(train), target=config.data.target)
    return {
        "family": family, "params": params, "passed": card.passed,
        "fit_s": round(fit_s, 1), "fit_cpu_s": round(fit_cpu_s, 1),
        "failures": [f"{f.indicator}={f.value:.3f} (limit {f.threshold:.3f})" for f in card.failures],
        "warnings": [f"{f.indicator}={f.value:.3f} (limit {f.threshold:.3f})" for f in card.warnings],
        **{k: round(card.scores[k], 3) for k in HEADLINE if k in card.scores},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="copula,gan,vae,diffusion")
    ap.add_argument("--params", default="{}", help="JSON hyperparameters for every family named")
    ap.add_argument("--config", type=Path, default=ROOT / "ouroboros.yaml")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, default=None, help="batch rows (default: as many as real_train)")
    args = ap.parse_args()
    for family in args.family.split(","):
        print(json.dumps(run(family, json.loads(args.params), args.config, args.threads, args.rows)), flush=True)


if __name__ == "__main__":
    main()
