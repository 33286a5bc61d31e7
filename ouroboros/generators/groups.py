"""Segmented operations over the categorical groups of an encoded table, each one tensor op for all groups.

The logits of all groups lie side by side in one flat tensor [batch, sum(sizes)]. `Groups` gathers them
into a padded [batch, groups, widest] tensor (padding at -inf), so a softmax, a log-likelihood, a Gumbel
draw or an argmax over every group is a single call instead of a Python loop over columns.
"""

from __future__ import annotations

import torch


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
        self.member = flat_group  # [total]: the group of every flat column
        # membership matrix: per-group sums as one GEMM, whose backward is a GEMM too (an index_put
        # backward with many duplicate indices is slow on CPU)
        self.membership = torch.zeros(self.total, self.count, device=device)
        self.membership[torch.arange(self.total, device=device), flat_group] = 1.0

    def padded(self, flat: torch.Tensor) -> torch.Tensor:
        """[B, total] logits -> [B, groups, width] with -inf where a group is narrower than the widest."""
        ext = torch.cat([flat, flat.new_zeros(flat.shape[0], 1)], dim=1)
        return ext[:, self.pad_index].masked_fill(~self.mask, float("-inf"))

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """[B, groups, width] -> [B, total]."""
        return padded.reshape(padded.shape[0], -1)[:, self.flat_pos]

    def log_softmax(self, flat: torch.Tensor) -> torch.Tensor:
        """Per-group log-probabilities, flat [B, total]."""
        with torch.no_grad():  # a per-group shift for stability; any constant per group gives the same result
            shift = flat.new_full((flat.shape[0], self.count), float("-inf"))
            shift = shift.scatter_reduce(1, self.member.expand(flat.shape[0], -1), flat, "amax")
        z = flat - shift[:, self.member]
        lse = torch.log(torch.exp(z) @ self.membership)
        return z - lse[:, self.member]

    def nll(self, flat: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of the observed level of every group: [B, groups]."""
        return -self.log_softmax(flat).gather(1, codes + self.offsets)

    def gumbel_softmax(self, flat: torch.Tensor, tau: float) -> torch.Tensor:
        """Relaxed one-hot draw of every group, [B, total] (uses the global torch RNG, seeded by the caller)."""
        u = torch.rand_like(flat).clamp_(1e-10, 1 - 1e-10)
        return torch.exp(self.log_softmax((flat - torch.log(-torch.log(u))) / tau))

    def sample(self, flat: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Draw one level per group from softmax(logits / temperature): codes [B, groups]."""
        if not self.count:  # an all-numeric table
            return torch.zeros(flat.shape[0], 0, dtype=torch.long, device=flat.device)
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
