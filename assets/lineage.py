"""A study's chain as stored in the lake, walked by `ouroboros.lineage`: the one place training_set, later
generators and the report learn which batches descend from the current real_train."""


from dataclasses import dataclass, field

import polars as pl

from assets.common import batch_key, key_text
from ouroboros.lineage import Chain, Link, walk_chain
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
