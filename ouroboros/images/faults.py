"""Known faults applied to real images: what the gate's power is measured on (tests, benchmark)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from ouroboros.images.data import ImageSet


def drop_class(batch: ImageSet, pool: ImageSet, label: int, rng: np.random.Generator) -> ImageSet:
    """The images of one class replaced by other-class images of the pool: the batch keeps its size."""
    others = pool.take(np.flatnonzero(pool.labels != label))
    keep = np.flatnonzero(batch.labels != label)
    extra = rng.integers(0, len(others), len(batch) - len(keep))
    return ImageSet.concat([batch.take(keep), others.take(extra)])


def blur(batch: ImageSet, sigma: float = 0.8) -> ImageSet:
    return ImageSet(gaussian_filter(batch.images, sigma=(0, sigma, sigma)).astype(np.float32), batch.labels)


def repeat_one(batch: ImageSet, share: float, rng: np.random.Generator) -> ImageSet:
    """`share` of the batch replaced by copies of one of its images (with that image's label)."""
    n = int(round(share * len(batch)))
    idx = np.arange(len(batch))
    idx[rng.choice(len(batch), n, replace=False)] = rng.integers(0, len(batch))
    return batch.take(idx)


def copy_train(batch: ImageSet, train: ImageSet, share: float, rng: np.random.Generator) -> ImageSet:
    """`share` of the batch replaced by real_train images: a generator that memorised."""
    n = int(round(share * len(batch)))
    where = rng.choice(len(batch), n, replace=False)
    images, labels = batch.images.copy(), batch.labels.copy()
    pick = rng.choice(len(train), n, replace=False)
    images[where], labels[where] = train.images[pick], train.labels[pick]
    return ImageSet(images, labels)


def swap_classes(batch: ImageSet, a: int, b: int) -> ImageSet:
    """The labels of two classes exchanged: right images, wrong conditioning."""
    labels = batch.labels.copy()
    labels[batch.labels == a], labels[batch.labels == b] = b, a
    return ImageSet(batch.images, labels)


FAULTS = ("drop_class", "blur", "repeat_20pct", "copy_train_10pct", "swap_classes")


def apply(fault: str, batch: ImageSet, pool: ImageSet, train: ImageSet, rng: np.random.Generator) -> ImageSet:
    if fault == "drop_class":
        return drop_class(batch, pool, int(rng.choice(np.unique(batch.labels))), rng)
    if fault == "blur":
        return blur(batch)
    if fault == "repeat_20pct":
        return repeat_one(batch, 0.2, rng)
    if fault == "copy_train_10pct":
        return copy_train(batch, train, 0.1, rng)
    if fault == "swap_classes":
        a, b = rng.choice(np.unique(batch.labels), 2, replace=False)
        return swap_classes(batch, int(a), int(b))
    raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
