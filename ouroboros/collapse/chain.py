"""The chain of generations as core logic: generation k learns from the pool its policy builds.

One loop (`chain`) serves two materialisations of the same policy code:

- `run_study`: polars tables, any generator family, every batch scored by `ouroboros.quality.evaluate`
  and (with `gate=True`) the chain stopped at the first batch the gate fails, as the pipeline does;
- `run_reference_chains`: the Gaussian reference generator on numpy arrays holding many independent
  chains at once, for the published results (hundreds of chains x hundreds of generations in a second).

Seeds follow the pipeline's convention (generator seed `seed*1000 + k`, sample seed that + 7919), so a
study run here draws the same batches the Dagster assets draw from the same real_train.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import polars as pl

from ouroboros.collapse.gaussian import fit_moments, sample_moments
from ouroboros.config import GateConfig
from ouroboros.generators import create
from ouroboros.policies import build_pool, build_pool_arrays
from ouroboros.quality import Scorecard, evaluate
from ouroboros.schema import infer_schema

SAMPLE_SEED_OFFSET = 7919  # the pipeline's batch asset samples with generator seed + this

T = TypeVar("T")  # a table: a polars frame, or an array of chains
V = TypeVar("V")  # a judgement of a batch


def generator_seed(study_seed: int, generation: int) -> int:
    return study_seed * 1000 + generation


def sample_seed(study_seed: int, generation: int) -> int:
    return generator_seed(study_seed, generation) + SAMPLE_SEED_OFFSET


@dataclass
class Step(Generic[T, V]):
    generation: int
    composition: dict[str, int]
    batch: T
    verdict: V


def chain(real: T, generations: int, policy: str, lam: float, seed: int,
          pool: Callable[[str, int, T, list[T], float, int], tuple[T, dict[str, int]]],
          train_and_sample: Callable[[T, int], T], judge: Callable[[T], V],
          passed: Callable[[V], bool] | None = None) -> tuple[list[Step[T, V]], int | None]:
    """Run generations 0..N-1; with `passed`, stop at (and return) the first generation it rejects."""
    if generations < 1:
        raise ValueError(f"generations must be at least 1, got {generations}")
    batches: list[T] = []
    steps: list[Step[T, V]] = []
    for k in range(generations):
        rows, composition = pool(policy, k, real, batches, lam, seed)
        batch = train_and_sample(rows, k)
        verdict = judge(batch)
        steps.append(Step(k, composition, batch, verdict))
        if passed is not None and not passed(verdict):
            return steps, k  # later generations never learn from a batch the gate failed
        batches.append(batch)
    return steps, None


# -- tables, any family, the real gate -------------------------------------------------------------

@dataclass
class GenerationResult:
    generation: int
    composition: dict[str, int]  # pool rows per source ("real", "gen_<j>")
    scorecard: Scorecard
    batch: pl.DataFrame | None = None  # kept only with run_study(keep_batches=True)

    @property
    def passed(self) -> bool:
        return self.scorecard.passed


@dataclass
class StudyResult:
    family: str
    policy: str
    generations: list[GenerationResult] = field(default_factory=list)
    stopped_at: int | None = None  # generation whose batch failed the gate (with gate=True the last one run)

    @property
    def tripped_on(self) -> str | None:
        """The first failing indicator of the generation where the chain stopped."""
        if self.stopped_at is None:
            return None
        failures = self.generations[self.stopped_at].scorecard.failures
        return failures[0].indicator if failures else None

    def table(self) -> pl.DataFrame:
        """Long table: generation x indicator -> value, with each generation's verdict."""
        rows = [{"generation": g.generation, "passed": g.passed, "indicator": k, "value": float(v)}
                for g in self.generations for k, v in g.scorecard.scores.items()]
        schema = {"generation": pl.Int64, "passed": pl.Boolean, "indicator": pl.String, "value": pl.Float64}
        return pl.DataFrame(rows, schema=schema)


