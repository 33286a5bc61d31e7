"""The split of a dataset by entity (issue 20): a root row and all its descendants fall on the same side.

An entity is a row of a root table with every row below it (a patient with their visits). Its side is decided
by the flat split's own rule (`ouroboros.split.row_unit`, the canonical BLAKE2b hash salted with the seed) over
the root table's key: the root's key alone decides, so an entity keeps its side whatever rows are added to any
table later, and a child row follows the entity its foreign keys lead to. A flat table of one with a key is
split exactly as `train_holdout_split(df, fraction, seed, key)` splits it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ouroboros.dataset import Dataset, root_keys
from ouroboros.errors import SplitError
from ouroboros.split import HASH, row_unit


def entity_holdout(ds: Dataset, holdout_fraction: float, seed: int, rule: str = HASH) -> dict[str, np.ndarray]:
    """Per table, True for the rows whose entity is held out."""
    if not 0.0 < holdout_fraction < 1.0:
        raise SplitError(f"data.holdout_fraction must be between 0 and 1 (exclusive), got {holdout_fraction}")
    roots = root_keys(ds)
    out = {}
    for name in ds.order:
        spec = ds.specs[name]
        if spec.parent is None:
            if spec.key is None:
                raise SplitError(f"table {name!r} needs a key to be split by entity")
            out[name] = row_unit(ds.tables[name], seed, spec.key, rule) < holdout_fraction
            continue
        entity = roots[name]
        if entity.null_count():
            raise SplitError(f"table {name!r}: {entity.null_count()} row(s) have no parent (orphans); landing "
                             "quarantines them before the split")
        root = ds.root_of(name)
        frame = pl.DataFrame({ds.specs[root].key: entity})
        out[name] = row_unit(frame, seed, ds.specs[root].key, rule) < holdout_fraction
    return out


def entity_split(ds: Dataset, holdout_fraction: float, seed: int, rule: str = HASH) -> tuple[Dataset, Dataset]:
    """(train, holdout) datasets; each keeps whole entities, row order kept within each table."""
    masks = entity_holdout(ds, holdout_fraction, seed, rule)
    train = {n: ds.tables[n].filter(pl.Series(~masks[n])) for n in ds.order}
    hold = {n: ds.tables[n].filter(pl.Series(masks[n])) for n in ds.order}
    for side, tables in (("real_train", train), ("real_holdout", hold)):
        for root in ds.roots():
            if tables[root].height == 0:
                raise SplitError(f"the entity split left {side} without entities of table {root!r} "
                                 f"({ds.tables[root].height} entities, holdout_fraction {holdout_fraction}): "
                                 "add entities or change data.holdout_fraction")
    return ds.replace(train), ds.replace(hold)
