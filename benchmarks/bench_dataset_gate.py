"""The dataset gate's false-refusal and fault tables (docs/relational.md), on the tests' seeded process.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_dataset_gate.py          # every table below
    PYTHONPATH=. .venv/bin/python benchmarks/bench_dataset_gate.py entity   # the entity-level checks only

Real: 6,000 patients (tests/relational_data.py), split by entity (25% holdout). Fresh real entities: 20 new
draws of the same process at each size. Faults: 5 draws of 2,000 entities each.

The entity-level checks (`entity_closer_to_train`, `entity_near_copy`, `entity_utility`) are measured on the
same process with its `outcome` target (a patient's outcome that depends on the visits), so the utility check
runs: docs/relational-gate-entity.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from ouroboros.entity_split import entity_split  # noqa: E402
from ouroboros.quality.gate_dataset import DatasetLimits, judge_dataset, judge_whole  # noqa: E402
from ouroboros.quality.gate_entity import entity_frame, entity_privacy  # noqa: E402
from tests.relational_data import (  # noqa: E402
    copy_entities,
    draw,
    jitter_copies,
    scramble_order,
    shuffle_children,
    swap_children,
)

ENTITY_CHECKS = ("entity_closer_to_train", "entity_near_copy", "entity_utility")


def main() -> None:
    train, hold = entity_split(draw(6000, seed=100), 0.25, 0)
    print("| entities | links refused | links + flat gates refused |\n|---|---|---|")
    for n in (500, 2000):
        links = sum(not judge_dataset(draw(n, seed=1000 + s, first_id=10**6), train, hold).passed for s in range(20))
        whole = sum(not judge_whole(draw(n, seed=1000 + s, first_id=10**6), train, hold).passed for s in range(20))
        print(f"| {n} | {links} / 20 | {whole} / 20 |")
    print("\n| fault (2,000 entities) | refused | checks that refused (first draw) |\n|---|---|---|")
    faults = {"children shuffled across parents": lambda f, s: shuffle_children(f, s),
              "sequence order scrambled": lambda f, s: scramble_order(f, s),
              "every parent 4 children": lambda f, s: draw(2000, seed=3000 + s, first_id=10**6, fixed_children=4),
              "10% of entities copied whole": lambda f, s: copy_entities(f, train, 0.1, s)}
    for name, make in faults.items():
        verdicts = [judge_dataset(make(draw(2000, seed=3000 + s, first_id=10**6), s), train, hold) for s in range(5)]
        first = ", ".join(f"{c.name} ({c.statistic:.3g} vs {c.real if c.real is None else round(c.real, 3)})"
                          for c in verdicts[0].failed)
        print(f"| {name} | {sum(not v.passed for v in verdicts)} / 5 | {first} |")


def _cell(verdicts, name: str) -> str:
    """How many verdicts this check refused, and the batch's vs real's value of the first verdict."""
    checks = [next((c for c in v.checks if c.name == name), None) for v in verdicts]
    refused = sum(c is not None and not c.passed for c in checks)
    c = checks[0]
    return f"{refused} ({c.statistic:.3f} vs {c.real:.3f})" if c is not None else "skipped"


def entity() -> None:
    """False refusals of fresh real entities and power against entity-level faults (outcome target)."""
    load = os.getloadavg()
    start = time.time()
    train, hold = entity_split(draw(6000, seed=100, outcome=True), 0.25, 0)
    print(f"real_train {train.tables['patients'].height} / real_holdout {hold.tables['patients'].height} entities; "
          f"load average at start {load[0]:.2f} / {load[1]:.2f} (1 / 5 min), {os.cpu_count()} cores")
    head = " | ".join(ENTITY_CHECKS)
    print(f"\n| entities | links refused | {head} |\n|---|---|---|---|---|")
    for n in (500, 2000):
        vs = [judge_dataset(draw(n, seed=1000 + s, first_id=10**6, outcome=True), train, hold) for s in range(20)]
        print(f"| {n} | {sum(not v.passed for v in vs)} / 20 | "
              + " | ".join(f"{_cell(vs, c).split(' ')[0]} / 20" for c in ENTITY_CHECKS) + " |")
        lines = []
        for c in ENTITY_CHECKS:
            cs = [next(x for x in v.checks if x.name == c) for v in vs]
            gaps = np.array([x.statistic - x.real for x in cs]) * (-1 if c == "entity_utility" else 1)
            lines.append(f"{c}: p < 0.05 in {sum(x.p_value < 0.05 for x in cs)} / 20, gap mean {gaps.mean():.4f} "
                         f"max {gaps.max():.4f} (limit {cs[0].limit:.4f})")
        print("  <!-- " + "; ".join(lines) + " -->")
    # the privacy tests alone, many more fresh draws (cheap): is the binomial / Fisher p honest on its own?
    lim = DatasetLimits()
    ft, fh = entity_frame(train), entity_frame(hold)
    for n in (500, 2000):
        ps = {"entity_closer_to_train": [], "entity_near_copy": []}
        for s in range(100):
            for t in entity_privacy(entity_frame(draw(n, seed=5000 + s, first_id=10**6, outcome=True)), ft, fh,
                                    lim.privacy_entities, lim.reference_entities, lim.near_copy_distance,
                                    lim.max_memorised_share, lim.max_copy_excess, np.random.default_rng(s)):
                ps[t.name].append(t.p_value)
        print(f"  privacy tests alone, {n} entities, 100 fresh draws: "
              + ", ".join(f"{k} p < 0.05 in {np.sum(np.array(v) < 0.05)}, p < 0.01 in {np.sum(np.array(v) < 0.01)}"
                          for k, v in ps.items()))
    print(f"\n| fault (2,000 entities, 5 draws) | links refused | {head} |\n|---|---|---|---|---|")
    faults = {
        "10% of entities copied whole": lambda f, s: copy_entities(f, train, 0.1, s),
        "10% copied whole, each numeric value jittered by 1% of its sd": lambda f, s: jitter_copies(f, train, 0.1, s),
        "30% copied whole, jittered by 1% of its sd": lambda f, s: jitter_copies(f, train, 0.3, s),
        "10% copied whole, jittered by 10% of its sd": lambda f, s: jitter_copies(f, train, 0.1, s, scale=0.1),
        "children replaced by those of random other parents": lambda f, s: swap_children(f, s),
    }
    for name, make in faults.items():
        vs = [judge_dataset(make(draw(2000, seed=3000 + s, first_id=10**6, outcome=True), s), train, hold)
              for s in range(5)]
        print(f"| {name} | {sum(not v.passed for v in vs)} / 5 | "
              + " | ".join(_cell(vs, c) for c in ENTITY_CHECKS) + " |")
    vs = [judge_dataset(swap_children(draw(500, seed=3000 + s, first_id=10**6, outcome=True), s), train, hold)
          for s in range(5)]
    print(f"| (500 entities) children replaced by those of random other parents | {sum(not v.passed for v in vs)} / 5"
          " | " + " | ".join(_cell(vs, c) for c in ENTITY_CHECKS) + " |")
    print(f"\n{time.time() - start:.0f} s; load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    entity() if sys.argv[1:] == ["entity"] else (main(), entity())
