"""Fit one SDV synthesizer on one table and sample it (runs inside benchmarks/.venv-sdv).

    python sdv_runner.py REAL.parquet METADATA.json MODEL EPOCHS OUT.parquet THREADS
Prints one JSON line: fit_s, sample_s, rows, peak_mb.
"""

from __future__ import annotations

import json
import sys
import warnings

import pandas as pd
import torch
from fit_timing import fit_and_sample, print_result  # this folder: the script's own


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
    # SDV 2.x takes {table name: frame} even for one table, and may give one back
    syn, timings = fit_and_sample(lambda: synth.fit({"t": real}), lambda: synth.sample(len(real)))
    syn = syn["t"] if isinstance(syn, dict) else syn
    syn.to_parquet(out_path, index=False)
    print_result(timings, len(syn))


if __name__ == "__main__":
    main()
