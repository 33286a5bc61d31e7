"""A class-conditional DCGAN (Radford et al. 2016) for 8x8 images, with a projection discriminator
(Miyato & Koyama 2018) and the non-saturating loss."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ouroboros.images.generators.base import ImageGenerator


class _G(nn.Module):
    def __init__(self, shape, classes: int, latent: int, width: int) -> None:
        super().__init__()
        self.shape, self.width = shape, width
        self.small = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
        self.label = nn.Embedding(classes, latent)
        self.fc = nn.Sequential(nn.Linear(2 * latent, 2 * width * self.small[0] * self.small[1]),
                                nn.BatchNorm1d(2 * width * self.small[0] * self.small[1]), nn.ReLU())
        self.conv = nn.Sequential(nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
                                  nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, z, y):
        h = self.fc(torch.cat([z, self.label(y)], 1)).view(-1, 2 * self.width, *self.small)
        return torch.sigmoid(self.conv(h)[:, 0, :self.shape[0], :self.shape[1]])


class _D(nn.Module):
    def __init__(self, shape, classes: int, width: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                                  nn.Flatten())
        feats = 2 * width * ((shape[0] + 1) // 2) * ((shape[1] + 1) // 2)
        self.out = nn.Linear(feats, 1)
        self.project = nn.Embedding(classes, feats)

    def forward(self, x, y):
        h = self.conv(x[:, None])
        return self.out(h)[:, 0] + (self.project(y) * h).sum(1)


class ImageGAN(ImageGenerator):
    family = "gan"
    defaults = {"epochs": 200, "batch_size": 64, "latent": 32, "width": 32, "learning_rate": 2e-4}

    def _build(self):
        p = self.params
        return {"generator": _G(self.shape, self.n_classes, p["latent"], p["width"]),
                "discriminator": _D(self.shape, self.n_classes, p["width"])}

    def _setup(self):
        lr = self.params["learning_rate"]
        return {name: torch.optim.Adam(self.modules[name].parameters(), lr=lr, betas=(0.5, 0.999))
                for name in ("generator", "discriminator")}

    def _fit_epoch(self, x, y, gen):
        g, d = self.modules["generator"], self.modules["discriminator"]
        og, od = self._optimizers["generator"], self._optimizers["discriminator"]
        totals = {"d_loss": 0.0, "g_loss": 0.0}
        batches = self.batches(len(x), gen)
        for idx in batches:
            real, yb = x[idx], y[idx]
            fake = g(self._randn((len(idx), self.params["latent"]), gen), yb)
            d_loss = F.softplus(-d(real, yb)).mean() + F.softplus(d(fake.detach(), yb)).mean()
            od.zero_grad()
            d_loss.backward()
            od.step()
            g_loss = F.softplus(-d(fake, yb)).mean()
            og.zero_grad()
            g_loss.backward()
            og.step()
            totals["d_loss"] += float(d_loss)
            totals["g_loss"] += float(g_loss)
        return {k: v / len(batches) for k, v in totals.items()}

    def _generate(self, y, gen):
        return self.modules["generator"](self._randn((len(y), self.params["latent"]), gen), y)
