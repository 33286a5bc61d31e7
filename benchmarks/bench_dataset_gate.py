"""The dataset gate's false-refusal and fault tables (docs/relational.md), on the tests' seeded process.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_dataset_gate.py   # about a minute on one core

Real: 6,000 patients (tests/relational_data.py), split by entity (25% holdout). Fresh real entities: 20 new
draws of the same process at each size. Faults: 5 draws of 2,000 entities each.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ouroboros.entity_split import entity_split  # noqa: E402
from ouroboros.quality.gate_dataset import judge_dataset, judge_whole  # noqa: E402
from tests.relational_data import copy_entities, draw, scramble_order, shuffle_children  # noqa: E402


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


if __name__ == "__main__":
    main()
