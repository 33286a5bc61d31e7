"""Mixing policies: which rows train generation k, given the real data and earlier approved batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

POLICIES = ("replace", "accumulate", "anchor")


@dataclass(frozen=True)
class Pool:
    rows: pl.DataFrame
    composition: dict[str, int]  # source name ("real" or "gen_<k>") -> rows taken from it


def build_pool(
    policy: str,
    generation: int,
    real: pl.DataFrame,
    batches: list[pl.DataFrame],
    lam: float = 0.2,
    seed: int = 0,
) -> Pool:
    """Training pool of `generation`; `batches[j]` is the approved batch of generation j (j < generation).

    replace: only generation k-1's batch (how collapse happens); accumulate: real plus every earlier
    batch (Gerstgrasser et al. 2024); anchor: a fraction `lam` of fresh real rows, the rest from k-1.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown mixing policy {policy!r}; choose one of {POLICIES}")
    if generation == 0:
        return Pool(real, {"real": real.height})
    if len(batches) < generation:
        raise ValueError(f"generation {generation} needs the batches of generations 0..{generation - 1}, "
                         f"got {len(batches)}")
    previous = batches[generation - 1]
    if policy == "replace":
        return Pool(previous, {f"gen_{generation - 1}": previous.height})
    if policy == "accumulate":
        parts = [real, *batches[:generation]]
        composition = {"real": real.height} | {f"gen_{j}": b.height for j, b in enumerate(batches[:generation])}
        return Pool(pl.concat(parts, how="vertical_relaxed"), composition)
    # anchor: keep the pool the size of the previous batch, lam of it fresh real rows
    rng = np.random.default_rng([seed, generation])
    n = previous.height
    n_real = min(real.height, int(round(lam * n)))
    real_rows = real[rng.choice(real.height, size=n_real, replace=False).tolist()] if n_real else real.head(0)
    syn_rows = previous[rng.choice(previous.height, size=n - n_real, replace=False).tolist()]
    return Pool(pl.concat([real_rows, syn_rows], how="vertical_relaxed"),
                {"real": n_real, f"gen_{generation - 1}": n - n_real})
