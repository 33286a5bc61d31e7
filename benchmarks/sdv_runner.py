"""Fit one SDV synthesizer on one table and sample it (runs inside benchmarks/.venv-sdv).

    python sdv_runner.py REAL.parquet METADATA.json MODEL EPOCHS OUT.parquet THREADS
Prints one JSON line: fit_s, sample_s, rows, peak_mb.
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
    real_path, meta_path, model, epochs, out_path, threads = sys.argv[1:7]
    torch.set_num_threads(int(threads))
    warnings.filterwarnings("ignore")
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    real = pd.read_parquet(real_path)
    metadata = Metadata.load_from_dict({"tables": {"t": json.loads(open(meta_path).read())}, "METADATA_SPEC_VERSION": "V1"})
    if model == "sdv_copula":
        synth = GaussianCopulaSynthesizer(metadata)
    elif model == "sdv_ctgan":
        synth = CTGANSynthesizer(metadata, epochs=int(epochs))
    elif model == "sdv_tvae":
        synth = TVAESynthesizer(metadata, epochs=int(epochs))
    else:
        raise SystemExit(f"unknown model {model}")
    t, c = time.perf_counter(), _cpu()
    synth.fit({"t": real})  # SDV 2.x takes {table name: frame} even for one table
    fit_s = time.perf_counter() - t
    fit_cpu_s = _cpu() - c
    t = time.perf_counter()
    syn = synth.sample(len(real))
    syn = syn["t"] if isinstance(syn, dict) else syn
    sample_s = time.perf_counter() - t
    syn.to_parquet(out_path, index=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "sample_s": sample_s, "rows": len(syn), "peak_mb": peak}))


if __name__ == "__main__":
    main()
