"""Observe mode (`studies[].gate_mode: observe`): the gate scores every batch but does not guard the chain.

Generation k then learns from generation k-1's batch whatever the gate said, to show what an unguarded chain
does beside a guarded one. The lineage still holds (each batch must descend from the current real_train through
the batches its generator read); only the gate's verdict is set aside, here and nowhere else. The batches are
marked (`Verdict.observed`, from their lineage record), so `require_approved` refuses them for training and the
approved alias whatever their verdict says.
"""

from __future__ import annotations

from dataclasses import replace

from ouroboros.lineage import Chain, Link, walk_chain
from ouroboros.verdict import Verdict


def observed_chain(keys: list[str], verdicts: dict[int, Verdict], real_train_fingerprint: str | None,
                   real_table_version: int | None = None) -> Chain:
    """The chain of generations 0..len(keys)-1 as far as lineage goes, the gate's verdicts set aside."""
    links = []
    for k, key in enumerate(keys):
        v = verdicts.get(k)
        links.append(Link(key, None if v is None else replace(v, passed=True, missing=[], observed=False)))
        if v is None:
            break
    return walk_chain(links, real_train_fingerprint, real_table_version)
