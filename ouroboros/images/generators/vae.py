"""A class-conditional convolutional VAE for small grey images (Kingma & Welling 2014).

The decoder outputs a mean image; samples are decoded means of z ~ N(0, I) plus the learnt per-pixel
Gaussian noise (`noise: true`), because the decoded mean alone is smoother than any real image and the
gate's intensity-variance and diversity tests see that.
"""

from __future__ import annotations

import torch
from torch import nn

from ouroboros.images.generators.base import ImageGenerator


class _Encoder(nn.Module):
    def __init__(self, shape, classes: int, latent: int, width: int) -> None:
        super().__init__()
        h, w = shape
        self.label = nn.Embedding(classes, h * w)
        self.conv = nn.Sequential(nn.Conv2d(2, width, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU())
        self.out = nn.Linear(2 * width * ((h + 1) // 2) * ((w + 1) // 2), 2 * latent)

    def forward(self, x, y):
        lab = self.label(y).view_as(x)
        return self.out(self.conv(torch.stack([x, lab], 1)).flatten(1)).chunk(2, dim=1)


class _Decoder(nn.Module):
    def __init__(self, shape, classes: int, latent: int, width: int) -> None:
        super().__init__()
        self.shape, self.width = shape, width
        h, w = shape
        self.small = ((h + 1) // 2, (w + 1) // 2)
        self.label = nn.Embedding(classes, latent)
        self.fc = nn.Sequential(nn.Linear(2 * latent, 2 * width * self.small[0] * self.small[1]), nn.SiLU())
        self.conv = nn.Sequential(nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.SiLU(),
                                  nn.Conv2d(width, 1, 3, padding=1))
        self.log_sigma = nn.Parameter(torch.full((h, w), -2.0))

    def forward(self, z, y):
        t = self.fc(torch.cat([z, self.label(y)], 1)).view(-1, 2 * self.width, *self.small)
        return torch.sigmoid(self.conv(t)[:, 0, :self.shape[0], :self.shape[1]])


class ImageVAE(ImageGenerator):
    family = "vae"
    defaults = {"epochs": 150, "batch_size": 64, "latent": 16, "width": 32, "learning_rate": 2e-3, "noise": True,
                "beta": 1.0}

    def _build(self):
        p = self.params
        return {"encoder": _Encoder(self.shape, self.n_classes, p["latent"], p["width"]),
                "decoder": _Decoder(self.shape, self.n_classes, p["latent"], p["width"])}

    def _setup(self):
        params = [q for m in self.modules.values() for q in m.parameters()]
        return {"adam": torch.optim.Adam(params, lr=self.params["learning_rate"])}

    def _fit_epoch(self, x, y, gen):
        opt = self._optimizers["adam"]
        enc, dec = self.modules["encoder"], self.modules["decoder"]
        total, n = 0.0, 0
        for idx in self.batches(len(x), gen):
            xb, yb = x[idx], y[idx]
            mu, logvar = enc(xb, yb)
            z = mu + torch.exp(0.5 * logvar) * self._randn(mu.shape, gen)
            mean = dec(z, yb)
            sigma = torch.exp(dec.log_sigma)
            # Gaussian likelihood with a learnt per-pixel scale: the scale is what `noise` samples with
            nll = (0.5 * ((xb - mean) / sigma) ** 2 + dec.log_sigma).flatten(1).sum(1)
            kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
            loss = (nll + self.params["beta"] * kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + float(loss) * len(idx), n + len(idx)
        return {"loss": total / n}

    def _generate(self, y, gen):
        dec = self.modules["decoder"]
        z = self._randn((len(y), self.params["latent"]), gen)
        mean = dec(z, y)
        if self.params["noise"]:
            mean = mean + torch.exp(dec.log_sigma) * self._randn(mean.shape, gen)
        return mean
