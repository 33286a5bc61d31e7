"""Seeded train / holdout split; the holdout is the real yardstick no generator ever sees."""

from __future__ import annotations

import numpy as np
import polars as pl


def train_holdout_split(
    df: pl.DataFrame, holdout_fraction: float, seed: int, stratify: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows at random (stratified on `stratify` if given) into (train, holdout)."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be between 0 and 1 (exclusive), got {holdout_fraction}")
    if df.height < 2:
        raise ValueError(f"cannot split a table of {df.height} row(s) into train and holdout")
    rng = np.random.default_rng(seed)
    is_holdout = np.zeros(df.height, dtype=bool)
    groups = (
        [np.arange(df.height)]
        if stratify is None
        # fixed names on a two-column frame: no user column name can collide with the row index
        else [np.asarray(idx) for idx in df.select(pl.col(stratify).alias("key")).with_row_index("row")
              .group_by("key", maintain_order=True).agg(pl.col("row"))["row"].to_list()]
    )
    for idx in groups:
        take = int(round(len(idx) * holdout_fraction))
        if len(idx) >= 2:
            take = min(max(take, 1), len(idx) - 1)  # every class on both sides where possible
        is_holdout[rng.permutation(idx)[:take]] = True
    mask = pl.Series(is_holdout)
    return df.filter(~mask), df.filter(mask)
