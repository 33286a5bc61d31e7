"""Gate benchmark (on demand, never a test): time and peak memory of `evaluate` on 100k and 1M-row batches
of 20 columns (10 numeric, 10 categorical), with real_train as large as the batch and a 25% holdout.

    .venv/bin/python benchmarks/bench_gate.py            # 100k and 1M rows
    .venv/bin/python benchmarks/bench_gate.py 200000     # any sizes

Peak memory is the process's max RSS (includes the input frames), sampled by the kernel. Target: a 1M-row
batch scored in under 60 s within 4 GiB on 2 cores. CPU seconds (user + system of this process) are printed
beside the wall time: on a machine shared with other work the wall time says more about the neighbours.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
import polars as pl


def make_table(rows: int, seed: int) -> pl.DataFrame:
    """10 correlated numeric columns (normal, lognormal tails, integers) and 10 categorical (2 to 40 levels, rare ones)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, 10)) @ np.linalg.cholesky(0.5 * np.eye(10) + 0.5).T
    cols: dict[str, object] = {}
    for i in range(10):
        x = z[:, i]
        if i % 3 == 1:
            x = np.exp(x)  # heavy right tail
        cols[f"num_{i}"] = np.round(x * 10).astype(np.int32) if i % 3 == 2 else x
    for i in range(10):
        levels = 2 + 4 * i
        p = 1.0 / np.arange(1, levels + 1) ** 1.2
        u = (z[:, i % 10] + rng.normal(scale=0.7, size=rows))  # tied to a numeric column: real associations
        ranks = np.clip(np.searchsorted(np.quantile(u, np.cumsum(p / p.sum())[:-1]), u), 0, levels - 1)
        cols[f"cat_{i}"] = np.array([f"c{j}" for j in range(levels)])[ranks]
    return pl.DataFrame(cols)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def main(sizes: list[int]) -> None:
    from ouroboros.quality import evaluate

    print(f"{'rows':>9} {'cols':>4} {'seconds':>8} {'CPU s':>7} {'peak RSS GiB':>12}  passed  notes")
    for n in sizes:
        real = make_table(n + n // 4, seed=0)
        train, holdout = real[:n], real[n:]
        batch = make_table(n, seed=1)
        evaluate(batch[:2000], train[:8000], holdout[:2000], target="cat_0")  # warm imports and torch
        start, cpu = time.perf_counter(), time.process_time()
        card = evaluate(batch, train, holdout, target="cat_0")
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        s = card.scores
        print(f"{n:>9} {batch.width:>4} {seconds:>8.1f} {cpu:>7.1f} {peak_rss_gib():>12.2f}  {card.passed!s:>6}  "
              f"quality={s['fidelity.quality_score']:.3f} auc={s['joint.detection_auc']:.3f} "
              f"knn_rows={s['joint.rows']:.0f} privacy_rows={s['privacy.rows']:.0f} against {s['privacy.reference_rows']:.0f} "
              f"train rows, pair_rows={s['fidelity.pair_trends.rows']:.0f}, tests={s['gate.tests']:.0f}", flush=True)
        for f in card.failures:
            print("   failure:", f.indicator, f.reason)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
