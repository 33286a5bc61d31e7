"""The stable train / holdout split of images: the table rule (ouroboros.split) applied to image bytes.

An image's side is a BLAKE2b hash of its stored uint8 bytes, its shape, its label and its copy number among
identical images, salted with the seed: the same image keeps its side as the set grows, and the holdout is
never given to a generator.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ouroboros.images.data import ImageSet, quantise
from ouroboros.split import HASH_V1, SplitError

IMAGE_HASH = f"{HASH_V1}/image-bytes"  # image bytes need no canonical encoding: the rule stays


def image_unit(data: ImageSet, seed: int) -> np.ndarray:
    """Each image's stable hash as a number in [0, 1)."""
    q = quantise(data.images)
    salt = f"{IMAGE_HASH}:{seed}".encode()
    seen: dict[bytes, int] = {}
    out = np.empty(len(data), np.float64)
    for i in range(len(data)):
        content = q[i].tobytes() + f"|{q.shape[1]}x{q.shape[2]}|{int(data.labels[i])}".encode()
        copy = seen.get(content, 0)  # the i-th copy of a repeated image is its own image, as for rows
        seen[content] = copy + 1
        digest = hashlib.blake2b(content + f"#{copy}".encode(), digest_size=8, key=salt).digest()
        out[i] = (int.from_bytes(digest, "big") >> 11) / float(1 << 53)
    return out


def split_images(data: ImageSet, holdout_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """(train, holdout) under the stable hash rule; order kept on each side."""
    if not 0.0 < holdout_fraction < 1.0:
        raise SplitError(f"data.holdout_fraction must be between 0 and 1 (exclusive), got {holdout_fraction}")
    hold = image_unit(data, seed) < holdout_fraction
    if hold.all() or not hold.any():
        raise SplitError(f"the split of {len(data)} images left one side empty: add images or change "
                         "data.holdout_fraction")
    return data.take(np.flatnonzero(~hold)), data.take(np.flatnonzero(hold))
