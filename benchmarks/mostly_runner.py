"""Fit MOSTLY AI's TabularARGN (mostlyai-engine) on one table and sample it (runs inside benchmarks/.venv-mostly).

    python mostly_runner.py TRAIN.parquet EPOCHS OUT.parquet THREADS WORKDIR
Prints one JSON line: fit_s, sample_s, rows, peak_mb. `max_epochs` caps training; the engine also stops
early on its own validation loss, as it does by default.
"""

from __future__ import annotations

import sys
import warnings

import pandas as pd
import torch
from fit_timing import fit_and_sample, print_result  # this folder: the script's own


def main() -> None:
    real_path, epochs, out_path, threads, workdir = sys.argv[1:6]
    torch.set_num_threads(int(threads))
    warnings.filterwarnings("ignore")
    from mostlyai.engine import TabularARGN

    real = pd.read_parquet(real_path)
    model = TabularARGN(max_epochs=int(epochs), workspace_dir=workdir, random_state=0, device="cpu", verbose=0)
    syn, timings = fit_and_sample(lambda: model.fit(real), lambda: model.sample(n_samples=len(real)))
    syn.to_parquet(out_path, index=False)
    print_result(timings, len(syn))


if __name__ == "__main__":
    main()
