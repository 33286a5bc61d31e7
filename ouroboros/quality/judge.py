"""The scorecard and the judge that fills it: scores, the tests behind the blocking limits, warnings and skips.

A blocking limit is two conditions at once: the batch is worse than the user's threshold in `gate:` (the effect
that matters), and worse than honest data of the same size plausibly scores (the test's p-value is below the
batch's false-refusal rate divided over all tests the batch took: Bonferroni). So a batch of fresh real rows
is refused with chance at most `gate.false_refusal_rate`, however many columns it has.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

CHECKS = ("contract", "fidelity", "privacy", "collapse")


@dataclass(frozen=True)
class Failure:
    check: str  # the Dagster check that owns it: contract, fidelity, privacy, collapse
    indicator: str
    value: float
    threshold: float
    reason: str
    severity: str = "error"  # "error" blocks the batch; "warn" is a soft limit, reported only


@dataclass
class Scorecard:
    passed: bool
    failures: list[Failure] = field(default_factory=list)  # blocking breaches only
    scores: dict[str, float] = field(default_factory=dict)
    warnings: list[Failure] = field(default_factory=list)  # soft-limit breaches
    skipped: dict[str, str] = field(default_factory=dict)  # sub-check -> why it could not be judged

    def to_dict(self) -> dict:
        return {"passed": self.passed, "failures": [asdict(f) for f in self.failures], "scores": self.scores,
                "warnings": [asdict(f) for f in self.warnings], "skipped": self.skipped}

    @classmethod
    def from_dict(cls, d: dict) -> Scorecard:
        return cls(passed=d["passed"], failures=[Failure(**f) for f in d["failures"]], scores=d["scores"],
                   warnings=[Failure(**f) for f in d.get("warnings", [])], skipped=d.get("skipped", {}))

    def failures_for(self, check: str) -> list[Failure]:
        return [f for f in self.failures if f.check == check]

    def warnings_for(self, check: str) -> list[Failure]:
        return [f for f in self.warnings if f.check == check]

    def skipped_for(self, check: str) -> dict[str, str]:
        prefixes = PREFIXES[check]
        return {k: v for k, v in self.skipped.items() if k.startswith(prefixes)}

    def scores_for(self, check: str) -> dict[str, float]:
        """The scores a check owns: fidelity also owns per-column shapes, joint and utility scores."""
        return {k: v for k, v in self.scores.items() if k.startswith(PREFIXES[check])}


PREFIXES = {"fidelity": ("fidelity.", "shape.", "joint.", "utility."), "privacy": ("privacy.",),
            "collapse": ("collapse.",), "contract": ("contract.",), "gate": ("gate.",)}


@dataclass
class Test:
    """One blocking test: refuse when `value` is beyond `threshold` (direction "above"/"below") and `p_value`
    is below the batch's per-test level."""

    check: str
    key: str  # score key of the value
    value: float
    threshold: float
    direction: str
    p_value: float
    reason: str
    honest: str  # what honest data of this size scores, in words


class Judge:
    """Collects scores, tests, warnings and skips while `evaluate` runs; `verdict` applies the tests."""

    def __init__(self, false_refusal_rate: float) -> None:
        self.rate = false_refusal_rate
        self.scores: dict[str, float] = {}
        self.tests: list[Test] = []
        self.failures: list[Failure] = []  # refusals that need no test (wrong dtypes, missing columns)
        self.warnings: list[Failure] = []
        self.skipped: dict[str, str] = {}

    def test(self, check: str, key: str, value: float, threshold: float, direction: str, p_value: float,
             reason: str, honest: str) -> None:
        value = float("nan") if value is None else float(value)
        if not (np.isfinite(value) and np.isfinite(p_value)):
            # a statistic the gate cannot compute is no evidence the batch is fine: refuse with this reason (a
            # sub-check that cannot be judged on honest grounds, such as too few rows, calls `skip` instead)
            what = "statistic" if not np.isfinite(value) else "p-value"
            indicator = key.split(".", 1)[1] if key.startswith(("collapse.", "contract.")) else key
            self.failures.append(Failure(check, indicator, value, float(threshold),
                                         f"{reason}: its {what} is not finite ({value if what == 'statistic' else p_value}), "
                                         "so the batch cannot be judged on it and is not approved"))
            return
        self.scores[key] = value
        self.tests.append(Test(check, key, value, float(threshold), direction, float(p_value), reason, honest))

    def skip(self, key: str, why: str) -> None:
        self.skipped[key] = why

    def refuse(self, check: str, indicator: str, value: float, threshold: float, reason: str) -> None:
        self.failures.append(Failure(check, indicator, float(value), float(threshold), reason))

    def warn_below(self, check: str, key: str, limit: float, reason: str) -> None:
        self._warn(check, key, limit, reason, lambda v: v < limit)

    def warn_above(self, check: str, key: str, limit: float, reason: str) -> None:
        self._warn(check, key, limit, reason, lambda v: v > limit)

    def _warn(self, check: str, key: str, limit: float, reason: str, beyond) -> None:
        value = self.scores.get(key)
        if value is None:
            return
        if not np.isfinite(value):  # a soft limit that cannot be measured says so instead of vanishing
            self.warnings.append(Failure(check, key, float(value), float(limit),
                                         f"{key} is not finite ({value}): it cannot be measured", "warn"))
        elif beyond(value):
            self.warnings.append(Failure(check, key, float(value), float(limit), reason, "warn"))

    def verdict(self) -> Scorecard:
        level = self.rate / max(len(self.tests), 1)
        self.scores["gate.tests"] = float(len(self.tests))
        self.scores["gate.level_per_test"] = level
        for t in self.tests:
            self.scores[f"gate.p.{t.key}"] = t.p_value  # apart from the scores: summaries over columns skip it
            beyond = t.value > t.threshold if t.direction == "above" else t.value < t.threshold
            if beyond and t.p_value <= level:
                indicator = t.key.split(".", 1)[1] if t.key.startswith(("collapse.", "contract.")) else t.key
                self.failures.append(Failure(
                    t.check, indicator, t.value, t.threshold,
                    f"{t.reason} (threshold {t.threshold:.4g}; {t.honest}; p = {t.p_value:.2g} <= {level:.2g}, "
                    "the false-refusal rate shared over all tests)"))
        return Scorecard(passed=not self.failures, failures=self.failures, scores=self.scores,
                         warnings=self.warnings, skipped=self.skipped)
