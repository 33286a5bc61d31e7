"""SDMetrics QualityReport (Column Shapes + Column Pair Trends) of synthetic tables against a real one.

    python score.py REAL.parquet METADATA.json SYN1.parquet [SYN2.parquet ...]
Prints one JSON line: {synthetic path: {"score", "column_shapes", "column_pair_trends"}}.
"""

from __future__ import annotations

import json
import sys
import warnings

import pandas as pd
from sdmetrics.reports.single_table import QualityReport


def main() -> None:
    warnings.filterwarnings("ignore")
    real_path, meta_path, *syn_paths = sys.argv[1:]
    real = pd.read_parquet(real_path)
    metadata = json.loads(open(meta_path).read())
    out = {}
    for path in syn_paths:
        syn = pd.read_parquet(path)[real.columns]
        report = QualityReport()
        report.generate(real, syn, metadata, verbose=False)
        props = report.get_properties().set_index("Property")["Score"]
        out[path] = {"score": float(report.get_score()), "column_shapes": float(props["Column Shapes"]),
                     "column_pair_trends": float(props["Column Pair Trends"])}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
