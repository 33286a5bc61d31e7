"""DP-SGD for the torch generators: Poisson batches, per-row clipping, Gaussian noise, Opacus' RDP accountant.

`PrivateTraining` is set up once per fit with the table size and the training schedule: it splits the budget
between the encoder statistics (`preprocess`) and training, derives the noise multiplier that makes the
planned steps spend exactly the training share (Opacus' RDP accountant), hooks per-row gradient norms into
the private modules (`clipping.GhostClipper`) and wraps their optimizers (clip each row's gradient to
`max_grad_norm`, add N(0, (σC)²) to the sum, divide by the expected batch). Batches are Poisson samples with rate q = batch / rows,
which is what the accountant assumes. `finish` removes the hooks and returns the `PrivacyReport` with the ε the
accountant computes for the steps actually taken.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from ouroboros.generators.base import GeneratorError
from ouroboros.privacy.clipping import GhostClipper, PrivateOptimizer
from ouroboros.privacy.report import PrivacyReport
from ouroboros.privacy.settings import DPSettings


# RDP orders: mostly integers (the fractional ones cost 10x more to evaluate), up to 512 for small-ε runs
ALPHAS = [1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, *range(5, 64), 80, 96, 128, 192, 256, 512]


class PrivateTraining:
    """One DP fit: budget split, noise multiplier, Poisson batches, private optimizers and the accountant."""

    def __init__(self, settings: DPSettings, rows: int, batch: int, epochs: int, preprocessing_epsilon: float,
                 has_private_columns: bool) -> None:
        self.settings = settings
        self.rows = rows
        self.delta = settings.delta_for(rows)
        # stable histograms need a δ of their own; the rest of δ goes to training
        self.delta_pre = self.delta / 2 if has_private_columns else 0.0
        self.delta_train = self.delta - self.delta_pre
        self.epsilon_pre = preprocessing_epsilon
        self.epsilon_train = settings.epsilon - preprocessing_epsilon
        self.sample_rate = min(1.0, batch / rows)
        self.expected_batch = max(1, round(self.sample_rate * rows))
        self.steps_per_epoch = max(1, round(1.0 / self.sample_rate))
        self.planned_steps = self.steps_per_epoch * epochs
        try:
            self.noise_multiplier = get_noise_multiplier(
                target_epsilon=self.epsilon_train, target_delta=self.delta_train, sample_rate=self.sample_rate,
                steps=self.planned_steps, accountant="rdp", epsilon_tolerance=0.005, alphas=ALPHAS)
        except ValueError as exc:
            raise GeneratorError(
                f"dp.epsilon={settings.epsilon:g} is too small for {self.planned_steps} steps at sampling rate "
                f"{self.sample_rate:.3g} ({rows} rows): raise epsilon or batch_size, or lower epochs") from exc
        self.steps = 0
        self._clippers: list[GhostClipper] = []
        self._optimizers: list[PrivateOptimizer] = []
        self._names: list[str] = []

    def wrap(self, name: str, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
             expected_batch: int | None = None) -> PrivateOptimizer:
        """Hook per-row gradient norms into `module` (in place) and return its optimizer made private."""
        clipper = GhostClipper(name, module)
        self._clippers.append(clipper)
        self._names.append(name)
        opt = PrivateOptimizer(optimizer, clipper, self.settings.max_grad_norm, self.noise_multiplier,
                               expected_batch or self.expected_batch)
        self._optimizers.append(opt)
        return opt

    def set_hooks(self, enabled: bool) -> None:
        """Row gradients are only needed on the private steps (the GAN's generator step skips them)."""
        for c in self._clippers:
            c.enabled = enabled

    def batches(self, device: torch.device) -> Iterator[torch.Tensor]:
        """One epoch of Poisson-sampled row indices; an empty draw still takes a noise-only step."""
        for _ in range(self.steps_per_epoch):
            self.steps += 1
            idx = torch.nonzero(torch.rand(self.rows, device=device) < self.sample_rate).squeeze(1)
            for c in self._clippers:
                c.clear()  # a step starts from nothing captured
            if len(idx):
                yield idx
            else:
                for opt in self._optimizers:
                    opt.step()  # no rows captured: noise only

    def epsilon_training(self) -> float:
        if not self.steps:
            return 0.0
        accountant = RDPAccountant()
        accountant.history = [(self.noise_multiplier, self.sample_rate, self.steps)]
        return float(accountant.get_epsilon(delta=self.delta_train, alphas=ALPHAS))

    def finish(self, columns: dict[str, str]) -> PrivacyReport:
        """Remove the hooks and report the ε spent."""
        for c in self._clippers:
            c.remove()
        eps_train = self.epsilon_training()
        return PrivacyReport(
            epsilon_requested=self.settings.epsilon, epsilon_spent=eps_train + self.epsilon_pre,
            epsilon_training=eps_train, epsilon_preprocessing=self.epsilon_pre, delta=self.delta,
            noise_multiplier=float(self.noise_multiplier), max_grad_norm=self.settings.max_grad_norm,
            sample_rate=self.sample_rate, steps=self.steps, rows=self.rows, private_modules=list(self._names),
            columns=columns)
