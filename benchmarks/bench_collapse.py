"""The multi-generation collapse benchmark: every family, every policy, 20 generations, our gate as the verifier.

    .venv/bin/python benchmarks/bench_collapse.py                       # the study in studies/collapse_benchmark.yaml
    .venv/bin/python benchmarks/bench_collapse.py --only k401k --families copula --generations 3   # a smoke run
    .venv/bin/python benchmarks/bench_collapse.py --report              # markdown and plots from the records

Per table (the demo and package-shipped tables, studies/collapse_benchmark.yaml) and per family, these chains, each run
through the same core function the generator asset calls (`ouroboros.chain.generation.fit_generation`):

- `replace`, `accumulate` and `anchor` (lambda 0.2) with the gate **observing**: every batch is scored on
  real_holdout and the next generation learns from it whatever the verdict, to show what an unguarded chain does.
  The same chain with the gate **enforcing** and no mitigation is this chain cut at its first refusal (same
  seeds, same pools up to there), so the enforcing column is read off it: where the guard would stop it.
- `replace` with the gate **enforcing** and `mitigation: [verify, anchor, refit]`: a refused batch is repaired
  by the verifier's selection, a raised real share, or a refit, and the chain goes on only on approved batches.
- a lambda sweep of `anchor` (observing), for the family named by `sweep_family`: the real share above which
  retraining is stable (Bertrand et al. 2024), and the weight He et al. derive (about 0.618).

Every generation is scored on real_holdout by:
- the gate's scorecard (verdict, the indicator that refused it, detection AUC, spread ratios);
- downstream TSTR: scikit-learn's HistGradientBoosting trained on the batch, scored on real_holdout (ROC AUC,
  macro one-vs-rest for several classes; R^2 for a number), against TRTR: the same model trained on as many
  real_train rows as the batch has (mean of 5 seeded subsamples, whose spread is the real data's own noise);
- category survival: the share of real_train's levels that the batch still has, over every categorical column
  and every numeric code with at most 10 distinct values (0/1 flags, 1..5 ratings).

Fits are budgeted like the pipeline's (`budget_seconds` per step, planned by `ouroboros.chain.budget`), so the
quality numbers do not depend on the machine's load; timings do. An enforcing step with mitigation gives its
first fit a third of its budget (`ouroboros.chain.step.FIRST_SHARE`); its budget is set three times the
observing chains' so that its first fit is trained exactly like theirs.

Records go to benchmarks/out/collapse/records.jsonl, one line per generation, appended as they are made: a run
that is stopped resumes where it was (a chain already complete is skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "collapse"
STUDY = ROOT / "studies" / "collapse_benchmark.yaml"
REAL_SUBSAMPLES = 5


def chains(spec: dict) -> list[dict]:
    """The chains of one table and family: name, policy, lam, gate mode, mitigation."""
    out = [{"chain": f"{p}_observe", "policy": p, "lam": 0.2, "mode": "observe", "mitigation": []}
           for p in ("replace", "accumulate", "anchor")]
    out.append({"chain": "replace_mitigated", "policy": "replace", "lam": 0.2, "mode": "block",
                "mitigation": list(spec.get("mitigation", ["verify", "anchor", "refit"]))})
    return out


def sweep_chains(spec: dict) -> list[dict]:
    return [{"chain": f"anchor{round(float(lam) * 100)}_observe", "policy": "anchor", "lam": float(lam), "mode": "observe",
             "mitigation": []} for lam in spec.get("sweep_lams", []) if abs(float(lam) - 0.2) > 1e-9]


# --- downstream scoring, independent of the gate --------------------------------------------------------------

class Downstream:
    """HistGradientBoosting on a table's columns: numbers as they are (nulls as NaN), categories as codes of
    real_train's levels (an unseen level as NaN), the target as real_train's classes."""

    def __init__(self, train: pl.DataFrame, target: str, schema) -> None:
        from ouroboros.schema import ColumnKind, ColumnRole

        self.target = target
        # as benchmarks/score.py decides: a number with more than 10 distinct values is a regression target,
        # a 0/1 or 1..5 code is a class
        numeric = schema.column(target).kind not in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)
        self.task = "regression" if numeric and train[target].n_unique() > 10 else "classification"
        self.features = [c for c in schema.columns if c.name != target and c.role == ColumnRole.VALUE]
        self.levels = {c.name: sorted(train[c.name].drop_nulls().cast(pl.String).unique().to_list())
                       for c in self.features if c.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)}
        self.classes = (sorted(train[target].drop_nulls().cast(pl.String).unique().to_list())
                        if self.task != "regression" else None)

    def matrix(self, df: pl.DataFrame) -> np.ndarray:
        cols = []
        for c in self.features:
            s = df[c.name]
            if c.name in self.levels:
                lookup = {v: i for i, v in enumerate(self.levels[c.name])}
                cols.append(np.array([lookup.get(v, np.nan) if v is not None else np.nan
                                      for v in s.cast(pl.String).to_list()], dtype=float))
            else:
                cols.append(s.to_physical().cast(pl.Float64).fill_nan(None).to_numpy().astype(float))
        return np.column_stack(cols) if cols else np.zeros((df.height, 0))

    def labels(self, df: pl.DataFrame) -> np.ndarray:
        s = df[self.target]
        if self.classes is None:
            return s.cast(pl.Float64).to_numpy()
        lookup = {v: i for i, v in enumerate(self.classes)}
        return np.array([lookup.get(v, -1) for v in s.cast(pl.String).to_list()])

    def score(self, fit_on: pl.DataFrame, holdout: pl.DataFrame, seed: int = 0) -> float:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        from sklearn.metrics import r2_score, roc_auc_score

        x, y = self.matrix(fit_on), self.labels(fit_on)
        keep = ~np.isnan(y) if self.classes is None else y >= 0
        x, y = x[keep], y[keep]
        mask = [c.name in self.levels for c in self.features]
        hx, hy = self.matrix(holdout), self.labels(holdout)
        if self.classes is None:
            model = HistGradientBoostingRegressor(max_iter=100, categorical_features=mask, random_state=seed)
            model.fit(x, y)
            ok = ~np.isnan(hy)
            return float(r2_score(hy[ok], model.predict(hx[ok])))
        if len(np.unique(y)) < 2:
            return 0.5  # a batch with one class predicts nothing: chance
        model = HistGradientBoostingClassifier(max_iter=100, categorical_features=mask, random_state=seed)
        model.fit(x, y)
        ok = hy >= 0
        proba = np.zeros((ok.sum(), len(self.classes)))
        proba[:, model.classes_.astype(int)] = model.predict_proba(hx[ok])
        if len(self.classes) == 2:
            return float(roc_auc_score(hy[ok], proba[:, 1]))
        present = np.unique(hy[ok])
        p = proba[:, present] / np.clip(proba[:, present].sum(axis=1, keepdims=True), 1e-12, None)
        return float(roc_auc_score(hy[ok], p, multi_class="ovr", average="macro", labels=present))


def category_survival(batch: pl.DataFrame, train: pl.DataFrame, columns: list[str]) -> float:
    """Share of real_train's levels (over every categorical column) that the batch still has."""
    have = total = 0
    for c in columns:
        levels = set(train[c].drop_nulls().cast(pl.String).unique().to_list())
        seen = set(batch[c].drop_nulls().cast(pl.String).unique().to_list()) if c in batch.columns else set()
        have += len(levels & seen)
        total += len(levels)
    return have / total if total else 1.0


