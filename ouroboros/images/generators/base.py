"""What every image generator shares: seeding, class-conditional sampling, device, save and load.

A family implements `_build()` (its torch modules), `_fit_epoch()` and `_generate(labels, gen)`; the base
draws labels in the training class shares, seeds every random draw from one torch.Generator on the CPU (so
a seed gives the same bits on CPU; on CUDA the same images up to float rounding), and saves the modules'
state with the parameters as a folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ouroboros.images.data import ImageSet

FORMAT = 1


class ImageGenerator:
    family: str = ""
    defaults: dict[str, Any] = {}

    def __init__(self, seed: int = 0, device: str = "cpu", **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(f"{self.family}: unknown parameter(s) {sorted(unknown)}; known: {sorted(self.defaults)}")
        self.params = {**self.defaults, **params}
        self.seed, self.device = seed, torch.device(device)
        self.shape: tuple[int, int] | None = None
        self.classes: np.ndarray | None = None  # the class labels seen in training
        self.class_share: np.ndarray | None = None
        self.modules: dict[str, torch.nn.Module] = {}
        self.fit_seconds = 0.0

    # -- to implement --
    def _build(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def _setup(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers of one fit (made after the modules are built on the device)."""
        raise NotImplementedError

    def _fit_epoch(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> dict[str, float]:
        raise NotImplementedError

    def _generate(self, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Images in [0, 1], (n, h, w), for class indices y (on the device)."""
        raise NotImplementedError

    # -- shared --
    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def _randn(self, shape, gen: torch.Generator) -> torch.Tensor:
        # drawn on the CPU generator and moved: the same seed gives the same noise on every device
        return torch.randn(shape, generator=gen).to(self.device)

    def fit(self, data: ImageSet, callback: Callable[[int, dict[str, float]], None] | None = None) -> ImageGenerator:
        if len(data) < 2:
            raise ValueError(f"{self.family}: needs at least 2 images to learn from, got {len(data)}")
        torch.manual_seed(self.seed)
        self.shape = data.shape
        self.classes, counts = np.unique(data.labels, return_counts=True)
        self.class_share = counts / counts.sum()
        index = np.searchsorted(self.classes, data.labels)
        x = torch.as_tensor(data.images, dtype=torch.float32, device=self.device)
        y = torch.as_tensor(index, dtype=torch.long, device=self.device)
        self.modules = {k: m.to(self.device) for k, m in self._build().items()}
        self._optimizers = self._setup()
        gen = torch.Generator().manual_seed(self.seed)
        started = time.perf_counter()
        for epoch in range(self.params["epochs"]):
            for m in self.modules.values():
                m.train()
            losses = self._fit_epoch(x, y, gen)
            if callback is not None:
                callback(epoch, losses)
        self.fit_seconds = time.perf_counter() - started
        self._optimizers = {}
        return self

    def batches(self, n: int, gen: torch.Generator):
        """Shuffled minibatch indices of one epoch (on the CPU generator, so fits are reproducible)."""
        order = torch.randperm(n, generator=gen).to(self.device)
        size = self.params["batch_size"]
        return [order[i:i + size] for i in range(0, n, size)]

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, labels: np.ndarray | None = None) -> ImageSet:
        """n images; labels drawn in the training class shares unless given. Same seed, same images."""
        if self.classes is None:
            raise RuntimeError(f"{self.family}: fit or load the generator before sampling")
        gen = torch.Generator().manual_seed(seed)
        if labels is None:
            share = torch.as_tensor(self.class_share, dtype=torch.float64)
            index = torch.multinomial(share, n, replacement=True, generator=gen).numpy()
        else:
            index = np.searchsorted(self.classes, labels)
        for m in self.modules.values():
            m.eval()
        parts = []
        for start in range(0, n, 1024):  # bounded memory on any n
            y = torch.as_tensor(index[start:start + 1024], dtype=torch.long, device=self.device)
            parts.append(self._generate(y, gen).clamp(0, 1).float().cpu().numpy())
        images = np.concatenate(parts) if parts else np.zeros((0, *self.shape), np.float32)
        return ImageSet(images.astype(np.float32), self.classes[index].astype(np.int64))

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({k: {n: t.cpu() for n, t in m.state_dict().items()} for k, m in self.modules.items()},
                   folder / "modules.pt")
        (folder / "generator.json").write_text(json.dumps({
            "format": FORMAT, "family": self.family, "seed": self.seed, "params": self.params,
            "shape": list(self.shape), "classes": self.classes.tolist(), "class_share": self.class_share.tolist(),
            "fit_seconds": self.fit_seconds}, indent=2))
        return folder

    @classmethod
    def _restore(cls, meta: dict, folder: Path, device: str) -> ImageGenerator:
        gen = cls(seed=meta["seed"], device=device, **meta["params"])
        gen.shape, gen.fit_seconds = tuple(meta["shape"]), meta.get("fit_seconds", 0.0)
        gen.classes, gen.class_share = np.asarray(meta["classes"], np.int64), np.asarray(meta["class_share"])
        state = torch.load(folder / "modules.pt", map_location="cpu", weights_only=True)
        gen.modules = {k: m for k, m in gen._build().items()}
        for k, m in gen.modules.items():
            m.load_state_dict(state[k])
            m.to(gen.device)
        return gen
