"""Mixing policies: which rows train generation k, given the real data and earlier approved batches.

A policy is decided once, as a `PoolPlan` (which rows of which source), and then materialised: as a
polars frame for the pipeline (`build_pool`), or as numpy arrays stacked over many independent chains
for the fast reference experiments (`build_pool_arrays`). Both use the same plan, so the science
tests exercise exactly the policy the pipeline runs.

A polars pool also carries each row's origin (`Pool.origin`, aligned by row, never part of `Pool.rows`):
real_train or which batch, and which row of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ouroboros.provenance import REAL, SYNTHETIC, Origin, origin_frame

POLICIES = ("replace", "accumulate", "anchor")


@dataclass(frozen=True)
class Pool:
    rows: pl.DataFrame  # what the generator learns from: data columns only
    composition: dict[str, int]  # source name ("real" or "gen_<k>") -> rows taken from it
    origin: pl.DataFrame  # one row per pool row: its origin (ouroboros.provenance), aligned by row


@dataclass(frozen=True)
class PoolPlan:
    """Rows of each source that make up a pool; `None` as indices means all rows, in order."""

    parts: tuple[tuple[str, np.ndarray | None], ...]  # (source, row indices or None)
    sizes: dict[str, int]  # source -> its row count, to resolve `None`

    @property
    def composition(self) -> dict[str, int]:
        return {s: (self.sizes[s] if idx is None else len(idx)) for s, idx in self.parts}


def source_name(generation: int) -> str:
    return f"gen_{generation}"


def plan_pool(policy: str, generation: int, real_rows: int, batch_rows: list[int], lam: float = 0.2,
              seed: int = 0) -> PoolPlan:
    """Decide the pool of `generation`; `batch_rows[j]` is the row count of generation j's approved batch.

    replace: only generation k-1's batch (how collapse happens, Shumailov et al. 2024); accumulate: real
    plus every earlier batch (Gerstgrasser et al. 2024); anchor: a fraction `lam` of fresh real rows,
    the rest drawn from generation k-1's batch, the pool keeping the size of that batch.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown mixing policy {policy!r}; choose one of {POLICIES}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    sizes = {"real": real_rows} | {source_name(j): n for j, n in enumerate(batch_rows)}
    if generation == 0:
        return PoolPlan((("real", None),), sizes)
    if len(batch_rows) < generation:
        raise ValueError(f"generation {generation} needs the batches of generations 0..{generation - 1}, "
                         f"got {len(batch_rows)}")
    previous = source_name(generation - 1)
    if policy == "replace":
        return PoolPlan(((previous, None),), sizes)
    if policy == "accumulate":
        return PoolPlan((("real", None), *((source_name(j), None) for j in range(generation))), sizes)
    rng = np.random.default_rng([seed, generation])
    n = batch_rows[generation - 1]
    n_real = min(real_rows, int(round(lam * n)))
    real_idx = rng.choice(real_rows, size=n_real, replace=False) if n_real else np.empty(0, dtype=np.int64)
    syn_idx = rng.choice(n, size=n - n_real, replace=False)
    return PoolPlan((("real", real_idx), (previous, syn_idx)), sizes)


def build_pool(
    policy: str,
    generation: int,
    real: pl.DataFrame,
    batches: list[pl.DataFrame],
    lam: float = 0.2,
    seed: int = 0,
    origins: dict[str, Origin] | None = None,
) -> Pool:
    """Training pool of `generation` as a polars frame; `batches[j]` is the approved batch of generation j.

    `origins` names each source ("real", "gen_<j>") for the pool's provenance (fingerprint, study); without
    it a source is known by its kind and generation only.
    """
    plan = plan_pool(policy, generation, real.height, [b.height for b in batches[:generation]], lam, seed)
    sources = {"real": real} | {source_name(j): b for j, b in enumerate(batches)}
    named = {"real": Origin(REAL)} | {source_name(j): Origin(SYNTHETIC, generation=j) for j in range(len(batches))}
    named |= origins or {}
    parts = [sources[s] if idx is None else sources[s][idx.tolist()] for s, idx in plan.parts]
    rows = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")
    origin = pl.concat([origin_frame(named[s], plan.sizes[s] if idx is None else idx) for s, idx in plan.parts])
    return Pool(rows, {s: n for s, n in plan.composition.items()}, origin)


def build_pool_arrays(policy: str, generation: int, real: np.ndarray, batches: list[np.ndarray],
                      lam: float = 0.2, seed: int = 0) -> tuple[np.ndarray, dict[str, int]]:
    """The same pool for many chains at once: arrays shaped (chains, rows, columns), rows on axis -2."""
    plan = plan_pool(policy, generation, real.shape[-2], [b.shape[-2] for b in batches[:generation]], lam, seed)
    sources = {"real": real} | {source_name(j): b for j, b in enumerate(batches)}
    parts = [sources[s] if idx is None else np.take(sources[s], idx, axis=-2) for s, idx in plan.parts]
    rows = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-2)
    return rows, plan.composition
