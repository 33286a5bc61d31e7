"""Scores of a synthetic batch against the real data, and the verdict they imply.

`evaluate` runs every family of scores (contract, fidelity, joint, privacy, utility, collapse: one module each,
`gate_*.py`), returns them flat in `scores` (with what fresh real rows score beside them), and turns the blocking
tests into `failures` (see `judge.py` for the rule) and the soft limits into `warnings`. Sub-checks the data is
too small for are listed in `skipped`, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from ouroboros.config import GateConfig
from ouroboros.identifiers import gate_view
from ouroboros.quality.encoding import Encoder
from ouroboros.quality.gate_collapse import score_collapse
from ouroboros.quality.gate_fidelity import score_pairs, score_shapes
from ouroboros.quality.gate_joint import score_joint
from ouroboros.quality.gate_privacy import exact_copy_rate, score_privacy
from ouroboros.quality.gate_schema import score_schema
from ouroboros.quality.gate_utility import score_utility
from ouroboros.quality.judge import CHECKS, Failure, Judge, Scorecard
from ouroboros.rebalance import HOLDOUT_SALT, TRAIN_SALT, reweighted
from ouroboros.schema import TableSchema

__all__ = ["CHECKS", "Failure", "Scorecard", "evaluate", "exact_copy_rate"]


def evaluate(
    synthetic: pl.DataFrame,
    real_train: pl.DataFrame,
    real_holdout: pl.DataFrame,
    config: GateConfig | None = None,
    schema: TableSchema | None = None,
    target: str | None = None,
    id_columns: Sequence[str] = (),
    target_share: Mapping[str, float] | None = None,
) -> Scorecard:
    """Score a batch on fidelity, diversity, privacy, utility (with a `target`) and collapse indicators;
    `passed` says whether it may feed training. Identifier and free-text columns are left out.

    `target_share` (a rebalanced batch, `study.target_share`): the shape, association, collapse and detection
    tests compare the batch with real_train and real_holdout stratified to the batch's class mix; privacy counts
    copies against all of real_train, and the downstream model is scored on real_holdout as it is
    (`ouroboros.rebalance` says why)."""
    config = config or GateConfig()
    synthetic, real_train, real_holdout, schema = gate_view(synthetic, real_train, real_holdout, schema, id_columns)
    full_train, full_holdout = real_train, real_holdout
    real_train = reweighted(full_train, target, target_share, config.seed + TRAIN_SALT)
    real_holdout = reweighted(full_holdout, target, target_share, config.seed + HOLDOUT_SALT, shares_from=full_train)
    if synthetic.columns != schema.names:
        f = Failure("contract", "columns", 0.0, 1.0, f"batch columns {synthetic.columns} != real {schema.names}")
        return Scorecard(passed=False, failures=[f], scores={})
    j = Judge(config.false_refusal_rate * (1 - config.contract_share))
    if not score_schema(j, synthetic, real_train, real_holdout, schema, config):
        return j.verdict()
    if synthetic.height < 2:
        j.refuse("fidelity", "rows", float(synthetic.height), 2.0, "the batch has fewer than 2 rows")
        return j.verdict()
    holdout = real_holdout if real_holdout.height >= 2 else None
    score_shapes(j, synthetic, real_train, holdout, schema, config)
    score_collapse(j, synthetic, real_train, holdout, schema, config)
    encoder = Encoder.fit(real_train, schema)
    score_pairs(j, synthetic, real_train, holdout, schema, encoder, config)
    score_privacy(j, synthetic, full_train, full_holdout, encoder, config)
    score_joint(j, synthetic, real_train, holdout, encoder, config)
    if target is not None and target in schema.names:
        score_utility(j, synthetic, real_train, full_holdout if full_holdout.height >= 2 else None, schema, target,
                      config)
    return j.verdict()
