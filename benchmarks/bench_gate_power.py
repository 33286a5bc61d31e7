"""Gate power benchmark (on demand, never a test): how often the gate refuses honest batches, and which subtle
faults it catches, on the demo table, two generated tables of other shapes, and any table named on the command
line.

    .venv/bin/python benchmarks/bench_gate_power.py                       # demo + two generated tables
    .venv/bin/python benchmarks/bench_gate_power.py data.csv:target      # and your table (CSV or parquet)
    .venv/bin/python benchmarks/bench_gate_power.py --draws 200 --big-draws 50 --only demo

Part 1, false refusals: batches of fresh real rows (real_train four times the batch's size where the table
allows, real_holdout as large as the batch), redrawn each time: a new random split of a real table, a new seed
of a generated one. Part 2, power: each fault of `ouroboros.quality.proving.FAULTS` applied to fresh real rows,
caught (refused for its own reason) or missed. Output is markdown, for docs/gate.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ouroboros.config import GateConfig  # noqa: E402
from ouroboros.quality import evaluate  # noqa: E402
from ouroboros.quality.proving import FAULTS, applicable, mixed_table, spiky_table, wide_levels_table  # noqa: E402

SIZES = (50, 200, 1000, 10_000)
FAULT_SIZES = (1000, 10_000)


def split(table, n: int, draw: int):
    """(train, holdout, pool) for a batch of n rows; pool holds at least 2n fresh rows when it can."""
    make, real = table
    if make is not None:
        df = make(8 * n, 1000 + draw)
        return df[:4 * n], df[4 * n:5 * n], df[5 * n:]
    df = real.sample(fraction=1.0, shuffle=True, seed=draw)
    h = min(n, df.height // 8)
    pool_rows = min(n + n // 2, df.height - h - max(n // 2, 50))
    t = min(4 * n, df.height - h - pool_rows)
    return df[:t], df[t:t + h], df[t + h:t + h + pool_rows]


def false_refusals(name, table, target, sizes, draws, big_draws, config):
    print(f"\n### {name}: false refusals of fresh real rows\n", flush=True)
    print("| batch rows | real_train | real_holdout | draws | refused | rate | 95% upper bound | refused on | s/draw |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|---:|", flush=True)
    from scipy.stats import beta
    for n in sizes:
        k = draws if n < 10_000 else big_draws
        refused, reasons, start = 0, {}, time.perf_counter()
        for d in range(k):
            train, holdout, pool = split(table, n, d)
            batch = pool[:n]
            card = evaluate(batch, train, holdout, config, target=target)
            if not card.passed:
                refused += 1
                for f in card.failures:
                    key = f.indicator.split(".")[0] if f.check in ("collapse", "contract") else f.indicator
                    reasons[key] = reasons.get(key, 0) + 1
        upper = beta.ppf(0.95, refused + 1, k - refused)
        why = ", ".join(f"{r} ({c})" for r, c in sorted(reasons.items())) or "-"
        print(f"| {batch.height:,} | {train.height:,} | {holdout.height:,} | {k} | {refused} | {refused / k:.1%} | "
              f"{upper:.1%} | {why} | {(time.perf_counter() - start) / k:.1f} |", flush=True)


def power(name, table, target, sizes, config):
    print(f"\n### {name}: subtle faults, caught (refused for their own reason) or missed\n", flush=True)
    print("| fault | " + " | ".join(f"{n:,} rows" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes), flush=True)
    rows = {f: [] for f in FAULTS}
    for n in sizes:
        train, holdout, pool = split(table, n, 10_000 + n)
        for fault, (make, prefixes) in FAULTS.items():
            why = applicable(fault, train, target)
            if why:
                rows[fault].append(f"n/a ({why})")
                continue
            card = evaluate(make(pool, train, n, target, 7), train, holdout, config, target=target)
            own = [f for f in card.failures if _key(f).startswith(prefixes)]
            if own:
                rows[fault].append(f"caught ({_key(own[0])}, value {own[0].value:.3g}, "
                                   f"p {card.scores.get('gate.p.' + _key(own[0]), float('nan')):.1g})")
            else:
                other = sorted({_key(f) for f in card.failures})
                best = min((k for k in card.scores if k.startswith(tuple("gate.p." + p for p in prefixes))),
                           key=lambda k: card.scores[k], default=None)
                detail = f"best p {card.scores[best]:.2g} on {best[7:]}" if best else "not scored"
                rows[fault].append(f"**missed** ({detail}" + (f"; refused on {', '.join(other[:3])}" if other else "")
                                   + ")")
    for fault, cells in rows.items():
        print(f"| {fault} | " + " | ".join(cells) + " |", flush=True)


def _key(f) -> str:
    return f.indicator if f.check in ("fidelity", "privacy") else f"{f.check}.{f.indicator}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tables", nargs="*", help="path:target of more tables (CSV or parquet)")
    parser.add_argument("--draws", type=int, default=200, help="fresh-real draws at 50, 200 and 1,000 rows")
    parser.add_argument("--big-draws", type=int, default=200, help="fresh-real draws at 10,000 rows")
    parser.add_argument("--only", default=None, help="run only the table whose name starts with this")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--skip-power", action="store_true")
    parser.add_argument("--skip-refusals", action="store_true")
    args = parser.parse_args()
    config = GateConfig()
    tables = {
        "crashes (demo, 26k x 14)": ((None, pl.read_parquet(ROOT / "ouroboros/data/crashes.parquet")), "outcome"),
        "mixed (generated: 10 columns, nulls, rare levels, binary target)": ((mixed_table, None), "default"),
        "wide_levels (generated: a many-level column, 51 states, counts, dates, numeric target)":
            ((wide_levels_table, None), "amount"),
        "spiky (generated: 47% of hours at 40, a 92%-zero amount with a spike at its cap, a 74%-zero count, "
        "an 85%-null column, age, weight)": ((spiky_table, None), "high"),
    }
    for spec in args.tables:
        path, _, target = spec.rpartition(":")
        df = pl.read_parquet(path) if path.endswith(".parquet") else pl.read_csv(path, infer_schema_length=10_000)
        tables[f"{Path(path).name} ({df.height:,} x {df.width})"] = ((None, df), target)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    print(f"Gate defaults: false_refusal_rate {config.false_refusal_rate}, seed {config.seed}.", flush=True)
    for name, (table, target) in tables.items():
        if args.only and not name.startswith(args.only):
            continue
        if not args.skip_power:
            power(name, table, target, [s for s in FAULT_SIZES if s in sizes], config)
        if not args.skip_refusals:
            false_refusals(name, table, target, sizes, args.draws, args.big_draws, config)


if __name__ == "__main__":
    main()
