"""Fit time of each PyTorch family at its defaults on the demo's real_train, on a CPU or a GPU.

    .venv/bin/python benchmarks/bench_device.py --device cpu --threads 2
    python3 benchmarks/bench_device.py --device cuda          # on a GPU machine

Splits the demo table as the pipeline does (20% holdout by row hash, seed 0), fits every family named
at its default settings on the ~21,000 training rows, samples 4,000 rows (a study's batch), and prints
one JSON line per family: fit seconds, sampling rows/s and the device. Needs only polars, numpy, scipy
and torch, so it runs on a bare GPU machine with the project's code beside it.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--family", default="gan,vae,diffusion")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, default=4000)
    args = ap.parse_args()

    import torch
    from fit_timing import fit_and_sample  # this folder: the script's own

    from ouroboros.generators import create
    from ouroboros.split import train_holdout_split

    torch.set_num_threads(args.threads)
    real = pl.read_parquet(ROOT / "ouroboros" / "data" / "crashes.parquet")
    train, _ = train_holdout_split(real, 0.2, 0, None)
    for family in args.family.split(","):
        gen = create(family, seed=0, device=args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        batch, timings = fit_and_sample(partial(gen.fit, train), partial(gen.sample, args.rows, seed=1))
        name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu x{args.threads} threads"
        print(json.dumps({"family": family, "device": name, "train_rows": train.height,
                          "fit_s": round(timings["fit_s"], 1),
                          "sample_rows_per_s": round(batch.height / timings["sample_s"])}), flush=True)


if __name__ == "__main__":
    main()
