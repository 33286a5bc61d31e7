"""The one object a torch generator's fit talks to when `params.dp` is set: encode privately, wrap, train, report.

The generator keeps its own training code; this object supplies the private encoder statistics, the
per-sample-gradient hooks and private optimizers for the modules that see real rows (`DP_MODULES` of the
generator class: the whole model for the VAE and diffusion, the critic for the GAN), Poisson batches, and the
report of what was spent.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from ouroboros.generators.base import GeneratorError
from ouroboros.generators.encoding import TableEncoder
from ouroboros.privacy.preprocess import fit_private_encoder, plan_budget, private_transform
from ouroboros.privacy.settings import DPSettings
from ouroboros.privacy.training import PrivacyReport, PrivateTraining
from ouroboros.schema import TableSchema


class PrivateFit:
    def __init__(self, raw: dict, family: str, schema: TableSchema, rows: int, batch: int, epochs: int,
                 discrete_limit: int) -> None:
        self.family = family
        self.settings = DPSettings.parse(raw, family)
        unknown = sorted(set(self.settings.public) - set(schema.names))
        if unknown:
            raise GeneratorError(f"{family}: dp.public names column(s) {unknown} that the table lacks; "
                                 f"columns are {schema.names}")
        self.epsilon_pre, self.private_columns = plan_budget(schema, self.settings, discrete_limit)
        self.session = PrivateTraining(self.settings, rows, batch, epochs, self.epsilon_pre,
                                       bool(self.private_columns))
        self.columns: dict[str, str] = {}
        self.frozen: list[str] = []

    def encode(self, encoder: TableEncoder, df: pl.DataFrame, schema: TableSchema,
               seed: int) -> tuple[TableSchema, np.ndarray, np.ndarray]:
        """Fit `encoder` from public declarations and noisy statistics; (released schema, num, codes)."""
        released, releases = fit_private_encoder(encoder, df, schema, self.settings, self.epsilon_pre,
                                                 self.session.delta_pre, seed)
        self.columns = {r.column: r.source for r in releases}
        num, codes = private_transform(encoder, df, seed)
        return released, num, codes

    def attach(self, gen) -> None:
        """Make the generator's private modules' optimizers DP (after its `_prepare` built them)."""
        for module_name, opt_name in gen.DP_MODULES:
            module = getattr(gen, module_name)
            for name, m in module.named_modules():
                # a parameter owned by a container is used outside any layer's forward, where the per-row
                # hooks cannot see it: it stays at its initial value instead of learning from real rows
                if any(True for _ in m.children()):
                    for pname, p in m.named_parameters(recurse=False):
                        if p.requires_grad:
                            p.requires_grad_(False)
                            self.frozen.append(f"{module_name}.{name + '.' if name else ''}{pname}")
            expected = self.session.expected_batch * (2 if self.family == "gan" else 1)
            setattr(gen, opt_name, self.session.wrap(module_name, module, getattr(gen, opt_name), expected))

    def batches(self, device: torch.device):
        return self.session.batches(device)

    def train_epoch(self, gen, num: torch.Tensor, codes: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        if self.family == "gan":
            from ouroboros.privacy.gan import gan_epoch

            return gan_epoch(gen, self.session, num)
        return gen._train_epoch(num, codes, batch)

    def finish(self) -> PrivacyReport:
        report = self.session.finish(self.columns)
        report.frozen_parameters = list(self.frozen)
        return report
