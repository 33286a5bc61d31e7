"""A study's chain as stored in the lake, walked by `ouroboros.lineage`: the one place training_set, later
generators and the report learn which batches descend from the current real_train."""


from dataclasses import dataclass, field

import polars as pl

from assets.common import batch_key, key_text
from ouroboros.lineage import Chain, Link, Refusal, walk_chain
from ouroboros.verdict import Verdict, fingerprint
from resources import LakeResource


@dataclass
class StoredChain:
    chain: Chain
    batches: dict[int, pl.DataFrame] = field(default_factory=dict)  # every stored batch read, by generation
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    real_train_fingerprint: str | None = None


def read_chain(lake: LakeResource, study: str, generations: int,
               real_train: pl.DataFrame | None = None, rules: str | None = None) -> StoredChain:
    """Walk generations 0..generations-1 of `study` against the stored (or given) real_train; with `rules`
    (`LakeResource.current_rules`), only verdicts made under those gate settings and real data count."""
    if real_train is None:
        real_train = lake.read_asset_table(["real_train"])
    real_fp = fingerprint(real_train) if real_train is not None else None
    out = StoredChain(Chain(), real_train_fingerprint=real_fp)
    links = []
    for k in range(generations):
        key = batch_key(study, k)
        stored = lake.read_batch_with_verdict(key.path, rules=rules)
        if stored is not None:
            out.batches[k], out.verdicts[k] = stored
        links.append(Link(key_text(key), stored[1] if stored else None))
        if stored is None:
            break  # nothing after a missing batch can be accepted
    out.chain = walk_chain(links, real_fp, lake.real_table_version())
    return out


def gate_refusal(stored: StoredChain, generation: int) -> Refusal | None:
    """The gate's refusal of a batch that generation `generation` would learn from, directly or through its
    ancestors: every check judged that batch under today's rules and at least one refused it. Such a generation is
    not made: an outcome, not an error. None when the chain is accepted up to `generation`, and also when the
    reason is another one (a batch not judged under today's rules, a stale lineage): those stay errors the user
    must act on."""
    refusal = stored.chain.refusal
    if refusal is None or refusal.kind != "gate" or refusal.generation >= generation:
        return None
    verdict = stored.verdicts.get(refusal.generation)
    return refusal if verdict is not None and not verdict.missing else None
