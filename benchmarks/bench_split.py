"""The holdout rule on the demo table: rows moved from real_train to a later real_holdout, old rule vs new.

The demo table grows from 25,000 to 26,217 rows (the issue's case). The old rule drew the holdout again from
a seeded, stratified permutation of each version; the stable hash rule (`ouroboros.split`) decides each row
by a hash of the row. Prints moved rows, the holdout share per class, and hashing speed on 1M rows.

    .venv/bin/python benchmarks/bench_split.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl

from ouroboros.split import class_balance, train_holdout_split

DEMO = Path(__file__).resolve().parents[1] / "ouroboros" / "data" / "crashes.parquet"


def old_rule(df: pl.DataFrame, fraction: float, seed: int, stratify: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The split before the hash rule: a seeded permutation within each class of today's table."""
    rng = np.random.default_rng(seed)
    held = np.zeros(df.height, dtype=bool)
    for idx in df.with_row_index("_i").group_by(stratify, maintain_order=True).agg(pl.col("_i"))["_i"].to_list():
        idx = np.asarray(idx)
        take = min(max(int(round(len(idx) * fraction)), 1), len(idx) - 1)
        held[rng.permutation(idx)[:take]] = True
    mask = pl.Series(held)
    return df.filter(~mask), df.filter(mask)


def main() -> None:
    demo = pl.read_parquet(DEMO).with_row_index("row_id")
    before, after = demo.head(25_000), demo
    rules = {
        "old: seeded permutation per version": lambda d: old_rule(d, 0.2, 0, "outcome"),
        "new: hash of the row's content": lambda d: train_holdout_split(d.drop("row_id"), 0.2, 0),
    }
    print(f"demo table {before.height} -> {after.height} rows, holdout_fraction 0.2")
    for name, split in rules.items():
        train0 = split(before)[0]
        train1, holdout1 = split(after)
        # rows are their content, repeats counted copy by copy: copies real_train held before and lacks now
        counts0, counts1 = (dict(zip(*t.drop("row_id", strict=False).hash_rows(seed=1).value_counts()
                                     .to_dict(as_series=False).values())) for t in (train0, train1))
        moved = sum(max(0, n - counts1.get(h, 0)) for h, n in counts0.items())
        shares = {b["class"]: b["holdout_share"] for b in class_balance(train1, holdout1, "outcome")}
        print(f"  {name}: {moved} rows of the previous real_train moved to real_holdout ({holdout1.height} holdout rows); "
              f"holdout share per class {shares}")
    big = pl.concat([demo.drop("row_id")] * 40)
    started = time.perf_counter()
    train_holdout_split(big, 0.2, 0)
    print(f"hash split of {big.height:,} rows x {big.width} columns: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
