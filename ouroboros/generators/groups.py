"""Segmented operations over the categorical groups of an encoded table, each one tensor op for all groups.

The logits of all groups lie side by side in one flat tensor [batch, sum(sizes)]. `Groups` gathers them
into a padded [batch, groups, widest] tensor (padding at -inf), so a softmax, a log-likelihood, a Gumbel
draw or an argmax over every group is a single call instead of a Python loop over columns.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


class Groups:
    """Index tensors for a fixed list of group sizes on one device."""

    def __init__(self, sizes: list[int], device: torch.device | str = "cpu") -> None:
        self.sizes = [int(s) for s in sizes]
        self.count = len(self.sizes)
        self.total = sum(self.sizes)
        self.width = max(self.sizes, default=0)
        size_t = torch.tensor(self.sizes, dtype=torch.long, device=device)
        self.offsets = torch.cumsum(size_t, 0) - size_t
        col = torch.arange(self.width, device=device).expand(self.count, self.width)
        self.mask = col < size_t[:, None]
        # padding points at an extra column appended to the flat tensor; it is masked, so its value never matters
        self.pad_index = torch.where(self.mask, self.offsets[:, None] + col, torch.full_like(col, self.total))
        flat_group = torch.repeat_interleave(torch.arange(self.count, device=device), size_t)
        flat_level = torch.arange(self.total, device=device) - self.offsets[flat_group]
        self.flat_pos = flat_group * self.width + flat_level

    def padded(self, flat: torch.Tensor) -> torch.Tensor:
        """[B, total] logits -> [B, groups, width] with -inf where a group is narrower than the widest."""
        ext = torch.cat([flat, flat.new_zeros(flat.shape[0], 1)], dim=1)
        return ext[:, self.pad_index].masked_fill(~self.mask, float("-inf"))

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """[B, groups, width] -> [B, total]."""
        return padded.reshape(padded.shape[0], -1)[:, self.flat_pos]

    def log_softmax(self, flat: torch.Tensor) -> torch.Tensor:
        """Padded per-group log-probabilities [B, groups, width]."""
        return torch.log_softmax(self.padded(flat), dim=-1)

    def nll(self, flat: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of the observed level of every group: [B, groups]."""
        return -self.log_softmax(flat).gather(2, codes.unsqueeze(2)).squeeze(2)

    def gumbel_softmax(self, flat: torch.Tensor, tau: float) -> torch.Tensor:
        """Relaxed one-hot draw of every group, [B, total] (uses the global torch RNG, seeded by the caller)."""
        return self.unpad(F.gumbel_softmax(self.padded(flat), tau=tau, hard=False, dim=-1))

    def sample(self, flat: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Draw one level per group from softmax(logits / temperature): codes [B, groups]."""
        logits = self.padded(flat) / temperature
        u = torch.rand(logits.shape, device=logits.device, dtype=logits.dtype).clamp_(1e-10, 1 - 1e-10)
        return (logits - torch.log(-torch.log(u))).argmax(dim=-1)

    def sample_at(self, flat: torch.Tensor, rows: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Draw a level for each selected (row, group) pair only: levels [K] (inverse CDF, one uniform per pair)."""
        logits = torch.cat([flat, flat.new_zeros(flat.shape[0], 1)], dim=1)[rows[:, None], self.pad_index[groups]]
        probs = torch.softmax(logits.masked_fill(~self.mask[groups], float("-inf")), dim=-1)
        cum = probs.cumsum(dim=-1)
        u = torch.rand(len(rows), 1, device=flat.device, dtype=cum.dtype) * cum[:, -1:]
        level = (cum < u).sum(dim=-1)
        return torch.minimum(level, torch.tensor(self.sizes, device=flat.device)[groups] - 1)

    def one_hot(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, groups] -> one-hot [B, total]."""
        out = torch.zeros(codes.shape[0], self.total, device=codes.device)
        if self.count:
            out.scatter_(1, codes + self.offsets, 1.0)
        return out
