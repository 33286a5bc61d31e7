"""The gate's verdict on one batch: stored beside the batch so any later consumer can re-check it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone

import polars as pl

from ouroboros.canonical import table_digest
from ouroboros.errors import GateRefusal  # noqa: F401 - re-exported: defined in the leaf errors module

FINGERPRINT_PREFIX = "fp2-"  # rule fp/v2: BLAKE2b-256 of ouroboros.canonical.table_digest; v1 (bare sha256
# hex over polars' hash_rows, unstable across polars versions) is recognised only to say why it stopped matching
LEGACY_FINGERPRINT_NOTE = (
    "its stored check records or lineage carry content fingerprints of the old rule fp/v1 (polars hash_rows, "
    "before the canonical encoding fp/v2): they no longer match any batch, so the batch is judged again "
    "(materialise the study / run its asset checks once under this version)")


def fingerprint(df: pl.DataFrame) -> str:
    """Content hash of a frame (column names, dtypes, every value) under rule fp/v2 (`ouroboros.canonical`):
    a replaced or edited batch gets a new one, a polars upgrade does not."""
    return FINGERPRINT_PREFIX + table_digest(df)


def dataset_fingerprint(tables) -> str:
    """Content hash of a dataset of several tables (a mapping name -> frame): each table's fingerprint under its
    name, hashed together, so a change to any table, or a table renamed, gives a new one."""
    parts = {name: fingerprint(df) for name, df in tables.items()}
    return FINGERPRINT_PREFIX + "ds-" + hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(),
                                                        digest_size=32).hexdigest()


def is_legacy_fingerprint(fp: str | None) -> bool:
    """A fingerprint made under rule fp/v1 (by an earlier version of the project)."""
    return isinstance(fp, str) and not fp.startswith(FINGERPRINT_PREFIX)


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
    # lineage of this batch version, recorded when it was made (ouroboros.lineage): what its generator learnt
    # from ({"real_train" or "<study>/batch_g<j>": content fingerprint}) and the real-table version behind it
    parents: dict[str, str] = field(default_factory=dict)
    real_table_version: int | None = None
    note: str = ""  # why stored records did not count, when that is not obvious (records of an old rule)
    # made by a study whose gate observes (gate_mode: observe): `passed` is still the gate's judgement, but the
    # batch never feeds training or an approved alias, whatever it says (its chain ran unguarded)
    observed: bool = False

    def with_lineage(self, lineage: dict | None) -> Verdict:
        """This verdict with the batch's lineage record (None: the batch has none)."""
        if not lineage:
            return self
        return replace(self, parents=dict(lineage.get("parents", {})),
                       real_table_version=lineage.get("real_table_version"),
                       observed=bool(lineage.get("observed", False)))

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
        note = (LEGACY_FINGERPRINT_NOTE if missing and any(is_legacy_fingerprint(r.batch_fingerprint) for r in records)
                else "")
        return cls(asset, fingerprint_, passed, checks, failures, scores, missing, note=note)


def require_approved(verdict: Verdict) -> Verdict:
    """Return the verdict if it approves its batch; otherwise refuse, saying why."""
    if verdict.observed:
        raise GateRefusal(
            f"{verdict.asset}: made by a study whose gate observes (gate_mode: observe): the gate scored it "
            f"({'passed' if verdict.passed else 'failed'}) but did not guard its chain, so it never feeds training "
            "or an approved alias; use a study with gate_mode: block for that")
    if verdict.missing:
        raise GateRefusal(
            f"{verdict.asset}: no passing verdict for this version of the batch: checks {verdict.missing} have not "
            "judged it under the current gate rules and real data (run the batch's asset checks; a re-materialised "
            "batch, or one whose gate settings, target or real data changed, must be checked again)"
            + (f"; {verdict.note}" if verdict.note else "")
        )
    if not verdict.passed:
        failed = [c for c, ok in verdict.checks.items() if not ok]
        reasons = "; ".join(f["reason"] for f in verdict.failures) or "see the check results"
        raise GateRefusal(f"{verdict.asset}: the gate failed this batch ({', '.join(failed)}): {reasons}")
    return verdict


def generator_approvable(record: dict) -> tuple[bool, str]:
    """Whether a generator whose batch passed may carry the registry's approved alias, and why not. A generator
    of an observe-mode study never may; nor one whose batch is a verifier's selection of a larger draw
    (mitigation `verify`): that batch passed, but the generator's own draws were refused or never judged."""
    if record.get("gate_mode") == "observe":
        return False, "its study's gate observes (gate_mode: observe)"
    if record.get("batch_selection"):
        return False, ("its batch is a verifier's selection of a larger draw (mitigation verify): the batch is "
                       "approved, the generator's own draws are not")
    return True, ""
