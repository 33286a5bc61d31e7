"""Image datasets: where real images come from, and how they are stored as frames in the lake."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ouroboros.errors import ImageDataError  # noqa: F401 - re-exported: defined in the leaf errors module

BUILTIN = {"sklearn:digits"}


@dataclass(frozen=True)
class ImageSet:
    """Grey images in [0, 1] (n, h, w) float32 with their class labels (n,) int64."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or len(self.images) != len(self.labels):
            raise ImageDataError(f"images must be (n, h, w) with one label each, got {self.images.shape} and "
                                 f"{self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    def take(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index])

    def flat(self) -> np.ndarray:
        return self.images.reshape(len(self), -1)

    @staticmethod
    def concat(parts: list[ImageSet]) -> ImageSet:
        parts = [p for p in parts if len(p)]
        return ImageSet(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))


def quantise(images: np.ndarray) -> np.ndarray:
    """The uint8 bytes an image is stored (and hashed) as: 256 grey levels."""
    return np.clip(np.rint(np.asarray(images, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def to_frame(data: ImageSet) -> pl.DataFrame:
    """The lake's form: one row per image, its label and its row-major uint8 bytes, plus the shape."""
    h, w = data.shape
    q = quantise(data.images)
    return pl.DataFrame({"label": data.labels.astype(np.int64),
                         "image": [q[i].tobytes() for i in range(len(data))],
                         "height": np.full(len(data), h, np.int32), "width": np.full(len(data), w, np.int32)},
                        schema={"label": pl.Int64, "image": pl.Binary, "height": pl.Int32, "width": pl.Int32})


def from_frame(df: pl.DataFrame) -> ImageSet:
    if df.height == 0:
        return ImageSet(np.zeros((0, 1, 1), np.float32), np.zeros(0, np.int64))
    h, w = int(df["height"][0]), int(df["width"][0])
    raw = np.frombuffer(b"".join(df["image"].to_list()), dtype=np.uint8).reshape(df.height, h, w)
    return ImageSet((raw.astype(np.float32) / 255.0), df["label"].to_numpy().astype(np.int64))


def load_source(source: str) -> ImageSet:
    """Read real images: `sklearn:digits` (1,797 8x8 digits shipped with scikit-learn), an .npz with arrays
    `images` (n, h, w; uint8 0-255 or floats in [0, 1]) and `labels`, or a folder of PNGs in one sub-folder
    per class (`<folder>/<label>/*.png`, all of one size, read as grey)."""
    if source == "sklearn:digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return ImageSet((digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64))
    path = Path(source)
    if path.suffix == ".npz":
        if not path.exists():
            raise ImageDataError(f"{path}: image file not found")
        with np.load(path) as z:
            if "images" not in z or "labels" not in z:
                raise ImageDataError(f"{path}: an image .npz needs arrays 'images' and 'labels', has {list(z)}")
            images, labels = z["images"], z["labels"]
        images = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
        if images.min() < 0 or images.max() > 1:
            raise ImageDataError(f"{path}: float images must lie in [0, 1] (got {images.min()}..{images.max()})")
        return ImageSet(images, labels.astype(np.int64))
    if path.is_dir():
        return _read_png_folder(path)
    raise ImageDataError(f"{source}: not an image source (use sklearn:digits, an .npz, or a folder of PNGs)")


def _read_png_folder(folder: Path) -> ImageSet:
    from PIL import Image

    images, labels = [], []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        try:
            label = int(class_dir.name)
        except ValueError as exc:
            raise ImageDataError(f"{class_dir}: class folders must be named by an integer label") from exc
        for png in sorted(class_dir.glob("*.png")):
            images.append(np.asarray(Image.open(png).convert("L"), dtype=np.float32) / 255.0)
            labels.append(label)
    if not images:
        raise ImageDataError(f"{folder}: no PNGs found in <folder>/<label>/*.png")
    if len({im.shape for im in images}) != 1:
        raise ImageDataError(f"{folder}: the PNGs are of several sizes {sorted({im.shape for im in images})}; "
                             "resize them to one size first")
    return ImageSet(np.stack(images), np.asarray(labels, np.int64))
