"""Tabular VAE (after Xu et al., TVAE, 2019): per-column likelihoods, Gaussian for scalars, categorical for groups.

The reconstruction loss of all columns is two tensor expressions, not a loop: a Gaussian negative
log-likelihood with one learned scale per scalar, and one segmented log-softmax over every categorical
group (`Groups.nll`). Sampling decodes standard-normal latents, adds each scalar's learned noise and
draws every categorical from its decoded distribution.
"""

from __future__ import annotations

import torch
from torch import nn

from ouroboros.generators.base import GeneratorError
from ouroboros.generators.torch_base import TorchGenerator, mlp


class _VAE(nn.Module):
    def __init__(self, data_dim: int, n_num: int, latent: int, enc: tuple[int, ...], dec: tuple[int, ...]) -> None:
        super().__init__()
        self.encoder = nn.Sequential(mlp([data_dim, *enc]), nn.ReLU())
        self.mu = nn.Linear(enc[-1], latent)
        self.logvar = nn.Linear(enc[-1], latent)
        self.decoder = mlp([latent, *dec, data_dim])
        self.sigma = nn.Parameter(torch.full((n_num,), 0.1))


class TabularVAE(TorchGenerator):
    """Variational autoencoder for mixed tables."""

    family = "vae"
    PARAMS = {
        **TorchGenerator.COMMON_PARAMS,
        "latent_dim": (int, 128),
        "encoder_dims": (str, "128,128"),
        "decoder_dims": (str, "128,128"),
        "lr": (float, 1e-3),
        "weight_decay": (float, 1e-5),
        "loss_factor": (float, 2.0),  # weight of the reconstruction against the KL term
    }
    MODULES = ("model",)
    TRANSIENT = ("_opt", "_onehot")

    def _validate_model_params(self) -> None:
        self._positive("latent_dim", "lr", "loss_factor")
        if self.params["weight_decay"] < 0:
            raise GeneratorError(f"vae: parameter weight_decay must be >= 0, got {self.params['weight_decay']}")
        self._dims("encoder_dims")
        self._dims("decoder_dims")

    def _build(self, device: torch.device) -> None:
        p = self.params
        self.model = _VAE(self._n_num + self._groups.total, self._n_num, p["latent_dim"],
                          self._dims("encoder_dims"), self._dims("decoder_dims")).to(device)

    def _prepare(self, num: torch.Tensor, codes: torch.Tensor) -> None:
        self._onehot = self._groups.one_hot(codes)
        self._opt = torch.optim.Adam(self.model.parameters(), lr=self.params["lr"],
                                     weight_decay=self.params["weight_decay"])

    def _train_epoch(self, num: torch.Tensor, codes: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        m, s = self.model, self._n_num
        total_rec = torch.zeros((), device=self._device)
        total_kl = torch.zeros((), device=self._device)
        steps = 0
        for idx in self._batches(len(num), batch):
            x_num, x_codes = num[idx], codes[idx]
            h = m.encoder(torch.cat([x_num, self._onehot[idx]], dim=1))
            mu, logvar = m.mu(h), m.logvar(h)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            out = m.decoder(z)
            b = len(idx)
            rec = ((x_num - torch.tanh(out[:, :s])) ** 2 / (2 * m.sigma**2)).sum() + torch.log(m.sigma).sum() * b
            rec = rec + self._groups.nll(out[:, s:], x_codes).sum()
            kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
            loss = (self.params["loss_factor"] * rec + kl) / b
            self._opt.zero_grad(set_to_none=True)
            loss.backward()
            self._opt.step()
            with torch.no_grad():
                m.sigma.clamp_(0.01, 1.0)
            total_rec += rec.detach() / b
            total_kl += kl.detach() / b
            steps += 1
        return {"loss_reconstruction": total_rec / steps, "loss_kl": total_kl / steps}

    def _generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        m, s = self.model, self._n_num
        out = m.decoder(torch.randn(n, self.params["latent_dim"], device=self._device))
        num = torch.tanh(out[:, :s]) + torch.randn(n, s, device=self._device) * m.sigma
        return num, self._groups.sample(out[:, s:])
