"""Fresh real batches for the gate's nulls, drawn by resampling (there are only 1,797 digits).

The gate's nulls are bootstrap draws of n images from real_holdout, which neither the feature classifier nor
any generator saw (ImageGate.null: the batch's noise plus the uncertainty of the centre). `draw_fresh` makes
the fresh batches of the calibration (ouroboros.images.calibration) and the utility null: n images without
replacement; a batch larger than the pool is the whole pool plus a draw with replacement for the rest.
"""

from __future__ import annotations

import numpy as np


def draw_fresh(pool_size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a fresh batch of n drawn from a pool of pool_size images."""
    if n <= pool_size:
        return rng.choice(pool_size, size=n, replace=False)
    return np.concatenate([rng.permutation(pool_size), rng.integers(0, pool_size, n - pool_size)])


def summary(draws: list[float]) -> dict[str, float]:
    a = np.asarray(draws, float)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)), "min": float(a.min()), "max": float(a.max()),
            "draws": len(a)}
