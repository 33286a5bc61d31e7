"""Conditional tabular GAN: WGAN-GP with PacGAN and training-by-sampling (after Xu et al., CTGAN, 2019).

The generator sees noise plus a condition: one level of one categorical column, chosen with the log of
its frequency so rare levels are trained on too. Real rows with that level are drawn for the critic
(training-by-sampling) and the generator pays a cross-entropy when its output ignores the condition.
The critic judges `pac` rows at once, which penalises mode collapse. Everything per batch is array
operations: conditions, matching real rows and the per-column activations and losses.

Continuous columns are normal scores of their ranks (the encoder's "quantile" mode, as in TabDDPM)
rather than CTGAN's mode-specific normalisation: the generator emits one unbounded number per column
instead of a mode plus an offset, so the data is narrower (faster steps) and a mismatched mode can no
longer put a value in the wrong place.

What changed from CTGAN, each kept because it measured better (issue 11; crashes = the demo table; "gate" =
benchmarks/gate_gen0.py, detection by the gate's boosted trees, 1 thread; "bench" = bench_generators.py,
100 epochs, 2,000 rows, XGBoost detection):
- Sampling uses an exponential moving average of the generator's weights (decay 0.999, with warm-up),
  BatchNorm statistics re-estimated for the averaged weights. Gate detection 0.802 -> 0.720, quality 0.908
  -> 0.967; but the averaged generator is narrower: variance ratio of `sampling_weight` 0.68 -> 0.26.
- So after fitting, each continuous output is mapped through the generator's own quantiles onto the training
  scores' quantiles (a monotone map per column: ranks and so the learnt dependence are kept). All variance
  and tail failures gone; gate detection 0.691, passed. Under dp it is skipped (it reads the training scores).
- Straight-through Gumbel (`hard`): the critic sees exact one-hots as in real rows, not soft vectors it can
  tell apart; gate detection 0.664/0.630 -> 0.629/0.659 over two seeds (no worse), quality test steadier.
- pac 2 instead of 10: with pac 10 a batch of 300 gives the critic 30 samples a step. Bench detection on
  crashes 0.853 -> 0.683 and TSTR 0.537 -> 0.870, insurance 0.731 -> 0.661, survey 0.909 -> 0.884, loans
  0.876 -> 0.842; gate detection 0.614 -> 0.593.
- Cheaper steps, for speed at the same epochs: 128-wide nets (gate detection 0.691 -> 0.664, fit 78 -> 45 s),
  the gradient penalty on every 4th critic step times 4 (lazy regularisation; 0.671, 39 s), fused Adam
  (insurance fit 8.7 -> 7.1 s at batch 200), batch 300.
Tried and dropped: matching batch mean and std of real and generated rows (gate detection 0.664 -> 0.726),
learning rates 2e-3 (bench crashes detection 0.853 -> 0.919), critic dropout 0.2 (0.861) and 256-wide
generator (0.864), sampling temperature 0.5 (0.839, TSTR 0.537 -> 0.445). Batch 200 scores better still
(crashes 0.808 at pac 10) but is about 2.5x, not 3x, faster than SDV's CTGAN at the same epochs.
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
    CONTINUOUS = "quantile"
    PARAMS = {
        **TorchGenerator.COMMON_PARAMS,
        "epochs": (int, 100),
        "batch_size": (int, 300),
        "embedding_dim": (int, 128),
        "generator_dims": (str, "128,128"),
        "critic_dims": (str, "128,128"),
        # 5x CTGAN's 2e-4: on rank normal scores the GAN stays stable and learns in the few hundred to few
        # thousand steps a CPU fit has (tests/test_generators.py's quality test: KS 0.22 -> 0.09); 2e-3 is worse
        "generator_lr": (float, 1e-3),
        "critic_lr": (float, 1e-3),
        "weight_decay": (float, 1e-6),
        "pac": (int, 2),
        "critic_steps": (int, 1),
        "gradient_penalty": (float, 10.0),
        "penalty_every": (int, 4),  # lazy regularisation (StyleGAN2): the penalty on every k-th critic step, times k
        "hard": (bool, True),  # straight-through Gumbel: the critic sees exact one-hots, as in real rows
        "tau": (float, 0.2),  # Gumbel-softmax temperature while training
        # decay of the exponential moving average of the generator's weights that sampling uses (0: the last weights)
        "ema": (float, 0.999),
        # map each generated continuous score through its own quantiles onto the training scores' quantiles
        "calibrate": (bool, True),
        # no point-mass levels: the quantile map above already gives a spike its exact share (a spike is one rank
        # score, and the map is monotone). Measured on proving.spiky_table, 30 epochs, two seeds, with spike
        # levels: shape of hours (47% at 40) 0.994/0.992 -> 0.983/0.991, variance of the 92%-zero amount
        # 1.13/1.00 -> 0.74/0.70 (docs/generators.md)
        "spikes": (bool, False),
    }
    MODULES = ("generator", "critic")
    FIXES_GROUPS = True  # conditions on categorical columns go through the conditional vector
    DP_MODULES = (("critic", "_opt_d"),)  # dp hook: only the critic sees real rows (ouroboros.privacy.gan)
    TRANSIENT = ("_opt_g", "_opt_d", "_real", "_rows_by_level", "_level_start", "_level_count", "_train_freq",
                 "_ema", "_ema_steps", "_d_steps")

    def _validate_model_params(self) -> None:
        self._positive("embedding_dim", "generator_lr", "critic_lr", "pac", "critic_steps", "tau", "penalty_every")
        if self.params["precision"] == "bf16":  # "auto" runs float32 here: bf16 was never measured for the GAN
            raise GeneratorError("gan: parameter precision 'bf16' is not supported (its gradient penalty "
                                 "differentiates twice and was not measured in bfloat16); use 'auto' or 'fp32'")
        if not 0 <= self.params["ema"] < 1:
            raise GeneratorError(f"gan: parameter ema must be in [0, 1), got {self.params['ema']}")
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
        # fused Adam: a GAN step on a CPU spends a quarter of its time in two optimizer steps of small tensors
        self._opt_g = self._optimizer(self.generator.parameters(), p["generator_lr"], p["weight_decay"], (0.5, 0.9),
                                      fused=True)
        self._opt_d = self._optimizer(self.critic.parameters(), p["critic_lr"], p["weight_decay"], (0.5, 0.9),
                                      fused=True)
        self._real = torch.cat([num, self._groups.one_hot(codes)], dim=1)
        averaged = p["ema"] > 0 and p["dp"] is None  # dp trains in ouroboros.privacy.gan, which keeps no average
        self._ema = [w.detach().clone() for w in self.generator.parameters()] if averaged else None
        self._ema_steps = 0
        self._d_steps = 0

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
        if not self._groups.count:  # an all-numeric table has no groups to draw
            return out
        soft = self._groups.gumbel_softmax(out[:, s:], self.params["tau"])
        if self.params["hard"]:
            hard = self._groups.one_hot(self._groups.padded(soft).argmax(dim=-1))
            soft = hard + soft - soft.detach()
        return torch.cat([out[:, :s], soft], dim=1)

    def _noise(self, b: int) -> torch.Tensor:
        return torch.randn(b, self.params["embedding_dim"], device=self._device)

    # -- training ---------------------------------------------------------------------------------

    def _train_epoch(self, num: torch.Tensor, codes: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        p, device = self.params, self._device
        n = len(num)
        b = max(p["pac"], batch - batch % p["pac"])
        # ceil: an epoch draws at least n real rows. Without a condition the rows are one permutation (every row
        # once; the last batch topped up with random rows so it stays a multiple of pac); with one, rows are
        # drawn by training-by-sampling, as CTGAN does (a rare level's rows are drawn more often than once)
        steps = -(-n // b)
        gc = len(self._cond_groups)
        order = None if gc else torch.cat([torch.randperm(n, device=device),
                                           torch.randint(n, (steps * b - n,), device=device)])
        total_d = torch.zeros((), device=device)
        total_g = torch.zeros((), device=device)
        for step in range(steps):
            for k in range(p["critic_steps"]):
                if gc:
                    g, level, cond = self._draw_condition(b, self._train_freq)
                    pick = torch.rand(b, device=device)
                    offset = self._level_start[g, level] + (pick * self._level_count[g, level]).long()
                    rows = self._rows_by_level[g, offset.clamp_max(n - 1)]
                else:
                    cond = torch.zeros(b, 0, device=device)
                    rows = order[step * b:(step + 1) * b] if k == 0 else torch.randint(n, (b,), device=device)
                real = torch.cat([self._real[rows], cond], dim=1)
                # the last critic step's fake batch is kept, with its graph, for the generator step: the
                # generator has not changed since, so this saves one generator forward pass per step
                last = k == p["critic_steps"] - 1
                with torch.set_grad_enabled(last):
                    out = self.generator(torch.cat([self._noise(b), cond], dim=1))
                    fake = torch.cat([self._activate(out), cond], dim=1)
                fake_d = fake.detach()
                loss_d = self.critic(fake_d).mean() - self.critic(real).mean()
                if self._d_steps % p["penalty_every"] == 0:
                    loss_d = loss_d + p["penalty_every"] * self._gradient_penalty(real, fake_d)
                self._d_steps += 1
                self._train_step(self._opt_d, loss_d)
            loss_g = -self.critic(fake).mean()
            if gc:
                # the generator must produce the level it was conditioned on: one gather over all groups
                logp = self._groups.log_softmax(out[:, self._n_num :])
                wanted = self._groups.offsets[self._cond_groups[g]] + level
                chosen = logp.gather(1, wanted[:, None]).squeeze(1)
                loss_g = loss_g - chosen.mean()
            self._train_step(self._opt_g, loss_g)
            self._update_ema()
            total_d += loss_d.detach()
            total_g += loss_g.detach()
        return {"loss_critic": total_d / steps, "loss_generator": total_g / steps}

    def _update_ema(self) -> None:
        if self._ema is None:
            return
        self._ema_steps += 1
        # a short horizon early on (warm-up as in Tan & Le's EfficientNet EMA): the first weights are noise
        decay = min(self.params["ema"], (1 + self._ema_steps) / (10 + self._ema_steps))
        torch._foreach_lerp_(self._ema, [p.detach() for p in self.generator.parameters()], 1 - decay)

    def _finish(self, num: torch.Tensor, codes: torch.Tensor) -> None:
        self._average_weights()
        self._calibration = self._no_calibration()
        self._group_bias = torch.zeros(self._groups.total, device=self._device)
        if self.params["calibrate"] and self.params["dp"] is None:
            self._calibrate_groups(codes)
            if self._n_num:
                drawn = [self._generate_raw(self.SAMPLE_BATCH) for _ in range(4)]
                fake, fake_codes = torch.cat([d[0] for d in drawn]), torch.cat([d[1] for d in drawn])
                self._calibration = torch.stack([self._scalar_quantiles(fake, fake_codes),
                                                 self._scalar_quantiles(num, codes)])

    def _scalar_quantiles(self, num: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Quantiles of every scalar over the rows where it is decoded: a column with a null or point-mass group
        only over its continuous rows (level 0); the others' scores are fill that decoding never reads, and
        mixing them in mis-mapped a 91%-null budget column (shape 0.68 against 0.93 for fresh real rows)."""
        enc = self._encoder
        group_of = {g.column: j for j, g in enumerate(enc.groups) if g.role in ("nulls", "spikes")}
        out = _quantiles(num)
        for k, col in enumerate(enc.scalar_columns):
            j = group_of.get(col)
            if j is not None:
                rows = num[codes[:, j] == 0, k]
                if len(rows) >= 2:
                    out[k] = _quantiles(rows[:, None])[0]
        return out

    def _calibrate_groups(self, codes: torch.Tensor, rounds: int = 2) -> None:
        """Shift the logits of the groups nobody conditions on (null indicators, point masses) so their
        generated level shares match the training rows': the generator sees no condition for them and drifted
        (an 85%-null column came out 78-93% null). A per-level constant, log(real share / generated share),
        applied twice; conditioned groups are left to their condition."""
        g = self._groups
        free = [j for j in range(g.count) if j not in set(self._cond_groups.tolist())]
        if not free:
            return
        real = g.one_hot(codes).mean(0)
        member_free = torch.zeros(g.total, dtype=torch.bool, device=self._device)
        for j in free:
            member_free |= g.member == j
        for _ in range(rounds):
            fake = torch.cat([g.one_hot(self._generate_raw(self.SAMPLE_BATCH)[1]) for _ in range(2)]).mean(0)
            # smoothed: a level the generator never draws gets a bounded push, not an infinite one
            step = torch.log((real + 1e-4) / (fake + 1e-4)).clamp(-5.0, 5.0)
            self._group_bias = torch.where(member_free, self._group_bias + step, self._group_bias)

    def _average_weights(self) -> None:
        ema = getattr(self, "_ema", None)
        if ema is None:
            return
        for p, a in zip(self.generator.parameters(), ema):
            p.copy_(a)
        # the BatchNorm statistics belong to the last weights: estimate them again for the averaged ones
        bns = [m for m in self.generator.modules() if isinstance(m, nn.BatchNorm1d)]
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        self.generator.train()
        b = self.params["batch_size"]
        for _ in range(20):
            self._generate_raw(b)
        self.generator.eval()
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        pac, d = self.params["pac"], real.shape[1]
        alpha = torch.rand(real.shape[0] // pac, 1, 1, device=self._device).expand(-1, pac, d).reshape(-1, d)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.critic(mixed).sum(), mixed, create_graph=True)
        norm = grad.reshape(-1, pac * d).norm(2, dim=1)
        return self.params["gradient_penalty"] * ((norm - 1) ** 2).mean()

    # -- sampling ---------------------------------------------------------------------------------

    def _generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        num, codes = self._generate_raw(n)
        if self._calibration.shape[2]:
            num = _interp(num, self._calibration[0], self._calibration[1])
        return num, codes

    def _generate_raw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        fixed = getattr(self, "_fixed", None) or {}  # sample(conditions=...): {group: level}
        if len(self._cond_groups):
            _, _, cond = self._draw_condition(n, self._freq)
            position = {g: k for k, g in enumerate(self._cond_groups.tolist())}
            # the generator was trained with one condition at a time: the first fixed group is its condition,
            # any other fixed group is set in the output below
            for g, level in fixed.items():
                if g in position:
                    cond.zero_()
                    cond[:, self._cond_offsets[position[g]] + level] = 1.0
                    break
        else:
            cond = torch.zeros(n, 0, device=self._device)
        out = self.generator(torch.cat([self._noise(n), cond], dim=1))
        s = self._n_num
        bias = getattr(self, "_group_bias", None)
        logits = out[:, s:] if bias is None else out[:, s:] + bias
        codes = self._groups.sample(logits)
        for g, level in fixed.items():
            codes[:, g] = level
        return out[:, :s], codes

    def _extra_state(self) -> dict[str, torch.Tensor]:
        return {"freq": self._freq, "calibration": self._calibration, "group_bias": self._group_bias}

    def _load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self._freq = state["freq"]
        # a model saved before the quantile map existed samples without one
        self._calibration = state.get("calibration", self._no_calibration())
        self._group_bias = state.get("group_bias", torch.zeros(self._groups.total, device=self._device))

    def _no_calibration(self) -> torch.Tensor:
        """The quantile map of no points: sampling leaves the generated scores as they are."""
        return torch.zeros(2, self._n_num, 0, device=self._device)


_QUANTILES = 1001


def _quantiles(x: torch.Tensor) -> torch.Tensor:
    """[columns, _QUANTILES] evenly spaced quantiles of every column of x [n, columns] (by sorting: torch.quantile
    refuses inputs over 16M values)."""
    pos = torch.linspace(0, len(x) - 1, _QUANTILES, device=x.device)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(len(x) - 1)
    s = x.sort(dim=0).values
    return (s[lo] + (pos - lo)[:, None] * (s[hi] - s[lo])).T


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear map of every column j of x [n, k] through the points (xp[j], fp[j]), clamped at the ends."""
    xc = x.T.contiguous()  # [k, n]
    i = torch.searchsorted(xp.contiguous(), xc).clamp(1, xp.shape[1] - 1)
    x0, x1 = xp.gather(1, i - 1), xp.gather(1, i)
    y0, y1 = fp.gather(1, i - 1), fp.gather(1, i)
    w = ((xc - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0, 1)
    return (y0 + w * (y1 - y0)).T
