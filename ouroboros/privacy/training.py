"""DP-SGD for the torch generators, on Opacus: Poisson batches, per-sample clipping, Gaussian noise, RDP accounting.

`PrivateTraining` is set up once per fit with the table size and the training schedule: it splits the budget
between the encoder statistics (`preprocess`) and training, derives the noise multiplier that makes the
planned steps spend exactly the training share (Opacus' RDP accountant), hooks per-sample gradients into the
private modules (Opacus `GradSampleModule`) and wraps their optimizers (`DPOptimizer`: clip each row's
gradient to `max_grad_norm`, add N(0, (σC)²), average). Batches are Poisson samples with rate q = batch / rows,
which is what the accountant assumes. `finish` removes the hooks and returns the `PrivacyReport` with the ε the
accountant computes for the steps actually taken.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.grad_sample import GradSampleModule
from opacus.optimizers import DPOptimizer

from ouroboros.generators.base import GeneratorError
from ouroboros.privacy.report import PrivacyReport
from ouroboros.privacy.settings import DPSettings


def _embedding_bag_2d(layer: torch.nn.EmbeddingBag, inputs: list[torch.Tensor],
                      backprops: torch.Tensor) -> dict[torch.Tensor, torch.Tensor]:
    """Per-row gradients of an EmbeddingBag called with a 2-D index (one bag per row, no offsets)."""
    if len(inputs) > 1:  # 1-D index with offsets: Opacus' own sampler
        return _OPACUS_BAG(layer, inputs, backprops)
    (index,) = inputs
    b, width = index.shape
    dim = layer.embedding_dim
    rows = backprops[:, None, :].expand(b, width, dim)
    if layer.mode == "mean":
        rows = rows / max(width, 1)
    grad = torch.zeros(b, layer.num_embeddings, dim, device=index.device, dtype=backprops.dtype)
    grad.scatter_add_(1, index[:, :, None].expand(b, width, dim), rows)
    return {layer.weight: grad}


_OPACUS_BAG = GradSampleModule.GRAD_SAMPLERS[torch.nn.EmbeddingBag]


class _Hooks(GradSampleModule):
    """Opacus' per-sample gradient hooks, with 2-D EmbeddingBag input supported (this class only, no registry edit)."""

    GRAD_SAMPLERS = {**GradSampleModule.GRAD_SAMPLERS, torch.nn.EmbeddingBag: _embedding_bag_2d}


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
                steps=self.planned_steps, accountant="rdp", epsilon_tolerance=0.005)
        except ValueError as exc:
            raise GeneratorError(
                f"dp.epsilon={settings.epsilon:g} is too small for {self.planned_steps} steps at sampling rate "
                f"{self.sample_rate:.3g} ({rows} rows): raise epsilon or batch_size, or lower epochs") from exc
        self.steps = 0
        self._hooks: list[_Hooks] = []
        self._optimizers: list[DPOptimizer] = []
        self._names: list[str] = []

    def wrap(self, name: str, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
             expected_batch: int | None = None) -> DPOptimizer:
        """Hook per-sample gradients into `module` (in place) and return its optimizer made private."""
        try:
            hooks = _Hooks(module, batch_first=True, loss_reduction="mean", strict=True)
        except NotImplementedError as exc:
            raise GeneratorError(f"dp: module {name} cannot be trained privately (per-row gradients): {exc}") from exc
        dp_opt = DPOptimizer(optimizer, noise_multiplier=self.noise_multiplier,
                             max_grad_norm=self.settings.max_grad_norm,
                             expected_batch_size=expected_batch or self.expected_batch, loss_reduction="mean")
        self._hooks.append(hooks)
        self._optimizers.append(dp_opt)
        self._names.append(name)
        return dp_opt

    def set_hooks(self, enabled: bool) -> None:
        """Per-sample gradients are only needed on the private steps (the GAN's generator step skips them)."""
        for h in self._hooks:
            h.enable_hooks() if enabled else h.disable_hooks()

    def batches(self, device: torch.device) -> Iterator[torch.Tensor]:
        """One epoch of Poisson-sampled row indices; an empty draw still takes a noise-only step."""
        for _ in range(self.steps_per_epoch):
            self.steps += 1
            idx = torch.nonzero(torch.rand(self.rows, device=device) < self.sample_rate).squeeze(1)
            if len(idx):
                yield idx
            else:
                self._noise_only_step()

    def _noise_only_step(self) -> None:
        for opt in self._optimizers:
            for p in opt.params:
                std = opt.noise_multiplier * opt.max_grad_norm
                p.grad = torch.normal(0.0, std, p.shape, device=p.device) / opt.expected_batch_size
            opt.original_optimizer.step()
            opt.original_optimizer.zero_grad(set_to_none=True)

    def epsilon_training(self) -> float:
        if not self.steps:
            return 0.0
        accountant = RDPAccountant()
        accountant.history = [(self.noise_multiplier, self.sample_rate, self.steps)]
        return float(accountant.get_epsilon(delta=self.delta_train))

    def finish(self, columns: dict[str, str]) -> PrivacyReport:
        """Remove the hooks and report the ε spent."""
        for h in self._hooks:
            h.remove_hooks()
            for p in h._module.parameters():
                for attr in ("grad_sample", "summed_grad", "_forward_counter", "_current_grad_sample"):
                    if hasattr(p, attr):
                        delattr(p, attr)
        eps_train = self.epsilon_training()
        return PrivacyReport(
            epsilon_requested=self.settings.epsilon, epsilon_spent=eps_train + self.epsilon_pre,
            epsilon_training=eps_train, epsilon_preprocessing=self.epsilon_pre, delta=self.delta,
            noise_multiplier=float(self.noise_multiplier), max_grad_norm=self.settings.max_grad_norm,
            sample_rate=self.sample_rate, steps=self.steps, rows=self.rows, private_modules=list(self._names),
            columns=columns)
