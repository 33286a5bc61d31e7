"""Mitigation at generation k >= 1: what the attempt loop tries when generation k's batch is refused.

The same loop as repair at generation 0 (`ouroboros.chain.step`): each strategy proposes one more attempt from
what was tried so far, every attempt is gated on real_holdout and recorded with its scorecard, and the loop
stops at the first pass. The study lists the strategies in the order to try (`studies[].mitigation`):

refit   the best attempt's family again with another seed and all the budget left (more epochs where the
        family has them)
anchor  raise the real share of the pool step by step (`ANCHOR_STEPS`) from the policy's share to
        `studies[].max_lam`, rebuilding the pool (fresh real rows plus generation k-1's batch,
        `ouroboros.policies`: the anchor policy's pool), and refit (Bertrand et al. 2024: a large enough real
        share keeps retraining stable)
verify  re-draw the best attempt's batch three times over and keep the rows a real-vs-synthetic verifier
        selects (`ouroboros.chain.verify`; Feng et al. 2024); no refit

Looks at real_holdout. Each attempt is one look; the chance that a bad generator is approved by luck grows up
to the number of looks times the gate's false-refusal rate (a union bound), so a mitigated step takes at most
`MAX_MITIGATION_ATTEMPTS` looks, and the number taken is recorded with the generator.
"""

from __future__ import annotations

from dataclasses import replace

from ouroboros.chain.step import Attempt, LoopState, Proposal, Strategy
from ouroboros.config import StudyConfig

MAX_MITIGATION_ATTEMPTS = 4  # looks at real_holdout in one mitigated step (the first fit and three mitigations)
ANCHOR_STEPS = 2  # real shares tried by `anchor`: evenly spaced from the policy's share up to max_lam


def anchor_shares(current: float, max_lam: float, steps: int = ANCHOR_STEPS) -> list[float]:
    """The real shares `anchor` tries, increasing, each above `current` and the last one `max_lam`."""
    if max_lam <= current + 1e-9:
        return []
    return [round(current + (max_lam - current) * (i + 1) / steps, 6) for i in range(steps)]


def _best_fit(state: LoopState) -> Attempt | None:
    """The best attempt that fitted a generator of its own (not a fit error, not a re-draw)."""
    fitted = [a for a in state.attempts if not a.refused_by.startswith("fit error") and not a.verified]
    return min(fitted, key=Attempt.sort_key) if fitted else None


class Refit(Strategy):
    """The best attempt's family and pool again, another seed, all the budget left (more epochs if it has them)."""
    name = "refit"

    def propose(self, state: LoopState) -> Proposal | None:
        if any(p.strategy == self.name for p in state.proposals):
            return None
        best = _best_fit(state)
        if best is None:
            return None
        seed = max(p.seed for p in state.proposals) + 1
        p = state.proposal(self.name, best.family, state.remaining_seconds, seed=seed)
        return replace(p, lam=best.real_share if best.real_share != state.real_share else None)


class Anchor(Strategy):
    """Raise the pool's real share one step (up to max_lam) and refit the best attempt's family."""
    name = "anchor"

    def propose(self, state: LoopState) -> Proposal | None:
        if state.anchor_pool is None:
            return None
        tried = {p.lam for p in state.proposals if p.strategy == self.name}
        rest = [lam for lam in anchor_shares(state.real_share, state.study.max_lam) if lam not in tried]
        best = _best_fit(state)
        if not rest or best is None:
            return None
        return replace(state.proposal(self.name, best.family, state.share(), seed=best.seed), lam=rest[0])


class Verify(Strategy):
    """Re-draw the best attempt's batch VERIFY_FACTOR times over and keep the rows the verifier selects."""
    name = "verify"

    def propose(self, state: LoopState) -> Proposal | None:
        if any(p.strategy == self.name for p in state.proposals):
            return None
        best = _best_fit(state)
        if best is None:
            return None
        source = state.proposals[best.number - 1]
        return replace(source, strategy=self.name, reuse=best.number, verify=True)


def strategies(study: StudyConfig) -> list[Strategy]:
    """The study's mitigations as loop strategies, in its order."""
    make = {"refit": Refit, "anchor": Anchor, "verify": Verify}
    return [make[m]() for m in study.mitigation]


def passed_by(attempts) -> str:
    """Which mitigation made the step pass ("" when the first fit passed, nothing passed or nothing was gated)."""
    passing = [a for a in attempts if a.passed]
    if not passing or passing[0].number == 1:
        return ""
    return passing[0].strategy
