"""k-NN based scores on the encoded space: precision/recall/density/coverage (Naeem et al., 2020) and the
closer-to-train share. Quadratic, so the callers pass subsamples and report their sizes; privacy distances
against every real_train row are in `gate_privacy`."""

from __future__ import annotations

import numpy as np

CHUNK = 2048
CELLS = 8_000_000  # distances held at once per block (about 32-64 MB)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def knn_dists(a: np.ndarray, b: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    """Sorted distances from each row of `a` to its k nearest rows of `b` (chunked; (len(a), k))."""
    k_eff = k + 1 if exclude_self else k
    out = np.empty((len(a), k), dtype=np.float64)
    chunk = max(1, min(CHUNK, CELLS // max(len(b), 1)))  # bounds the distance block's memory
    for start in range(0, len(a), chunk):
        d = _sq_dists(a[start:start + chunk], b)
        part = np.partition(d, min(k_eff, d.shape[1]) - 1, axis=1)[:, :k_eff]
        part.sort(axis=1)
        out[start:start + chunk] = np.sqrt(part[:, 1:] if exclude_self else part)
    return out


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of `fake` against `real` (Naeem et al., 2020)."""
    real_radius = knn_dists(real, real, k, exclude_self=True)[:, -1]
    fake_radius = knn_dists(fake, fake, k, exclude_self=True)[:, -1]
    inside_real = np.zeros(len(fake), dtype=bool)  # fake row inside some real k-NN ball
    density_hits = np.zeros(len(fake))
    real_covered = np.zeros(len(real), dtype=bool)  # real row whose ball holds some fake row
    real_in_fake = np.zeros(len(real), dtype=bool)  # real row inside some fake k-NN ball
    for start in range(0, len(fake), CHUNK):
        d = np.sqrt(_sq_dists(fake[start:start + CHUNK], real))  # (chunk, real)
        within = d <= real_radius[None, :]
        inside_real[start:start + CHUNK] = within.any(axis=1)
        density_hits[start:start + CHUNK] = within.sum(axis=1)
        real_covered |= within.any(axis=0)
        real_in_fake |= (d <= fake_radius[start:start + CHUNK, None]).any(axis=0)
    return {
        "precision": float(inside_real.mean()),
        "recall": float(real_in_fake.mean()),
        "density": float(density_hits.sum() / (k * len(fake))),
        "coverage": float(real_covered.mean()),
    }


def closer_to_train_share(dcr: np.ndarray, dcr_holdout: np.ndarray) -> float:
    """Share of rows nearer to train than to holdout; ties count half (about 0.5 when nothing was learnt by heart)."""
    if len(dcr) == 0:
        return 0.5
    return float(((dcr < dcr_holdout).sum() + 0.5 * (dcr == dcr_holdout).sum()) / len(dcr))
