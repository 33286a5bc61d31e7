"""Tabular diffusion: Gaussian diffusion on the numeric part, masked (absorbing-state) diffusion on categoricals.

Continuous columns are encoded as normal scores of their ranks (the encoder's "quantile" mode), so the
Gaussian part starts from standard-normal marginals, as in TabDDPM. Each categorical group is masked
with probability t; the denoiser, an MLP with a sinusoidal time embedding, predicts the numeric noise
and the original level of every group in one pass. Numeric and categorical parts share the time t, so
one network learns the joint. Sampling runs `steps` ancestral steps from pure noise and all-masked
groups: a masked group is revealed between t and s with probability (t - s) / t, drawn from the
predicted distribution.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ouroboros.generators.base import GeneratorError
from ouroboros.generators.torch_base import TorchGenerator, steps_per_epoch

_S = 0.008  # cosine-schedule offset (Nichol & Dhariwal, 2021)


def _alpha_bar(t: torch.Tensor) -> torch.Tensor:
    f = torch.cos((t + _S) / (1 + _S) * math.pi / 2) ** 2 / math.cos(_S / (1 + _S) * math.pi / 2) ** 2
    return f.clamp(1e-5, 1.0 - 1e-5)


class _Denoiser(nn.Module):
    def __init__(self, n_num: int, levels: int, out: int, dims: tuple[int, ...], time_dim: int) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.time = nn.Sequential(nn.Linear(time_dim, dims[0]), nn.SiLU(), nn.Linear(dims[0], dims[0]))
        self.inp = nn.Linear(n_num, dims[0])
        # a linear layer on the one-hot of every group, done as a lookup: rows x groups instead of rows x levels
        self.levels = nn.EmbeddingBag(levels, dims[0], mode="sum")
        layers: list[nn.Module] = []
        for a, b in zip(dims, dims[1:]):
            layers += [nn.SiLU(), nn.Linear(a, b)]
        self.body = nn.Sequential(*layers, nn.SiLU(), nn.Linear(dims[-1], out))

    def forward(self, x: torch.Tensor, level_ids: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        half = self.time_dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=x.device) / half)
        angles = 1000.0 * t[:, None] * freqs[None]
        emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
        h = self.inp(x) + self.time(emb)
        if level_ids.shape[1]:
            h = h + self.levels(level_ids)
        return self.body(h)


class TabularDiffusion(TorchGenerator):
    """Gaussian + masked diffusion for mixed tables."""

    family = "diffusion"
    CONTINUOUS = "quantile"
    PARAMS = {
        **TorchGenerator.COMMON_PARAMS,
        "batch_size": (int, 1024),
        "dims": (str, "256,256,256"),
        "time_dim": (int, 64),
        "lr": (float, 2e-3),
        "weight_decay": (float, 1e-5),
        # at least this many optimizer steps per epoch: a small table is trained in smaller batches, not for
        # fewer steps (with 2,000 rows and batches of 1,024 an epoch would be one step, 300 epochs too few)
        "min_steps_per_epoch": (int, 20),
        # sampling steps: 50 left the demo's skewed vehicle_year at 0.87 of the real variance (refused by the
        # gate), 100 at 0.99; 250 overshot the heavy-tailed sampling_weight (1.48)
        "steps": (int, 100),
    }
    MODULES = ("model",)
    TRANSIENT = ("_opt", "_sched")
    FIXES_GROUPS = True  # a condition's group is revealed from the first sampling step

    def _validate_model_params(self) -> None:
        self._positive("lr", "steps", "time_dim", "min_steps_per_epoch")
        if self.params["time_dim"] % 2:
            raise GeneratorError(f"diffusion: parameter time_dim must be even, got {self.params['time_dim']}")
        self._dims("dims")

    def _build(self, device: torch.device) -> None:
        g = self._groups
        # input: numeric values, then each group one-hot with one extra "masked" level
        self._in_groups = type(g)([s + 1 for s in g.sizes], device)
        self.model = _Denoiser(self._n_num, max(1, self._in_groups.total), self._n_num + g.total,
                               self._dims("dims"), self.params["time_dim"]).to(device)

    def _setup(self, device: torch.device, build: bool = True) -> None:
        super()._setup(device, build)
        if not build:
            self._in_groups = type(self._groups)([s + 1 for s in self._groups.sizes], device)

    def _batch_size(self, n: int) -> int:
        if self.params["dp"] is not None:  # dp hook: the accountant's sampling rate is batch_size / rows as given
            return super()._batch_size(n)
        return max(2, min(self.params["batch_size"], n // self.params["min_steps_per_epoch"]))

    def _prepare(self, num: torch.Tensor, codes: torch.Tensor) -> None:
        p = self.params
        self._opt = self._optimizer(self.model.parameters(), p["lr"], p["weight_decay"], decoupled=True)
        steps = p["epochs"] * steps_per_epoch(len(num), self._batch_size(len(num)))
        self._sched = torch.optim.lr_scheduler.LambdaLR(self._opt, lambda i: max(0.0, 1.0 - i / steps))

    def _denoise(self, x_num: torch.Tensor, state: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model(x_num, state + self._in_groups.offsets, t).float()

    def _train_epoch(self, num: torch.Tensor, codes: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        s, device = self._n_num, self._device
        mask_level = torch.tensor(self._groups.sizes, dtype=torch.long, device=device)
        total_num = torch.zeros((), device=device)
        total_cat = torch.zeros((), device=device)
        steps = 0
        for idx in self._batches(len(num), batch):
            x0, c0 = num[idx], codes[idx]
            b = len(idx)
            t = torch.rand(b, device=device).clamp_min(1e-3)
            ab = _alpha_bar(t)[:, None]
            eps = torch.randn_like(x0)
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
            masked = torch.rand(c0.shape, device=device) < t[:, None]
            ct = torch.where(masked, mask_level, c0)
            out = self._denoise(xt, ct, t)
            loss_num = ((out[:, :s] - eps) ** 2).mean() if s else torch.zeros((), device=device)
            if self._groups.count:
                nll = self._groups.nll(out[:, s:], c0)
                loss_cat = (nll * masked).sum() / masked.sum().clamp_min(1)
            else:
                loss_cat = torch.zeros((), device=device)
            loss = loss_num + loss_cat
            self._train_step(self._opt, loss)
            self._sched.step()
            total_num += loss_num.detach()
            total_cat += loss_cat.detach()
            steps += 1
        return {"loss_numeric": total_num / steps, "loss_categorical": total_cat / steps}

    def _generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, device, g = self._n_num, self._device, self._groups
        mask_level = torch.tensor(g.sizes, dtype=torch.long, device=device)
        x = torch.randn(n, s, device=device)
        state = mask_level.expand(n, g.count).clone()
        for j, level in (getattr(self, "_fixed", None) or {}).items():  # sample(conditions=...): revealed from the
            state[:, j] = level  # start, so every step denoises the rest given it (inpainting)
        grid = torch.linspace(1.0, 0.0, self.params["steps"] + 1, device=device)
        for i in range(self.params["steps"]):
            t, r = grid[i], grid[i + 1]
            out = self._denoise(x, state, t.expand(n))
            ab_t, ab_s = _alpha_bar(t), _alpha_bar(r) if r > 0 else torch.tensor(1.0, device=device)
            if s:
                eps = out[:, :s]
                x0 = ((x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()).clamp(-5.0, 5.0)
                if r > 0:
                    a_ts = ab_t / ab_s
                    mean = (ab_s.sqrt() * (1 - a_ts) * x0 + a_ts.sqrt() * (1 - ab_s) * x) / (1 - ab_t)
                    var = (1 - a_ts) * (1 - ab_s) / (1 - ab_t)
                    x = mean + var.sqrt() * torch.randn_like(x)
                else:
                    x = x0
            if g.count:
                # only the groups revealed at this step are drawn: about 1/steps of them
                reveal = (state == mask_level) & (torch.rand(state.shape, device=device) < (t - r) / t)
                rows, cols = reveal.nonzero(as_tuple=True)
                if len(rows):
                    state[rows, cols] = g.sample_at(out[:, s:], rows, cols)
        return x, state
