"""The 1-D Wasserstein distance the collapse family reports (a warning, in real std units)."""

from __future__ import annotations

import numpy as np

GRID = 2000  # quantile grid of the 1-D Wasserstein distance


def _w1(a_sorted: np.ndarray, b_sorted: np.ndarray) -> float:
    """1-D Wasserstein-1 distance from quantile functions on a fixed grid (O(grid) after sorting)."""
    u = (np.arange(GRID) + 0.5) / GRID
    qa = a_sorted[np.minimum((u * len(a_sorted)).astype(np.int64), len(a_sorted) - 1)]
    qb = b_sorted[np.minimum((u * len(b_sorted)).astype(np.int64), len(b_sorted) - 1)]
    return float(np.abs(qa - qb).mean())
