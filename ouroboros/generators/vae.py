"""Tabular VAE (after Xu et al., TVAE, 2019): per-column likelihoods, Gaussian for scalars, categorical for groups.

Continuous columns are normal scores of their ranks (the encoder's "quantile" mode, as the diffusion
model uses): each marginal is standard normal, so a Gaussian likelihood fits it and no mixture mode
has to be learned. The reconstruction loss of all columns is two tensor expressions, not a loop: a
Gaussian negative log-likelihood with one learned scale per scalar, and one segmented log-softmax over
every categorical group (`Groups.nll`).

Sampling decodes latents drawn from a Gaussian fitted to the encoder's means over the training rows
(the aggregated posterior; "ex-post density estimation", Ghosh et al., 2020) rather than from N(0, I):
where the posterior does not fill the prior, prior draws land in regions the decoder never learned,
and a classifier spots those rows. Only the latent mean and covariance are kept, no training row.
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
    CONTINUOUS = "quantile"
    PARAMS = {
        **TorchGenerator.COMMON_PARAMS,
        "epochs": (int, 100),
        "latent_dim": (int, 64),
        "encoder_dims": (str, "256,256"),
        "decoder_dims": (str, "256,256"),
        "lr": (float, 1e-3),
        "weight_decay": (float, 1e-5),
        # weight of the reconstruction against the KL term. 5 looked better on 4,000-row benchmark tables
        # (demo TSTR 0.82 -> 0.96) but on the demo pipeline's 21,000 rows it raised the gate's detection at
        # generation 0 (0.57 -> 0.63) and stopped the accumulate chain at generation 2 (detection 0.72),
        # where 2 held all five generations (the five-generation pipeline study of 2026-11-27)
        "loss_factor": (float, 2.0),
        "posterior_prior": (bool, True),  # sample latents from the fitted aggregated posterior, not N(0, I)
        "temperature": (float, 1.0),  # softmax temperature of the categorical draws when sampling
    }
    MODULES = ("model",)
    TRANSIENT = ("_opt", "_onehot")

    def _validate_model_params(self) -> None:
        self._positive("latent_dim", "lr", "loss_factor", "temperature")
        if self.params["weight_decay"] < 0:
            raise GeneratorError(f"vae: parameter weight_decay must be >= 0, got {self.params['weight_decay']}")
        self._dims("encoder_dims")
        self._dims("decoder_dims")

    def _build(self, device: torch.device) -> None:
        p = self.params
        self.model = _VAE(self._n_num + self._groups.total, self._n_num, p["latent_dim"],
                          self._dims("encoder_dims"), self._dims("decoder_dims")).to(device)
        d = p["latent_dim"]
        self._z_mean = torch.zeros(d, device=device)
        self._z_root = torch.eye(d, device=device)

    def _prepare(self, num: torch.Tensor, codes: torch.Tensor) -> None:
        self._onehot = self._groups.one_hot(codes)
        self._opt = self._optimizer(self.model.parameters(), self.params["lr"], self.params["weight_decay"])

    def _encode(self, x_num: torch.Tensor, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            h = self.model.encoder(torch.cat([x_num, onehot], dim=1))
            return self.model.mu(h).float(), self.model.logvar(h).float()

    def _loss(self, x_num: torch.Tensor, x_codes: torch.Tensor, onehot: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(loss, reconstruction, KL), each summed over the batch; the loss is their weighted mean per row."""
        m, s = self.model, self._n_num
        mu, logvar = self._encode(x_num, onehot)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        with self._autocast():
            out = m.decoder(z).float()
        b = len(x_num)
        rec = ((x_num - out[:, :s]) ** 2 / (2 * m.sigma**2)).sum() + torch.log(m.sigma).sum() * b
        rec = rec + self._groups.nll(out[:, s:], x_codes).sum()
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
        return (self.params["loss_factor"] * rec + kl) / b, rec, kl

    def _train_epoch(self, num: torch.Tensor, codes: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        total_rec = torch.zeros((), device=self._device)
        total_kl = torch.zeros((), device=self._device)
        steps = 0
        for idx in self._batches(len(num), batch):
            loss, rec, kl = self._loss(num[idx], codes[idx], self._onehot[idx])
            self._train_step(self._opt, loss)
            with torch.no_grad():
                self.model.sigma.clamp_(0.01, 1.0)
            total_rec += rec.detach() / len(idx)
            total_kl += kl.detach() / len(idx)
            steps += 1
        return {"loss_reconstruction": total_rec / steps, "loss_kl": total_kl / steps}

    def _finish(self, num: torch.Tensor, codes: torch.Tensor) -> None:
        if not self.params["posterior_prior"] or self.params.get("dp") is not None:
            return  # under DP the latents of real rows are not released: sample N(0, I)
        onehot = self._onehot  # made by _prepare for these same rows
        mus, variances = [], []
        for start in range(0, len(num), self.SAMPLE_BATCH):
            mu, logvar = self._encode(num[start:start + self.SAMPLE_BATCH], onehot[start:start + self.SAMPLE_BATCH])
            mus.append(mu)
            variances.append(logvar.exp())
        mu, var = torch.cat(mus), torch.cat(variances)
        # the aggregated posterior's mean and covariance: the spread of the means plus the mean posterior variance
        cov = (torch.cov(mu.T.double()).reshape(mu.shape[1], mu.shape[1]) + torch.diag(var.double().mean(0)))
        if not torch.isfinite(cov).all():
            raise GeneratorError("vae: training diverged (the encoder's latents are not finite); lower lr or loss_factor")
        # a symmetric square root with eigenvalues floored, so a nearly singular covariance still samples
        w, v = torch.linalg.eigh((cov + cov.T) / 2)
        self._z_mean = mu.mean(0)
        self._z_root = ((v * w.clamp_min(1e-6).sqrt()) @ v.T).float()

    def _extra_state(self) -> dict[str, torch.Tensor]:
        return {"z_mean": self._z_mean, "z_root": self._z_root}

    def _load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            self._z_mean, self._z_root = state["z_mean"], state["z_root"]

    def _generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        m, s = self.model, self._n_num
        z = self._z_mean + torch.randn(n, self.params["latent_dim"], device=self._device) @ self._z_root.T
        with self._autocast():
            out = m.decoder(z).float()
        num = out[:, :s] + torch.randn(n, s, device=self._device) * m.sigma
        return num, self._groups.sample(out[:, s:], self.params["temperature"])
