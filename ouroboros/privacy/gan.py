"""One private GAN epoch (DP-GAN, Xie et al. 2018; DP-CTGAN): only the critic sees real rows, so only it is private.

The critic is trained with DP-SGD on Poisson-sampled real rows plus a fixed number of generated rows (a fixed
count, so the batch size reveals nothing), with the logistic GAN loss: the WGAN-GP gradient penalty needs a
second backward pass through the critic that per-sample clipping does not support. The generator's gradients
flow through the critic only, never from a real row, so its updates are post-processing of the private
critic. Under DP the GAN is unconditional (no condition vector drawn from real level frequencies) and pac is 1,
so one critic input is one row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ouroboros.privacy.training import PrivateTraining


def gan_epoch(gan, session: PrivateTraining, num: torch.Tensor) -> dict[str, torch.Tensor]:
    device = gan._device
    b_fake = session.expected_batch
    total_d = torch.zeros((), device=device)
    total_g = torch.zeros((), device=device)
    steps = 0
    for rows in session.batches(device):
        real = gan._real[rows]
        with torch.no_grad():
            fake = gan._activate(gan.generator(gan._noise(b_fake)))
        session.set_hooks(True)
        scores = gan.critic(torch.cat([real, fake], dim=0)).squeeze(1)
        target = torch.cat([torch.ones(len(real), device=device), torch.zeros(b_fake, device=device)])
        loss_d = F.binary_cross_entropy_with_logits(scores, target)
        gan._opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        gan._opt_d.step()
        # generator step: per-row gradients of the critic are not needed (and its grads are discarded)
        session.set_hooks(False)
        out = gan.generator(gan._noise(b_fake))
        loss_g = F.softplus(-gan.critic(gan._activate(out))).mean()
        gan._opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        gan._opt_g.step()
        gan._opt_d.zero_grad(set_to_none=True)
        total_d += loss_d.detach()
        total_g += loss_g.detach()
        steps += 1
    steps = max(steps, 1)
    return {"loss_critic": total_d / steps, "loss_generator": total_g / steps}
