"""Lineage of a study's chain: a batch counts only if every ancestor leads back to the current real_train.

When a batch is made, its lineage is recorded with it, keyed by its content fingerprint: the parents its
generator learnt from (`real_train` and/or earlier batches, each by content fingerprint) and the real-table
version behind them. `walk_chain` accepts generation k only when

1. the batch exists and its lineage is recorded;
2. every parent is either the current real_train (same fingerprint) or an earlier batch of this chain that
   was itself accepted, with the fingerprint stored now (a re-made parent makes its children stale);
3. the gate approved exactly this version of the batch.

Every accepted batch therefore descends, parent by parent, from today's real_train. The walk stops at the
first batch it refuses: later generations learnt from it (or from its predecessors) and are not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ouroboros.verdict import GateRefusal, Verdict, require_approved

REAL_TRAIN = "real_train"


@dataclass(frozen=True)
class Link:
    """Generation k's batch as stored now: its key and the verdict on its current version (None: not made)."""

    key: str
    verdict: Verdict | None


@dataclass(frozen=True)
class Refusal:
    generation: int
    key: str
    kind: str  # "missing" (not made), "lineage" (stale or unknown parents), "gate" (not approved)
    reason: str


@dataclass
class Chain:
    accepted: list[int] = field(default_factory=list)  # generations 0..j, every one descending from real_train
    refusal: Refusal | None = None  # the first generation refused, if any

    def require(self, generation: int, key: str) -> None:
        """Refuse (GateRefusal) unless `generation` is accepted."""
        if generation in self.accepted:
            return
        if self.refusal is not None and self.refusal.generation <= generation:
            why = self.refusal.reason if self.refusal.generation == generation else (
                f"{key} descends from {self.refusal.key}, which is refused: {self.refusal.reason}")
            raise GateRefusal(why)
        raise GateRefusal(f"{key}: not part of the chain")


def walk_chain(links: list[Link], real_train_fingerprint: str | None,
               real_table_version: int | None = None) -> Chain:
    """Accept generations in order while each batch's whole parent chain leads back to the current real_train."""
    chain = Chain()
    accepted: dict[str, str] = {}
    for k, link in enumerate(links):
        refusal = _problem(k, link, accepted, real_train_fingerprint, real_table_version)
        if refusal is not None:
            chain.refusal = refusal
            break
        chain.accepted.append(k)
        accepted[link.key] = link.verdict.batch_fingerprint
    return chain


def _problem(k: int, link: Link, accepted: dict[str, str], real_fp: str | None,
             real_version: int | None) -> Refusal | None:
    verdict = link.verdict
    if verdict is None or verdict.batch_fingerprint is None:
        return Refusal(k, link.key, "missing", f"{link.key}: the batch has not been materialised")
    if not verdict.parents:
        why = verdict.note or "made before lineage was kept, or written by hand"
        return Refusal(k, link.key, "lineage", f"{link.key}: no lineage is recorded for this version of the batch "
                       f"({why}): re-materialise the study")
    made_from = (f" (made from real table version {verdict.real_table_version})"
                 if verdict.real_table_version is not None else "")
    # real_train first: "made from an earlier table" is the more telling reason when both apply
    for parent, fp in sorted(verdict.parents.items(), key=lambda p: p[0] != REAL_TRAIN):
        if parent == REAL_TRAIN:
            if real_fp is None:
                return Refusal(k, link.key, "lineage", f"{link.key}: real_train has not been materialised")
            if fp != real_fp:
                was = (f" of real table version {verdict.real_table_version}"
                       if verdict.real_table_version is not None else "")
                now = f" (version {real_version})" if real_version is not None else ""
                return Refusal(k, link.key, "lineage", f"{link.key}: made from the real_train{was}, not the current "
                               f"one{now}; re-materialise the study on the current real data")
        elif parent not in accepted:
            return Refusal(k, link.key, "lineage", f"{link.key}: its parent {parent} is not an accepted batch of "
                           "this chain")
        elif accepted[parent] != fp:
            return Refusal(k, link.key, "lineage", f"{link.key}: its parent {parent} has been re-made since its "
                           f"generator learnt from it{made_from}; re-materialise this generation")
    try:
        require_approved(verdict)
    except GateRefusal as exc:
        return Refusal(k, link.key, "gate", str(exc))
    return None
