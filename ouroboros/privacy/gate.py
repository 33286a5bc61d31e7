"""The gate's ε limit: `gate.max_epsilon` refuses a batch whose real rows have spent more than that, or no DP at all."""

from __future__ import annotations

import math

from ouroboros.quality.judge import Failure, Scorecard


def privacy_scores(generator: dict | None) -> dict[str, float]:
    """ε numbers of the batch's generator record as scorecard scores. `privacy.dp.bounded` is 1 when every
    generator that saw real rows in this chain was DP; the chain's ε is only reported then (finite)."""
    if not generator:
        return {}
    p = generator.get("privacy") or {}
    out = {f"privacy.dp.{k}": float(p[k]) for k in ("epsilon_requested", "epsilon_spent", "delta",
                                                      "noise_multiplier", "max_grad_norm") if k in p}
    chain = chain_epsilon(generator)
    out["privacy.dp.bounded"] = float(math.isfinite(chain))
    if math.isfinite(chain):
        out["privacy.dp.chain_epsilon"] = chain
    return out


def chain_epsilon(generator: dict | None) -> float:
    """The chain's ε behind a batch (inf when some generator saw real rows without DP, or nothing is known)."""
    if not generator:
        return math.inf
    if "chain_epsilon" in generator:
        v = generator["chain_epsilon"]
        return math.inf if v is None else float(v)
    p = generator.get("privacy")
    return float(p["epsilon_spent"]) if p else math.inf


def apply_epsilon_limit(card: Scorecard, generator: dict | None, max_epsilon: float | None) -> Scorecard:
    """Add the generator's ε to the card and, when `max_epsilon` is set, a blocking privacy failure if exceeded."""
    card.scores.update(privacy_scores(generator))
    if max_epsilon is None:
        return card
    spent = chain_epsilon(generator)
    if spent > max_epsilon:
        if math.isinf(spent):
            why = (f"the batch's generator (or one before it in the chain) learnt from real rows without "
                   f"differential privacy; gate.max_epsilon = {max_epsilon:g} requires DP training "
                   "(params: {dp: {epsilon: ...}})")
        else:
            why = (f"the real rows behind this batch have spent ε = {spent:.2f} over the chain, above "
                   f"gate.max_epsilon = {max_epsilon:g}")
        card.failures.append(Failure("privacy", "dp.chain_epsilon", spent, float(max_epsilon), why))
        card.passed = False
    return card
