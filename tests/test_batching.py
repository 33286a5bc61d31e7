"""Every training row is used in every epoch (issue 19 item 11d: the batcher used to drop the last partial batch)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from ouroboros.generators.diffusion import TabularDiffusion
from ouroboros.generators.gan import TabularGAN
from ouroboros.generators.torch_base import batches, steps_per_epoch
from ouroboros.generators.vae import TabularVAE


@pytest.mark.parametrize(("n", "batch"), [(1000, 300), (1001, 500), (10, 3), (7, 7), (5, 100)])
def test_batches_cover_every_row_exactly_once(n, batch):
    torch.manual_seed(0)
    parts = list(batches(n, batch, torch.device("cpu")))
    assert len(parts) == steps_per_epoch(n, batch)
    seen = torch.cat(parts)
    assert sorted(seen.tolist()) == list(range(n))
    assert max(len(p) for p in parts) <= batch
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1  # no tiny remainder step


def _numeric_table(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({"a": rng.normal(size=n), "b": rng.gamma(2.0, size=n)})  # no categorical: no GAN condition


class _Recorder:
    """Stands in for a training tensor and records which rows each epoch reads."""

    def __init__(self, t: torch.Tensor, log: list) -> None:
        self.t, self.log = t, log

    def __getitem__(self, idx):
        self.log.append(idx.detach().clone())
        return self.t[idx]

    def __len__(self) -> int:
        return len(self.t)


@pytest.mark.parametrize("cls", [TabularVAE, TabularDiffusion])
def test_vae_and_diffusion_epochs_see_every_row(cls, monkeypatch):
    n = 230  # not a multiple of the batch: the old batcher left 30 rows (vae) out of every epoch
    seen: list = []
    original = cls._train_epoch

    def spy(self, num, codes, batch):
        seen.append([])
        return original(self, _Recorder(num, seen[-1]), codes, batch)

    monkeypatch.setattr(cls, "_train_epoch", spy)
    params = {"epochs": 2, "batch_size": 100}
    params.update({"encoder_dims": "8", "decoder_dims": "8", "latent_dim": 4} if cls is TabularVAE
                  else {"dims": "8", "steps": 2, "min_steps_per_epoch": 3})
    cls(seed=0, **params).fit(_numeric_table(n))
    assert len(seen) == 2
    for epoch in seen:
        assert sorted(torch.cat(epoch).tolist()) == list(range(n))


def test_unconditional_gan_epoch_sees_every_row(monkeypatch):
    n = 230
    seen: list = []
    original = TabularGAN._train_epoch

    def spy(self, num, codes, batch):
        seen.append([])
        real = self._real
        self._real = _Recorder(real, seen[-1])
        try:
            return original(self, num, codes, batch)
        finally:
            self._real = real

    monkeypatch.setattr(TabularGAN, "_train_epoch", spy)
    TabularGAN(seed=0, epochs=2, batch_size=100, generator_dims="8", critic_dims="8", embedding_dim=4,
               calibrate=False).fit(_numeric_table(n))
    assert len(seen) == 2
    for epoch in seen:
        assert set(torch.cat(epoch).tolist()) == set(range(n))
