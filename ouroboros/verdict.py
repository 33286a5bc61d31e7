"""The gate's verdict on one batch: stored beside the batch so any later consumer can re-check it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import polars as pl


def fingerprint(df: pl.DataFrame) -> str:
    """Content hash of a frame (columns, dtypes, every value): a replaced or edited batch gets a new one."""
    h = hashlib.sha256()
    h.update(repr([(c, str(t)) for c, t in df.schema.items()]).encode())
    h.update(df.hash_rows(seed=0).to_numpy().tobytes())
    return h.hexdigest()


GATE_CHECKS = ("contract", "fidelity", "privacy", "collapse")


def rule_set_hash(gate: dict) -> str:
    """Hash of the gate's settings (thresholds, false-refusal rate, subsample sizes, seed): the rules that judged."""
    return hashlib.sha256(json.dumps(gate, sort_keys=True, default=str).encode()).hexdigest()[:16]


def rules_key(gate: dict, target: str | None, real_train_fingerprint: str, real_holdout_fingerprint: str) -> str:
    """What a verdict depends on besides the batch: the rule set, the target and the real data it was judged
    against. A stored verdict counts only for the same key; change any part and the batch is judged again."""
    parts = {"rules": rule_set_hash(gate), "target": target, "real_train": real_train_fingerprint,
             "real_holdout": real_holdout_fingerprint}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


@dataclass
class CheckRecord:
    """One blocking check's judgement of one version of a batch (one file each, so checks never race)."""

    check: str
    batch_fingerprint: str
    passed: bool
    failures: list[dict] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    warnings: list[dict] = field(default_factory=list)  # soft-limit breaches: reported, never blocking
    rules_key: str | None = None  # rule set, target and real data the batch was judged under (`rules_key`)
    rule_set: str | None = None  # `rule_set_hash` of the gate settings

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    """All gate checks of a batch taken together; `passed` only if every one passed this exact batch."""

    asset: str
    batch_fingerprint: str | None
    passed: bool
    checks: dict[str, bool]
    failures: list[dict] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @classmethod
    def combine(cls, asset: str, records: list[CheckRecord], fingerprint_: str | None,
                required: tuple[str, ...] = GATE_CHECKS, rules: str | None = None) -> Verdict:
        """Judge `fingerprint_` from the check records; a record of another batch version, or (given `rules`)
        one made under other rules, target or real data, does not count."""
        current = {r.check: r for r in records if r.batch_fingerprint == fingerprint_
                   and (rules is None or r.rules_key == rules)}
        missing = [c for c in required if c not in current]
        failures = [f for r in current.values() for f in r.failures]
        scores = {k: v for r in current.values() for k, v in r.scores.items()}
        checks = {c: current[c].passed for c in required if c in current}
        passed = not missing and all(checks.values())
        return cls(asset, fingerprint_, passed, checks, failures, scores, missing)


class GateRefusal(RuntimeError):
    """A batch without a passing verdict was offered to training; the message says which and why."""


def require_approved(verdict: Verdict) -> Verdict:
    """Return the verdict if it approves its batch; otherwise refuse, saying why."""
    if verdict.missing:
        raise GateRefusal(
            f"{verdict.asset}: no passing verdict for this version of the batch: checks {verdict.missing} have not "
            "judged it under the current gate rules and real data (run the batch's asset checks; a re-materialised "
            "batch, or one whose gate settings, target or real data changed, must be checked again)"
        )
    if not verdict.passed:
        failed = [c for c, ok in verdict.checks.items() if not ok]
        reasons = "; ".join(f["reason"] for f in verdict.failures) or "see the check results"
        raise GateRefusal(f"{verdict.asset}: the gate failed this batch ({', '.join(failed)}): {reasons}")
    return verdict
