"""Fit MOSTLY AI's TabularARGN (mostlyai-engine) on one table and sample it (runs inside benchmarks/.venv-mostly).

    python mostly_runner.py TRAIN.parquet EPOCHS OUT.parquet THREADS WORKDIR
Prints one JSON line: fit_s, sample_s, rows, peak_mb. `max_epochs` caps training; the engine also stops
early on its own validation loss, as it does by default.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import warnings

import pandas as pd
import torch


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (an engine may fit in worker processes)."""
    import resource

    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + child.ru_utime + child.ru_stime


def main() -> None:
    real_path, epochs, out_path, threads, workdir = sys.argv[1:6]
    torch.set_num_threads(int(threads))
    warnings.filterwarnings("ignore")
    from mostlyai.engine import TabularARGN

    real = pd.read_parquet(real_path)
    model = TabularARGN(max_epochs=int(epochs), workspace_dir=workdir, random_state=0, device="cpu", verbose=0)
    t, c = time.perf_counter(), _cpu()
    model.fit(real)
    fit_s = time.perf_counter() - t
    fit_cpu_s = _cpu() - c
    t = time.perf_counter()
    syn = model.sample(n_samples=len(real))
    sample_s = time.perf_counter() - t
    syn.to_parquet(out_path, index=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "sample_s": sample_s, "rows": len(syn), "peak_mb": peak}))


if __name__ == "__main__":
    main()