# --- one chain ------------------------------------------------------------------------------------------------

def run_chain(table: str, train: pl.DataFrame, holdout: pl.DataFrame, target: str, family: str, chain: dict,
              spec: dict, config, down: Downstream, trtr: float, categorical: list[str], write) -> None:
    from ouroboros.chain.bakeoff import refused_by
    from ouroboros.chain.generation import draw_generation_batch, fit_generation
    from ouroboros.config import StudyConfig
    from ouroboros.quality import evaluate

    generations, rows, budget = int(spec["generations"]), int(spec["rows"]), float(spec["budget_seconds"])
    mitigated = bool(chain["mitigation"])
    study = StudyConfig(name=f"{family}_{chain['chain']}", family=family, policy=chain["policy"],
                        generations=generations, rows=rows, lam=chain["lam"], seed=int(spec.get("seed", 0)),
                        budget_seconds=budget * (3 if mitigated else 1), mitigation=chain["mitigation"],
                        gate_mode=chain["mode"], max_lam=float(spec.get("max_lam", 0.5)))
    batches: list[pl.DataFrame] = []
    stopped = None
    for k in range(generations):
        started, cpu = time.perf_counter(), time.process_time()
        # generation 0 is never gated in the step (a named family): the same budget as the observing chains'
        at_k = study if k or not mitigated else study.model_copy(update={"budget_seconds": budget})
        step = fit_generation(at_k, config.gate, k, train, batches, real_holdout=holdout if mitigated else None,
                              target=target, id_columns=tuple(config.data.id_columns), data_seed=config.data.seed)
        r = step.result
        batch = draw_generation_batch(r.generator, rows, r.seed, selection=r.selection, target=target,
                                      target_share=study.target_share, real_target=train[target])
        fit_s = time.perf_counter() - started
        card = evaluate(batch, train, holdout, config.gate, target=target, id_columns=tuple(config.data.id_columns))
        spreads = [v for key, v in card.scores.items()
                   if key.startswith("collapse.spread_ratio.") and not key.endswith(".noise_floor")]
        record = {
            "table": table, "family": family, "chain": chain["chain"], "policy": chain["policy"],
            "lam": chain["lam"], "mode": chain["mode"], "generation": k, "rows": batch.height,
            "passed": bool(card.passed), "refused_by": refused_by(card) if not card.passed else "",
            "mitigation": r.mitigation, "attempts": len(r.attempts), "holdout_looks": r.holdout_looks,
            "real_share": r.real_share if r.real_share is not None else
            step.pool.composition.get("real", 0) / max(1, step.pool.rows.height),
            "tstr": down.score(batch, holdout), "trtr": trtr,
            "category_survival": category_survival(batch, train, categorical),
            "spread_min": float(min(spreads)) if spreads else None,
            "spread_mean": float(np.mean(spreads)) if spreads else None,
            "detection_auc": card.scores.get("joint.detection_auc"),
            "quality": card.scores.get("fidelity.quality_score"),
            "epochs": r.plan.epochs, "train_rows": r.plan.rows,
            "seconds": round(time.perf_counter() - started, 2), "fit_seconds": round(fit_s, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2),
        }
        write(record)
        print(f"  [{table}/{family}/{chain['chain']}] g{k}: {'pass' if card.passed else 'REFUSED ' + record['refused_by']}"
              f" tstr {record['tstr']:.3f} (trtr {trtr:.3f}) survival {record['category_survival']:.2f}"
              f"{' mitigation ' + r.mitigation if r.mitigation else ''} {record['seconds']:.0f}s", file=sys.stderr)
        if chain["mode"] == "block" and not card.passed:
            stopped = k
            break  # the guard stops the chain: no generation learns from a refused batch
        batches.append(batch)
    return stopped


