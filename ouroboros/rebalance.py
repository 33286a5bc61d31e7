"""Rebalancing the target: a batch with another class mix than the real table (`study.target_share`), and the
real rows the gate judges it against, reweighted to the same mix.

Why the gate needs the reweighting: a batch with half its rows in a class that is 10% of the real table fails
every shape test (the target's own share, and every column the class shifts) although each class's rows may be
as good as real ones. So a rebalanced batch is judged against a *stratified subsample* of real_train and
real_holdout with exactly the batch's class mix: the largest one the real rows allow, each class's rows chosen
by a seeded draw. Under the null (the generator samples each class as real rows of that class are), the batch and
the stratified real rows come from the same distribution, so every test keeps its stated level; fewer real rows
only cost power (and the limits that depend on size are computed from the sizes actually used).

What is not reweighted, and why:
- privacy: copies and distances are counted against *every* real_train row (a subsample would miss copies of the
  rows it left out) and compared with the whole real_holdout, which is symmetric to real_train;
- the downstream model of `utility` is scored on real_holdout as it is (the task the user has); its real-trained
  baseline is trained on stratified real_train rows, so both models see the same class mix.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from ouroboros.errors import ConfigError

TargetShare = Mapping[str, float]


def _level_text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def resolve_shares(values: pl.Series, target_share: TargetShare, where: str = "study.target_share") -> dict:
    """Every level of the real target -> its share in a rebalanced batch. Levels named in `target_share` get
    their share; the others split what is left in their real proportions. Levels are matched by their text
    (`yes`, `1`, `true`), so YAML keys work for string, integer and boolean targets."""
    if values.dtype.is_float():
        raise ConfigError(f"{where}: the target {values.name!r} is a float column; rebalancing needs classes "
                          "(a categorical, boolean or integer target). Remove target_share or change data.target")
    counts = values.drop_nulls().value_counts(sort=True)
    levels = counts[values.name].to_list()
    real = dict(zip(levels, (counts["count"] / counts["count"].sum()).to_list(), strict=True))
    by_text = {_level_text(v): v for v in levels}
    unknown = [k for k in target_share if _level_text(k) not in by_text]
    if unknown:
        raise ConfigError(f"{where}: {unknown} not a level of {values.name!r} in the real table; its levels are "
                          f"{sorted(by_text)[:20]}")
    named = {by_text[_level_text(k)]: float(v) for k, v in target_share.items()}
    if any(not 0 < v < 1 for v in named.values()):
        raise ConfigError(f"{where}: every share must be between 0 and 1 (exclusive), got {dict(target_share)}")
    left = 1.0 - sum(named.values())
    rest = [v for v in levels if v not in named]
    if left < -1e-9 or (rest and left <= 1e-9) or (not rest and abs(left) > 1e-6):
        raise ConfigError(f"{where}: the shares {dict(target_share)} must sum to less than 1 while levels "
                          f"{rest[:10]} are left to share the rest (or to exactly 1 when every level is named)")
    rest_total = sum(real[v] for v in rest)
    return {v: named[v] if v in named else left * real[v] / rest_total for v in levels}


def class_counts(n: int, shares: Mapping) -> dict:
    """`n` split by `shares` into whole counts that add up to n (largest remainder, ties by level order)."""
    raw = {k: n * s for k, s in shares.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    short = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: counts[k] - raw[k])[:short]:
        counts[k] += 1
    return counts


def stratify(frame: pl.DataFrame, target: str, shares: Mapping, seed: int) -> pl.DataFrame:
    """The largest subsample of `frame` whose target has exactly the mix `shares` (rows with a null target are
    left out), each class's rows drawn with `seed`; row order is kept."""
    have = dict(zip(*frame[target].drop_nulls().value_counts().to_dict(as_series=False).values(), strict=True))
    if any(have.get(k, 0) == 0 for k in shares):
        missing = [k for k in shares if have.get(k, 0) == 0]
        raise ConfigError(f"rebalancing {target!r}: the real rows have no {missing}; a class the real rows lack "
                          "cannot be judged (remove it from study.target_share)")
    total = min(have[k] / s for k, s in shares.items())
    want = class_counts(int(np.floor(total + 1e-9)), shares)
    rng = np.random.default_rng(seed)
    keep = np.zeros(frame.height, dtype=bool)
    column = frame[target]
    for level, n in want.items():
        rows = np.flatnonzero((column == level).fill_null(False).to_numpy())
        keep[rng.choice(rows, size=min(n, rows.size), replace=False)] = True
    return frame.filter(pl.Series(keep))


def sample_rebalanced(generator, n: int, seed: int, target: str, shares: Mapping) -> pl.DataFrame:
    """`n` rows with exactly the class counts of `shares`: each class drawn by the family's conditional sampling
    (`Generator.sample(..., conditions=)`), then shuffled with `seed` so no reader sees the classes in blocks."""
    parts = [generator.sample(k, seed=seed + 104_729 * i, conditions={target: level})
             for i, (level, k) in enumerate(class_counts(n, shares).items()) if k > 0]
    out = pl.concat(parts, how="vertical_relaxed") if parts else generator.sample(0, seed=seed)
    order = np.random.default_rng(seed).permutation(out.height)
    return out[order.tolist()]


def draw_batch(generator, n: int, seed: int, target: str | None, target_share: TargetShare | None,
               real_target: pl.Series | None) -> pl.DataFrame:
    """A study's batch: `generator.sample(n, seed)`, or with `target_share` the rebalanced draw, its shares
    resolved against the real target column (`real_target`, real_train's). The one way every caller (the batch
    asset, the step's own gating, the verifier) draws a batch, so what is gated is what is stored."""
    if not target_share:
        return generator.sample(n, seed=seed)
    if target is None or real_target is None:
        raise ConfigError("study.target_share needs data.target: name the class column to rebalance")
    return sample_rebalanced(generator, n, seed, target, resolve_shares(real_target, target_share))


TRAIN_SALT, HOLDOUT_SALT = 41, 43  # added to the gate's seed: the stratified draws of real_train and real_holdout


def reweighted(frame: pl.DataFrame, target: str | None, target_share: TargetShare | None, seed: int,
               shares_from: pl.DataFrame | None = None) -> pl.DataFrame:
    """`frame` as the gate compares a rebalanced batch with: stratified to the study's class mix (the shares
    resolved against `shares_from`'s target, real_train's by default), or `frame` itself without target_share."""
    if not target_share or target is None or target not in frame.columns:
        return frame
    shares = resolve_shares((shares_from if shares_from is not None else frame)[target], target_share)
    return stratify(frame, target, shares, seed)
