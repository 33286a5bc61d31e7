"""The gate's feature space: a small CNN classifier trained on the real training digits.

Its penultimate layer plays the part Inception plays for FID on photographs: distances there follow what
tells digits apart, not raw pixel noise. Trained once per real_train (seeded, deterministic on CPU).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ouroboros.images.data import ImageSet


class FeatureNet(nn.Module):
    def __init__(self, shape: tuple[int, int], classes: int, dim: int = 32) -> None:
        super().__init__()
        h, w = shape
        self.body = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(32 * ((h + 1) // 2) * ((w + 1) // 2), dim), nn.ReLU())
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        return self.head(self.body(x[:, None]))


class FeatureSpace:
    """fit on real_train; `features` (n, dim) and `predict` (class labels) for any images of that shape."""

    def __init__(self, train: ImageSet, epochs: int = 30, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.classes = np.unique(train.labels)
        self.net = FeatureNet(train.shape, len(self.classes))
        x = torch.as_tensor(train.images)
        y = torch.as_tensor(np.searchsorted(self.classes, train.labels))
        opt = torch.optim.Adam(self.net.parameters(), lr=3e-3, weight_decay=1e-4)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=gen).split(64):
                loss = F.cross_entropy(self.net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.net.eval()

    @torch.no_grad()
    def features(self, images: np.ndarray) -> np.ndarray:
        return self.net.body(torch.as_tensor(images, dtype=torch.float32)[:, None]).numpy().astype(np.float64)

    @torch.no_grad()
    def predict(self, images: np.ndarray) -> np.ndarray:
        logits = self.net(torch.as_tensor(images, dtype=torch.float32))
        return self.classes[logits.argmax(1).numpy()]