def load_table(entry: dict) -> tuple[pl.DataFrame, str]:
    path = Path(entry["file"])
    path = path if path.is_absolute() else ROOT / path
    return pl.read_parquet(path), entry["target"]


def run(spec: dict, only: set[str] | None, families: list[str] | None, out: Path) -> None:
    import torch

    from ouroboros.config import load_config
    from ouroboros.schema import ColumnKind, ColumnRole, infer_schema
    from ouroboros.split import train_holdout_split

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    config = load_config(ROOT / "ouroboros.yaml")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "records.jsonl"
    done: dict[tuple, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            done[(r["table"], r["family"], r["chain"])] = max(done.get((r["table"], r["family"], r["chain"]), -1),
                                                              r["generation"])

    def write(record: dict) -> None:
        with path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    for table, entry in spec["tables"].items():
        if only and table not in only:
            continue
        real, target = load_table(entry)
        train, holdout = train_holdout_split(real, config.data.holdout_fraction, config.data.seed, config.data.key)
        schema = infer_schema(train, target, config.data.id_columns)
        categorical = [c.name for c in schema.columns if c.role == ColumnRole.VALUE
                       and (c.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN) or train[c.name].n_unique() <= 10)]
        down = Downstream(train, target, schema)
        rows = int(spec["rows"])
        real_scores = [down.score(train.sample(min(rows, train.height), seed=s), holdout, seed=s)
                       for s in range(REAL_SUBSAMPLES)]
        trtr = float(np.mean(real_scores))
        meta = out / f"{table}.real.json"
        meta.write_text(json.dumps({"table": table, "target": target, "train_rows": train.height,
                                    "holdout_rows": holdout.height, "columns": real.width, "trtr_rows": rows,
                                    "trtr": trtr, "trtr_sd": float(np.std(real_scores, ddof=1)),
                                    "trtr_full": down.score(train, holdout), "categorical": categorical}))
        print(f"[{table}] {train.height} train / {holdout.height} holdout rows; TRTR at {rows} rows "
              f"{trtr:.3f} (sd {np.std(real_scores, ddof=1):.3f})", file=sys.stderr)
        for family in families or spec["families"]:
            todo = chains(spec) + (sweep_chains(spec) if family == spec.get("sweep_family") else [])
            for chain in todo:
                last = done.get((table, family, chain["chain"]))
                if last is not None:
                    continue  # already run (complete, or stopped by the guard); delete its lines to rerun it
                run_chain(table, train, holdout, target, family, chain, spec, config, down, trtr, categorical, write)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", type=Path, default=STUDY)
    p.add_argument("--only", help="comma-separated table names")
    p.add_argument("--families", help="comma-separated families (default: the study's)")
    p.add_argument("--generations", type=int, help="override the study's generations (smoke runs)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--report", action="store_true", help="print the markdown report of the records and plot them")
    args = p.parse_args(argv)
    spec = yaml.safe_load(args.study.read_text())["benchmark"]
    if args.generations:
        spec["generations"] = args.generations
    if args.report:
        from collapse_report import report  # beside this script (python puts its folder on sys.path)

        print(report(args.out, spec, ROOT / "docs"))
        return 0
    run(spec, set(args.only.split(",")) if args.only else None,
        args.families.split(",") if args.families else None, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
