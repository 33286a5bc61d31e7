"""What the wiring tests share: a gate with its joint limits off, and a generator family built to fail the gate.

Tests of the graph's wiring (Dagster, lineage, landing, the stack, the UI) need a chain the gate approves. The
bundled copula is not one on the demo table under the default gate: it keeps about 15-40% of the real
associations and a model trained on its batch predicts `outcome` no better than a constant (docs/gate.md). So
WIRING_GATE sets the three joint limits off (tests/test_default_gate_pipeline.py and tests/test_rebalance_pipeline.py
run the default gate, nothing loosened, on a family that replays held-out real rows); every other test (contract, shapes, spread, tails, categories,
copies) judges at its default, which is what stops the `shrunk` chain.

Importing this module registers `shrunk`: a copula whose numeric columns come out squeezed towards their median,
a collapsed batch the blocking checks must stop. It exists only in the tests, so no real config can select it.
"""

from __future__ import annotations

import polars as pl

from ouroboros.generators import register
from ouroboros.generators.copula import GaussianCopula


def approved(evaluation) -> bool:
    """A check evaluation that approves its batch: passed, or failed only a soft limit. A gate refusal is a
    failed check of WARN severity too (a refusal is an outcome, not a crashed step), told apart by its
    `verdict` metadata."""
    verdict = evaluation.metadata.get("verdict")
    return evaluation.passed or (verdict is not None and getattr(verdict, "value", verdict) == "approved")


WIRING_GATE = {"min_association_retention": 0.0, "max_detection_auc": 1.0, "min_utility_retention": -100.0}


class ShrunkCopula(GaussianCopula):
    """A broken generator: a copula whose numeric columns come out squeezed towards their median (collapse)."""

    family = "shrunk"

    def _sample(self, n: int, seed: int) -> pl.DataFrame:
        df = super()._sample(n, seed)
        numeric = [c.name for c in self.schema.columns if c.kind.value == "continuous"]
        return df.with_columns([(pl.col(c) - pl.col(c).median()) * 0.3 + pl.col(c).median() for c in numeric])


register("shrunk", f"{__name__}:ShrunkCopula")
