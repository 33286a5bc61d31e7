"""Measuring the image gate on real digits: false refusals of fresh real batches and power on faults.

With 1,797 digits there is no stream of fresh ones, so the measurement makes its own: real_train is split
again by the stable hash into a gate-train part and a fresh pool no part of the gate sees (neither its
feature classifier, its reference, nor real_holdout, its null). Fresh batches are `draw_fresh` from that pool
(without replacement up to its size, the whole pool plus resampled images beyond).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ouroboros.images.config import ImageGateConfig
from ouroboros.images.data import ImageSet
from ouroboros.images.faults import apply
from ouroboros.images.gate.judge import ImageGate
from ouroboros.images.gate.null import draw_fresh
from ouroboros.images.split import split_images


@dataclass
class Bench:
    gate: ImageGate
    fresh: ImageSet  # real images no part of the gate saw


def calibration_bench(train: ImageSet, holdout: ImageSet, config: ImageGateConfig | None = None,
                      fresh_fraction: float = 0.33, false_refusal_rate: float = 0.01, seed: int = 1) -> Bench:
    gate_train, fresh = split_images(train, fresh_fraction, seed)
    return Bench(ImageGate(gate_train, holdout, config, false_refusal_rate), fresh)


def false_refusals(bench: Bench, n: int, batches: int, seed: int = 0) -> tuple[int, dict[str, int]]:
    """(batches refused, refusals per test) over `batches` fresh real batches of n images."""
    rng = np.random.default_rng([seed, n])
    refused, per_test = 0, {}
    for _ in range(batches):
        verdict = bench.gate.evaluate(bench.fresh.take(draw_fresh(len(bench.fresh), n, rng)))
        refused += not verdict.passed
        for name in verdict.failed():
            per_test[name] = per_test.get(name, 0) + 1
    return refused, per_test


def power(bench: Bench, fault: str, n: int, batches: int, seed: int = 0) -> tuple[int, dict[str, int]]:
    """(batches refused, refusals per test) over `batches` fresh real batches of n with the fault applied."""
    rng = np.random.default_rng([seed, n, len(fault)])
    refused, per_test = 0, {}
    for _ in range(batches):
        batch = bench.fresh.take(draw_fresh(len(bench.fresh), n, rng))
        verdict = bench.gate.evaluate(apply(fault, batch, bench.fresh, bench.gate.train, rng))
        refused += not verdict.passed
        for name in verdict.failed():
            per_test[name] = per_test.get(name, 0) + 1
    return refused, per_test
