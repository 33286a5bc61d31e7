"""The gate's verdict on one batch: stored beside the batch so any later consumer can re-check it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone

import polars as pl


def fingerprint(df: pl.DataFrame) -> str:
    """Content hash of a frame (columns, dtypes, every value): a replaced or edited batch gets a new one."""
    h = hashlib.sha256()
    h.update(repr([(c, str(t)) for c, t in df.schema.items()]).encode())
    h.update(df.hash_rows(seed=0).to_numpy().tobytes())
    return h.hexdigest()


GATE_CHECKS = ("contract", "fidelity", "privacy", "collapse")


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
    # lineage of this batch version, recorded when it was made (ouroboros.lineage): what its generator learnt
    # from ({"real_train" or "<study>/batch_g<j>": content fingerprint}) and the real-table version behind it
    parents: dict[str, str] = field(default_factory=dict)
    real_table_version: int | None = None

    def with_lineage(self, lineage: dict | None) -> Verdict:
        """This verdict with the batch's lineage record (None: the batch has none)."""
        if not lineage:
            return self
        return replace(self, parents=dict(lineage.get("parents", {})),
                       real_table_version=lineage.get("real_table_version"))

    @classmethod
    def combine(cls, asset: str, records: list[CheckRecord], fingerprint_: str | None,
                required: tuple[str, ...] = GATE_CHECKS) -> Verdict:
        """Judge `fingerprint_` from the check records; a record of another batch version does not count."""
        current = {r.check: r for r in records if r.batch_fingerprint == fingerprint_}
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
            "judged it (run the batch's asset checks; a re-materialised batch must be checked again)"
        )
    if not verdict.passed:
        failed = [c for c, ok in verdict.checks.items() if not ok]
        reasons = "; ".join(f["reason"] for f in verdict.failures) or "see the check results"
        raise GateRefusal(f"{verdict.asset}: the gate failed this batch ({', '.join(failed)}): {reasons}")
    return verdict