def run_study(real_train: pl.DataFrame, real_holdout: pl.DataFrame, family: str = "copula",
              policy: str = "accumulate", generations: int = 5, rows: int | None = None, lam: float = 0.2,
              seed: int = 0, gate: bool = True, gate_config: GateConfig | None = None,
              params: dict[str, Any] | None = None, keep_batches: bool = False) -> StudyResult:
    """Train `generations` generations of `family` under `policy`, scoring every batch with the gate.

    With `gate=True` the chain stops at the first batch the scorecard fails (`stopped_at`); with
    `gate=False` every generation runs and learns from whatever the previous one made (the ungated
    counterfactual).
    """
    gate_config = gate_config or GateConfig()
    schema = infer_schema(real_train)
    n = rows or real_train.height
    params = params or {}

    def pool(policy: str, k: int, real: pl.DataFrame, batches: list[pl.DataFrame], lam: float, seed: int):
        p = build_pool(policy, k, real, batches, lam=lam, seed=seed)
        return p.rows, p.composition

    def train_and_sample(pool_rows: pl.DataFrame, k: int) -> pl.DataFrame:
        generator = create(family, seed=generator_seed(seed, k), **params).fit(pool_rows)
        return generator.sample(n, seed=sample_seed(seed, k))

    def judge(batch: pl.DataFrame) -> Scorecard:
        return evaluate(batch, real_train, real_holdout, gate_config, schema=schema)

    steps, stopped = chain(real_train, generations, policy, lam, seed, pool, train_and_sample, judge,
                           passed=(lambda card: card.passed) if gate else None)
    result = StudyResult(family, policy, stopped_at=stopped)
    result.generations = [GenerationResult(s.generation, s.composition, s.verdict,
                                           s.batch if keep_batches else None) for s in steps]
    return result


# -- many chains at once, the Gaussian reference generator on arrays --------------------------------

def variance_ratio(batch: np.ndarray, real: np.ndarray) -> np.ndarray:
    """The scorecard's `collapse.variance_ratio.<column>`: unbiased variance of the batch over real_train's."""
    return batch.var(axis=-2, ddof=1) / real.var(axis=-2, ddof=1)


@dataclass
class ReferenceChains:
    policy: str
    variance_ratio: np.ndarray  # (chains, generations, columns): batch k's variance over real_train's
    mean_shift: np.ndarray  # (chains, generations, columns): batch mean minus real mean, in real std units
    compositions: list[dict[str, int]]  # pool composition per generation (the same for every chain)


def run_reference_chains(real: np.ndarray, policy: str = "replace", generations: int = 100,
                         rows: int | None = None, lam: float = 0.2, seed: int = 0,
                         ddof: int = 1) -> ReferenceChains:
    """Many independent chains of the Gaussian reference generator; `real` is (chains, rows, columns).

    Same loop and policies as `run_study(family="gaussian", gate=False)`; with one chain it draws the very
    same batches, only without polars in between.
    """
    if real.ndim == 2:
        real = real[None]
    n = rows or real.shape[-2]
    real_std = real.std(axis=-2, ddof=1)

    def train_and_sample(pool_rows: np.ndarray, k: int) -> np.ndarray:
        mean, cov = fit_moments(pool_rows, ddof=ddof)
        return sample_moments(mean, cov, n, np.random.default_rng(sample_seed(seed, k)))

    def judge(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return variance_ratio(batch, real), (batch.mean(axis=-2) - real.mean(axis=-2)) / real_std

    steps, _ = chain(real, generations, policy, lam, seed, build_pool_arrays, train_and_sample, judge)
    return ReferenceChains(
        policy=policy,
        variance_ratio=np.stack([s.verdict[0] for s in steps], axis=1),
        mean_shift=np.stack([s.verdict[1] for s in steps], axis=1),
        compositions=[s.composition for s in steps],
    )
