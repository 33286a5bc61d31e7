"""Membership inference: can an attacker holding the synthetic rows tell training rows from fresh real rows?

Distance-based attack (as in Chen et al., GAN-Leaks, 2020; Hayes et al., LOGAN): a candidate row is scored
by how close its nearest synthetic row is; training members of a generator that memorised them sit closer.
Members are real_train rows, non-members real_holdout rows the generator never saw, equally many of each.
Reported: the attack's ROC AUC and its advantage, max over thresholds of (true-positive rate - false-positive
rate). A generator that learnt nothing row-specific scores AUC about 0.5 and advantage about 0; the noise
band says how far from that a sample of this size drifts by chance. DP training bounds the advantage by
(e^ε - 1 + 2δ) / (e^ε + 1).
"""

from __future__ import annotations

import math

import numpy as np

from ouroboros.quality.learners import auc
from ouroboros.quality.neighbours import knn_dists


def _advantage(member: np.ndarray, other: np.ndarray) -> float:
    """max over thresholds of TPR - FPR (the KS distance of the two score samples)."""
    grid = np.unique(np.concatenate([member, other]))
    tpr = 1.0 - np.searchsorted(np.sort(member), grid, side="left") / len(member)
    fpr = 1.0 - np.searchsorted(np.sort(other), grid, side="left") / len(other)
    return float(max(0.0, (tpr - fpr).max()))


def membership_attack(synthetic: np.ndarray, members: np.ndarray, non_members: np.ndarray) -> dict[str, float]:
    """Attack scores on encoded rows (same encoder for all three); members and non-members of equal count."""
    m = min(len(members), len(non_members))
    if m < 10 or len(synthetic) == 0:
        return {}
    score_in = -knn_dists(members[:m], synthetic, 1)[:, 0]  # closer = more likely a member
    score_out = -knn_dists(non_members[:m], synthetic, 1)[:, 0]
    # no-leak noise: the AUC of two samples of m from one distribution has sd sqrt((2m + 1) / (12 m^2));
    # the KS distance's 95% point is 1.36 sqrt(2 / m)
    auc_sd = math.sqrt((2 * m + 1) / (12 * m * m))
    labels = np.concatenate([np.ones(m), np.zeros(m)])
    return {"privacy.membership.auc": auc(np.concatenate([score_in, score_out]), labels),
            "privacy.membership.advantage": _advantage(score_in, score_out),
            "privacy.membership.auc.noise_high": 0.5 + 3 * auc_sd,
            "privacy.membership.advantage.noise_high": 1.36 * math.sqrt(2.0 / m),
            "privacy.membership.rows": float(m)}


def dp_advantage_bound(epsilon: float, delta: float) -> float:
    """Largest membership advantage an (ε, δ)-DP training allows (Humphries et al.; Kairouz et al.)."""
    return float((math.exp(epsilon) - 1 + 2 * delta) / (math.exp(epsilon) + 1))
