"""Collapse chains of images: the pool each generation learns from, by policy, and a picture of a batch.

The policies are the table ones (docs/architecture.md): replace (only the previous batch: the collapse case),
accumulate (real_train and every earlier approved batch), anchor (the previous batch with a fraction `lam` of
fresh real_train images in the pool).
"""

from __future__ import annotations

import io

import numpy as np

from ouroboros.images.data import ImageSet


def build_pool(policy: str, generation: int, real: ImageSet, batches: list[ImageSet], lam: float = 0.2,
               seed: int = 0) -> ImageSet:
    if generation == 0:
        return real
    if policy == "replace":
        return batches[generation - 1]
    if policy == "accumulate":
        return ImageSet.concat([real, *batches[:generation]])
    if policy == "anchor":
        previous = batches[generation - 1]
        rng = np.random.default_rng([seed, generation])
        n_real = int(round(lam / (1 - lam) * len(previous))) if lam < 1 else len(real)
        return ImageSet.concat([real.take(rng.choice(len(real), min(n_real, len(real)), replace=False)), previous])
    raise ValueError(f"unknown policy {policy!r}")


def grid_png(data: ImageSet, per_class: int = 8, scale: int = 4) -> bytes:
    """A PNG with one row per class and up to `per_class` images of it (the first ones of the batch)."""
    from PIL import Image

    classes = np.unique(data.labels)
    h, w = data.shape
    canvas = np.ones(((h + 1) * len(classes) + 1, (w + 1) * per_class + 1), np.float32)
    for r, c in enumerate(classes):
        for j, i in enumerate(np.flatnonzero(data.labels == c)[:per_class]):
            canvas[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + j * (w + 1):1 + j * (w + 1) + w] = 1 - data.images[i]
    img = Image.fromarray((canvas * 255).astype(np.uint8)).resize((canvas.shape[1] * scale, canvas.shape[0] * scale),
                                                                  Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
