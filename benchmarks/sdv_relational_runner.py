"""SDV's relational synthesizers and SDMetrics' multi-table quality report for bench_relational.py.

Runs inside benchmarks/.venv-sdv (SDV 2.0 pins pandas < 3), one job per process:

    python sdv_relational_runner.py fit META.json REAL_DIR MODEL N OUT_DIR THREADS EPOCHS
        MODEL hma: HMASynthesizer on the dataset's tables; samples N root rows (main table = the root).
        MODEL par: PARSynthesizer on the child sequence joined with its parent's columns (the parent's
        columns as context columns, the foreign key as sequence key, order_by as sequence index), EPOCHS
        epochs (0: SDV's default); samples N sequences and splits them back into parent and child tables.
        Writes OUT_DIR/<table>.parquet, keys renumbered 0..n-1 (foreign keys mapped alike); prints one JSON
        line: fit_s, fit_cpu_s, sample_s, rows.
    python sdv_relational_runner.py score META.json REAL_DIR SYN_DIR
        sdmetrics.reports.multi_table.QualityReport of SYN_DIR against REAL_DIR; prints one JSON line: quality
        and its properties.

META.json (written by bench_relational.py): {"root": name, "tables": {name: {"key", "parent", "foreign_key",
"order_by", "columns": {column: sdtype}}}}, tables in parent-first order.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pandas as pd
from fit_timing import fit_and_sample  # this folder: the script's own


def sdv_metadata(meta: dict) -> dict:
    """SDV / SDMetrics multi-table metadata (spec V1) of bench_relational's META."""
    tables, rels = {}, []
    for name, t in meta["tables"].items():
        tables[name] = {"primary_key": t["key"], "columns": {c: {"sdtype": s} for c, s in t["columns"].items()}}
        if t.get("parent"):
            rels.append({"parent_table_name": t["parent"], "parent_primary_key": meta["tables"][t["parent"]]["key"],
                         "child_table_name": name, "child_foreign_key": t["foreign_key"]})
    return {"tables": tables, "relationships": rels, "METADATA_SPEC_VERSION": "V1"}


def read(meta: dict, folder: str) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(Path(folder) / f"{name}.parquet") for name in meta["tables"]}


def renumber(meta: dict, data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Keys as 0..n-1 integers per table (SDV may give strings), every foreign key mapped to its parent's."""
    out, maps = {}, {}
    for name, t in meta["tables"].items():
        df = data[name].reset_index(drop=True).copy()
        codes, uniques = pd.factorize(df[t["key"]])
        maps[name] = dict(zip(uniques, range(len(uniques)), strict=True))
        df[t["key"]] = codes.astype("int64")
        if t.get("parent"):
            df[t["foreign_key"]] = df[t["foreign_key"]].map(maps[t["parent"]]).astype("Int64")
        out[name] = df
    return out


def fit_hma(meta: dict, real: dict[str, pd.DataFrame], n: int) -> tuple[dict, dict]:
    from sdv.metadata import Metadata
    from sdv.multi_table import HMASynthesizer

    synth = HMASynthesizer(Metadata.load_from_dict(sdv_metadata(meta)), verbose=False)
    return fit_and_sample(lambda: synth.fit(real), lambda: synth.sample(n, main_table_name=meta["root"]))


def fit_par(meta: dict, real: dict[str, pd.DataFrame], n: int, epochs: int) -> tuple[dict, dict]:
    from sdv.metadata import Metadata
    from sdv.sequential import PARSynthesizer

    root = meta["root"]
    (child, t), = [(k, v) for k, v in meta["tables"].items() if v.get("parent") == root]
    r = meta["tables"][root]
    context = [c for c in r["columns"] if c != r["key"]]
    flat = real[child].drop(columns=[t["key"]]).merge(
        real[root].rename(columns={r["key"]: t["foreign_key"]}), on=t["foreign_key"], how="left")
    columns = {c: {"sdtype": s} for c, s in t["columns"].items() if c != t["key"]}
    columns.update({c: {"sdtype": r["columns"][c]} for c in context})
    md = Metadata.load_from_dict({"tables": {child: {"columns": columns, "sequence_key": t["foreign_key"],
                                                     "sequence_index": t["order_by"]}},
                                  "METADATA_SPEC_VERSION": "V1"})
    kw = {"epochs": epochs} if epochs > 0 else {}
    synth = PARSynthesizer(md, context_columns=context, cuda=False, verbose=False, **kw)
    flat_syn, timings = fit_and_sample(lambda: synth.fit({child: flat}), lambda: synth.sample_sequences(n))
    flat_syn = flat_syn[child] if isinstance(flat_syn, dict) else flat_syn
    fk = t["foreign_key"]
    parents = flat_syn.groupby(fk, sort=False)[context].first().reset_index().rename(columns={fk: r["key"]})
    kids = flat_syn.drop(columns=context).copy()
    kids.insert(0, t["key"], range(len(kids)))
    return {root: parents, child: kids}, timings


def main() -> None:
    warnings.filterwarnings("ignore")
    job, meta_path = sys.argv[1], sys.argv[2]
    meta = json.loads(Path(meta_path).read_text())
    if job == "fit":
        real_dir, model, n, out_dir, threads, epochs = sys.argv[3:9]
        import torch

        torch.set_num_threads(int(threads))
        real = read(meta, real_dir)
        if model == "hma":
            syn, timings = fit_hma(meta, real, int(n))
        elif model == "par":
            syn, timings = fit_par(meta, real, int(n), int(epochs))
        else:
            raise SystemExit(f"unknown model {model}")
        syn = renumber(meta, syn)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for name, df in syn.items():
            df.to_parquet(Path(out_dir) / f"{name}.parquet", index=False)
        print(json.dumps({**timings, "rows": {k: len(v) for k, v in syn.items()}}))
    elif job == "score":
        from sdmetrics.reports.multi_table import QualityReport

        real_dir, syn_dir = sys.argv[3:5]
        real, syn = read(meta, real_dir), read(meta, syn_dir)
        report = QualityReport()
        report.generate(real, syn, sdv_metadata(meta), verbose=False)
        props = report.get_properties()
        print(json.dumps({"quality": float(report.get_score()),
                          "properties": dict(zip(props["Property"], map(float, props["Score"]), strict=True))}))
    else:
        raise SystemExit(f"unknown job {job}")


if __name__ == "__main__":
    main()
