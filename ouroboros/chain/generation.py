"""One generation of a chain, framework-free: build the policy's pool, run the step, and draw the batch.

The generator asset (assets/generations.py) and the collapse benchmark (benchmarks/bench_collapse.py) both call
these two functions, so the benchmark measures exactly the chain the pipeline runs:

- `fit_generation`: the pool of generation k under the study's policy (`ouroboros.policies.build_pool`), the step
  (`ouroboros.chain.step.run_step`: budget, bake-off, repair at generation 0, mitigation at k >= 1), and the rows
  the kept generator learned from with their origins. When the `anchor` mitigation raised the real share, the pool
  returned is the raised one: that is what the kept generator read.
- `draw_generation_batch`: the batch as the step gated it. A verified batch is the verifier's selection of a
  larger draw; a rebalanced one the asked class mix; otherwise a plain draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from ouroboros.chain.step import BATCH_SEED_OFFSET, StepResult, run_step
from ouroboros.chain.verify import draw_selected
from ouroboros.config import GateConfig, StudyConfig
from ouroboros.policies import Pool, build_pool
from ouroboros.provenance import Origin
from ouroboros.rebalance import draw_batch


@dataclass
class Generation:
    pool: Pool  # the pool the kept generator's rows were taken from (the anchor-raised one when anchor passed)
    result: StepResult
    learned: pl.DataFrame  # the rows the kept generator learned from (the budget may subsample the pool)
    origin: pl.DataFrame  # their origins, aligned by row (ouroboros.provenance)

    @property
    def generator(self):
        return self.result.generator


def fit_generation(study: StudyConfig, gate: GateConfig, generation: int, real_train: pl.DataFrame | None,
                   batches: Sequence[pl.DataFrame], *, real_holdout: pl.DataFrame | None = None,
                   origins: dict[str, Origin] | None = None, chosen_family: str | None = None,
                   target: str | None = None, id_columns: Sequence[str] = (), data_seed: int = 0,
                   callback: Callable[[int, dict], None] | None = None,
                   log: Callable[[str], None] | None = None) -> Generation:
    """Fit generation `generation` of `study`. `batches[j]` is generation j's approved batch (an empty frame for a
    generation this policy does not read); `real_train` may be None only for a `replace` generation k >= 1 of a
    study without mitigation (it then learns from the previous batch alone)."""
    real = real_train if real_train is not None else pl.DataFrame()
    pool = build_pool(study.policy, generation, real, list(batches), lam=study.lam, seed=study.seed,
                      origins=origins)

    def anchor_pool(lam: float) -> Pool:  # mitigation anchor: real share lam, the rest from generation k-1's batch
        return build_pool("anchor", generation, real, list(batches), lam=lam, seed=study.seed, origins=origins)

    result = run_step(pool.rows, study, gate, generation, batch_rows=study.rows, real_train=real_train,
                      real_holdout=real_holdout, chosen_family=chosen_family, target=target,
                      id_columns=tuple(id_columns), data_seed=data_seed, callback=callback, log=log,
                      anchor_pool=(lambda lam: anchor_pool(lam).rows) if real_train is not None else None,
                      real_share=pool.composition.get("real", 0) / max(1, pool.rows.height))
    if result.real_share is not None:
        pool = anchor_pool(result.real_share)  # the kept generator learnt from the raised real share
    index = None if result.pool_index is None else result.pool_index.tolist()
    learned = pool.rows if index is None else pool.rows[index]
    origin = pool.origin if index is None else pool.origin[index]
    return Generation(pool, result, learned, origin)


def draw_generation_batch(generator, rows: int, seed: int, *, selection: dict | None = None,
                          target: str | None = None, target_share: dict | None = None,
                          real_target: pl.Series | None = None) -> pl.DataFrame:
    """Generation k's batch, drawn as its step gated it. `seed` is the generator's seed (the batch is drawn with
    seed + BATCH_SEED_OFFSET); `selection` the step's verifier selection (`StepResult.selection`), if any."""
    if selection:
        return draw_selected(generator, rows, seed + BATCH_SEED_OFFSET, selection)
    return draw_batch(generator, rows, seed + BATCH_SEED_OFFSET, target, target_share, real_target)
