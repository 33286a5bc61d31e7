"""Image generator families by name; `create` makes one unfitted, `load` reads a saved one."""

from __future__ import annotations

import json
from pathlib import Path

from ouroboros.images.generators.base import ImageGenerator
from ouroboros.images.generators.ddpm import ImageDDPM
from ouroboros.images.generators.gan import ImageGAN
from ouroboros.images.generators.vae import ImageVAE

FAMILIES: dict[str, type[ImageGenerator]] = {"vae": ImageVAE, "ddpm": ImageDDPM, "gan": ImageGAN}


def create(family: str, seed: int = 0, device: str = "cpu", **params) -> ImageGenerator:
    if family not in FAMILIES:
        raise ValueError(f"unknown image generator family {family!r}; choose one of {sorted(FAMILIES)}")
    return FAMILIES[family](seed=seed, device=device, **params)


def load(folder: str | Path, device: str = "cpu") -> ImageGenerator:
    folder = Path(folder)
    meta = json.loads((folder / "generator.json").read_text())
    return FAMILIES[meta["family"]]._restore(meta, folder, device)


__all__ = ["FAMILIES", "ImageGenerator", "create", "load"]
