"""A small class-conditional DDPM (Ho et al. 2020) with a UNet sized for 8x8 images.

Trained to predict the noise under a cosine schedule (Nichol & Dhariwal 2021) of `timesteps` steps;
sampled with DDIM (Song et al. 2021) over `sample_steps` of them, ancestral noise scaled by `eta`
(eta = 1 is DDPM's own sampler), so a batch of a thousand images takes seconds on a CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ouroboros.images.generators.base import ImageGenerator


class _Block(nn.Module):
    """Two 3x3 convolutions with GroupNorm, the time+class embedding added between them, and a skip."""

    def __init__(self, cin: int, cout: int, emb: int) -> None:
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(min(8, cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.e = nn.Linear(emb, cout)
        self.n2, self.c2 = nn.GroupNorm(min(8, cout), cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e):
        h = self.c1(F.silu(self.n1(x))) + self.e(e)[:, :, None, None]
        return self.c2(F.silu(self.n2(h))) + self.skip(x)


class UNet(nn.Module):
    """8x8 -> 4x4 -> 8x8, one block per level and one in the middle: about 0.2M parameters at width 32."""

    def __init__(self, classes: int, width: int) -> None:
        super().__init__()
        emb = 4 * width
        self.width = width
        self.time = nn.Sequential(nn.Linear(width, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label = nn.Embedding(classes, emb)
        self.inp = nn.Conv2d(1, width, 3, padding=1)
        self.down = _Block(width, width, emb)
        self.pool = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.mid = _Block(2 * width, 2 * width, emb)
        self.up = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1)
        self.dec = _Block(2 * width, width, emb)
        self.out = nn.Sequential(nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, 1, 3, padding=1))

    def embed_time(self, t):
        half = self.width // 2
        freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
        angles = t.float()[:, None] * freqs[None]
        return torch.cat([angles.sin(), angles.cos()], 1)

    def forward(self, x, t, y):
        e = self.time(self.embed_time(t)) + self.label(y)
        h0 = self.down(self.inp(x), e)
        h1 = self.mid(self.pool(h0), e)
        up = self.up(h1)[:, :, :h0.shape[2], :h0.shape[3]]
        return self.out(self.dec(torch.cat([up, h0], 1), e))


def cosine_alpha_bar(timesteps: int) -> torch.Tensor:
    s = 0.008
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, 0).float()


class ImageDDPM(ImageGenerator):
    family = "ddpm"
    defaults = {"epochs": 60, "batch_size": 64, "width": 32, "timesteps": 200, "sample_steps": 50, "eta": 1.0,
                "learning_rate": 2e-3}

    def _build(self):
        return {"unet": UNet(self.n_classes, self.params["width"])}

    def _setup(self):
        self._alpha_bar = cosine_alpha_bar(self.params["timesteps"]).to(self.device)
        return {"adam": torch.optim.Adam(self.modules["unet"].parameters(), lr=self.params["learning_rate"])}

    def _fit_epoch(self, x, y, gen):
        unet, opt, T = self.modules["unet"], self._optimizers["adam"], self.params["timesteps"]
        total, n = 0.0, 0
        for idx in self.batches(len(x), gen):
            x0 = (x[idx] * 2 - 1)[:, None]  # [-1, 1]
            t = torch.randint(0, T, (len(idx),), generator=gen).to(self.device)
            noise = self._randn(x0.shape, gen)
            ab = self._alpha_bar[t][:, None, None, None]
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
            loss = F.mse_loss(unet(xt, t, y[idx]), noise)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + float(loss) * len(idx), n + len(idx)
        return {"loss": total / n}

    def _generate(self, y, gen):
        unet, T, eta = self.modules["unet"], self.params["timesteps"], self.params["eta"]
        alpha_bar = cosine_alpha_bar(T).to(self.device)
        steps = torch.linspace(T - 1, 0, self.params["sample_steps"]).round().long().tolist()
        x = self._randn((len(y), 1, *self.shape), gen)
        for i, t in enumerate(steps):
            ab = alpha_bar[t]
            ab_prev = alpha_bar[steps[i + 1]] if i + 1 < len(steps) else torch.tensor(1.0, device=self.device)
            eps = unet(x, torch.full((len(y),), t, device=self.device, dtype=torch.long), y)
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
            sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
            direction = (1 - ab_prev - sigma ** 2).clamp(min=0).sqrt() * eps
            x = ab_prev.sqrt() * x0 + direction
            if i + 1 < len(steps):
                x = x + sigma * self._randn(x.shape, gen)
        return (x[:, 0] + 1) / 2
