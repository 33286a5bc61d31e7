"""Conditional tabular GAN: WGAN-GP with PacGAN and training-by-sampling (after Xu et al., CTGAN, 2019).

The generator sees noise plus a condition: one level of one categorical column, chosen with the log of
its frequency so rare levels are trained on too. Real rows with that level are drawn for the critic
(training-by-sampling) and the generator pays a cross-entropy when its output ignores the condition.
The critic judges `pac` rows at once, which penalises mode collapse. Everything per batch is array
operations: conditions, matching real rows and the per-column activations and losses.
"""

from __future__ import annotations

import torch
from torch import nn

from ouroboros.generators.base import GeneratorError
from ouroboros.generators.torch_base import TorchGenerator


class _Residual(nn.Module):
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.fc, self.bn = nn.Linear(i, o), nn.BatchNorm1d(o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(self.bn(self.fc(x))), x], dim=1)


class _Generator(nn.Module):
    def __init__(self, inp: int, dims: tuple[int, ...], out: int) -> None:
        super().__init__()
        layers, d = [], inp
        for h in dims:
            layers.append(_Residual(d, h))
            d += h
        layers.append(nn.Linear(d, out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Critic(nn.Module):
    def __init__(self, inp: int, dims: tuple[int, ...], pac: int) -> None:
        super().__init__()
        self.pac = pac
        layers, d = [], inp * pac
        for h in dims:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
            d = h
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(-1, x.shape[1] * self.pac))


class TabularGAN(TorchGenerator):
    """Conditional WGAN-GP for mixed tables."""

    family = "gan"
    PARAMS = {
        **TorchGenerator.COMMON_PARAMS,
        "embedding_dim": (int, 128),
        "generator_dims": (str, "256,256"),
        "critic_dims": (str, "256,256"),
        "generator_lr": (float, 2e-4),
        "critic_lr": (float, 2e-4),
        "weight_decay": (float, 1e-6),
        "pac": (int, 10),
        "critic_steps": (int, 1),
        "gradient_penalty": (float, 10.0),
        "tau": (float, 0.2),  # Gumbel-softmax temperature while training
    }
    MODULES = ("generator", "critic")
    DP_MODULES = (("critic", "_opt_d"),)  # dp hook: only the critic sees real rows (ouroboros.privacy.gan)
    TRANSIENT = ("_opt_g", "_opt_d", "_real", "_rows_by_level", "_level_start", "_level_count", "_train_freq")

    def _validate_model_params(self) -> None:
        self._positive("embedding_dim", "generator_lr", "critic_lr", "pac", "critic_steps", "tau")
        if self.params["weight_decay"] < 0 or self.params["gradient_penalty"] < 0:
            raise GeneratorError("gan: parameters weight_decay and gradient_penalty must be >= 0")
        if self.params["batch_size"] % self.params["pac"] and self.params["dp"] is None:
            raise GeneratorError(
                f"gan: parameter batch_size ({self.params['batch_size']}) must be a multiple of pac ({self.params['pac']})"
            )
        self._dims("generator_dims")
        self._dims("critic_dims")

    # -- layout -----------------------------------------------------------------------------------

    def _cond_layout(self, device: torch.device) -> None:
        """Which groups are conditioned on (categorical columns) and where their levels sit in the condition."""
        groups = self._encoder.groups
        # dp hook: a private GAN is unconditional (the condition would be drawn from real level frequencies)
        conditional = self.params["dp"] is None
        self._cond_groups = torch.tensor([j for j, g in enumerate(groups) if g.role == "levels" and conditional],
                                         dtype=torch.long, device=device)
        sizes = torch.tensor([groups[j].size for j in self._cond_groups.tolist()], dtype=torch.long, device=device)
        self._cond_offsets = torch.cumsum(sizes, 0) - sizes
        self._cond_width = int(sizes.sum())

    def _build(self, device: torch.device) -> None:
        self._cond_layout(device)
        p = self.params
        data_dim = self._n_num + self._groups.total
        self.generator = _Generator(p["embedding_dim"] + self._cond_width, self._dims("generator_dims"), data_dim)
        self.critic = _Critic(data_dim + self._cond_width, self._dims("critic_dims"), self._pac)
        self.generator.to(device)
        self.critic.to(device)

    def _setup(self, device: torch.device, build: bool = True) -> None:
        super()._setup(device, build)
        if not build:
            self._cond_layout(device)
            self._freq = self._freq.to(device)

    @property
    def _pac(self) -> int:
        return 1 if self.params["dp"] is not None else self.params["pac"]  # dp hook: one row per critic input

    # -- conditions -------------------------------------------------------------------------------

    def _prepare(self, num: torch.Tensor, codes: torch.Tensor) -> None:
        n, device = len(num), num.device
        if n < self._pac:
            raise GeneratorError(f"gan: the table has {n} rows, fewer than pac={self.params['pac']}; lower pac")
        gc = len(self._cond_groups)
        width = max((self._groups.sizes[j] for j in self._cond_groups.tolist()), default=1)
        counts = torch.zeros(gc, width, device=device)
        cc = codes[:, self._cond_groups]  # [n, gc]
        if gc:
            counts.scatter_add_(1, cc.T.contiguous(), torch.ones(gc, n, device=device))
        self._freq = counts / n  # sampling: levels by their real frequency
        logf = torch.log(counts + 1.0) * (counts > 0)
        self._train_freq = logf / logf.sum(1, keepdim=True).clamp_min(1e-12)  # training: by log-frequency
        # rows of each group sorted by level, and where each level's run starts: a level's rows are one slice
        self._rows_by_level = torch.argsort(cc.T, dim=1, stable=True) if gc else None
        icounts = counts.long()
        self._level_start = torch.cumsum(icounts, 1) - icounts
        self._level_count = icounts
        p = self.params
        self._opt_g = torch.optim.Adam(self.generator.parameters(), lr=p["generator_lr"], betas=(0.5, 0.9), foreach=True,
                                       weight_decay=p["weight_decay"])
        self._opt_d = torch.optim.Adam(self.critic.parameters(), lr=p["critic_lr"], betas=(0.5, 0.9), foreach=True,
                                       weight_decay=p["weight_decay"])
        self._real = torch.cat([num, self._groups.one_hot(codes)], dim=1)

    def _draw_condition(self, b: int, freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(group index among conditioned groups, level, condition one-hot) for `b` rows."""
        device = self._device
        gc = len(self._cond_groups)
        g = torch.randint(gc, (b,), device=device)
        level = torch.multinomial(freq[g], 1).squeeze(1)
        cond = torch.zeros(b, self._cond_width, device=device)
        cond[torch.arange(b, device=device), self._cond_offsets[g] + level] = 1.0
        return g, level, cond

    def _activate(self, out: torch.Tensor) -> torch.Tensor:
        s = self._n_num
        return torch.cat([torch.tanh(out[:, :s]), self._groups.gumbel_softmax(out[:, s:], self.params["tau"])], dim=1)

    def _noise(self, b: int) -> torch.Tensor:
        return torch.randn(b, self.params["embedding_dim"], device=self._device)

    # -- training ---------------------------------------------------------------------------------

    def _train_epoch(self, num: torch.Tensor, codes: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        p, device = self.params, self._device
        n = len(num)
        b = max(p["pac"], batch - batch % p["pac"])
        steps = max(1, n // b)
        gc = len(self._cond_groups)
        total_d = torch.zeros((), device=device)
        total_g = torch.zeros((), device=device)
        for _ in range(steps):
            for k in range(p["critic_steps"]):
                if gc:
                    g, level, cond = self._draw_condition(b, self._train_freq)
                    pick = torch.rand(b, device=device)
                    offset = self._level_start[g, level] + (pick * self._level_count[g, level]).long()
                    rows = self._rows_by_level[g, offset.clamp_max(n - 1)]
                else:
                    cond = torch.zeros(b, 0, device=device)
                    rows = torch.randint(n, (b,), device=device)
                real = torch.cat([self._real[rows], cond], dim=1)
                # the last critic step's fake batch is kept, with its graph, for the generator step: the
                # generator has not changed since, so this saves one generator forward pass per step
                last = k == p["critic_steps"] - 1
                with torch.set_grad_enabled(last):
                    out = self.generator(torch.cat([self._noise(b), cond], dim=1))
                    fake = torch.cat([self._activate(out), cond], dim=1)
                fake_d = fake.detach()
                loss_d = self.critic(fake_d).mean() - self.critic(real).mean()
                loss_d = loss_d + self._gradient_penalty(real, fake_d)
                self._opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                self._opt_d.step()
            loss_g = -self.critic(fake).mean()
            if gc:
                # the generator must produce the level it was conditioned on: one gather over all groups
                logp = self._groups.log_softmax(out[:, self._n_num :])
                wanted = self._groups.offsets[self._cond_groups[g]] + level
                chosen = logp.gather(1, wanted[:, None]).squeeze(1)
                loss_g = loss_g - chosen.mean()
            self._opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self._opt_g.step()
            total_d += loss_d.detach()
            total_g += loss_g.detach()
        return {"loss_critic": total_d / steps, "loss_generator": total_g / steps}

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        pac, d = self.params["pac"], real.shape[1]
        alpha = torch.rand(real.shape[0] // pac, 1, 1, device=self._device).expand(-1, pac, d).reshape(-1, d)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.critic(mixed).sum(), mixed, create_graph=True)
        norm = grad.reshape(-1, pac * d).norm(2, dim=1)
        return self.params["gradient_penalty"] * ((norm - 1) ** 2).mean()

    # -- sampling ---------------------------------------------------------------------------------

    def _generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self._cond_groups):
            _, _, cond = self._draw_condition(n, self._freq)
        else:
            cond = torch.zeros(n, 0, device=self._device)
        out = self.generator(torch.cat([self._noise(n), cond], dim=1))
        s = self._n_num
        return torch.tanh(out[:, :s]), self._groups.sample(out[:, s:])

    def _extra_state(self) -> dict[str, torch.Tensor]:
        return {"freq": self._freq}

    def _load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self._freq = state["freq"]
