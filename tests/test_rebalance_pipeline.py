"""A rebalanced study through the graph (study.target_share): the batch asset draws exactly the asked class mix,
and the default gate, judging against real rows stratified to that mix, approves fresh real rows so drawn and
refuses a degraded draw. The generator replays held-out real rows of each class (tests/test_default_gate_pipeline
explains the replay); nothing of the gate is loosened."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ouroboros.config import GateConfig, PipelineConfig
from ouroboros.generators import register
from ouroboros.generators.base import meets
from tests.conftest import DEMO
from tests.test_default_gate_pipeline import Replay, materialise_generation_0

SOURCE_ROWS, FRESH_ROWS, BATCH_ROWS, SHARE = 2000, 2400, 300, 0.3


class ReplayByClass(Replay):
    """Replay with exact conditional sampling: the held-out rows that meet the conditions, never one twice."""

    family = "replay_by_class"

    def _sample_conditioned(self, n: int, seed: int, conditions) -> pl.DataFrame:
        rows = self.rows.filter(meets(self.rows, conditions))
        out = rows[np.random.default_rng(seed).permutation(rows.height)[:n].tolist()]
        return out if self.params["squeeze"] == 1.0 else self._squeeze(out)

    def _squeeze(self, out: pl.DataFrame) -> pl.DataFrame:
        k = self.params["squeeze"]
        numeric = [c.name for c in self.schema.columns if c.kind.value == "continuous"]
        return out.with_columns([(pl.col(c) - pl.col(c).median()) * k + pl.col(c).median() for c in numeric])


register("replay_by_class", f"{__name__}:ReplayByClass")


def run(tmp_path: Path, squeeze: float):
    demo = pl.read_parquet(DEMO).sample(n=SOURCE_ROWS + FRESH_ROWS, seed=3, shuffle=True)
    source, fresh = tmp_path / "real.parquet", tmp_path / "fresh.parquet"
    demo.head(SOURCE_ROWS).write_parquet(source)
    demo.slice(SOURCE_ROWS).write_parquet(fresh)
    config = PipelineConfig.model_validate({
        "data": {"source": str(source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [{"name": "r", "family": "replay_by_class", "generations": 1, "rows": BATCH_ROWS,
                     "target_share": {"dead": SHARE}, "params": {"rows": str(fresh), "squeeze": squeeze}}],
        "downstream": {"epochs": 1},
    })
    assert config.gate == GateConfig()
    return materialise_generation_0(tmp_path, config)


def test_a_rebalanced_batch_of_fresh_real_rows_is_approved(tmp_path):
    batch, evaluations, verdict = run(tmp_path, 1.0)
    assert batch.height == BATCH_ROWS and int((batch["outcome"] == "dead").sum()) == round(SHARE * BATCH_ROWS)
    assert set(evaluations) == {"contract", "fidelity", "privacy", "collapse"}
    assert verdict.passed and not verdict.missing, verdict.failures


@pytest.mark.parametrize("squeeze", [0.3])
def test_a_degraded_rebalanced_batch_is_refused(tmp_path, squeeze):
    batch, _, verdict = run(tmp_path, squeeze)
    assert int((batch["outcome"] == "dead").sum()) == round(SHARE * BATCH_ROWS)
    assert not verdict.passed
