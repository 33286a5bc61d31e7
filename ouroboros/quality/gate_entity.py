"""Entity-level privacy and utility of a dataset (issue 20): one feature vector per entity.

An entity is a row of the first root table with every row below it. Its feature vector (`entity_frame`): the
root's own columns, and per table below the root the number of its rows, the mean of each numeric column and,
for a sequence whose parent is the root, each numeric column's first and last value and the sequence's length
(last minus first value of `order_by`). Keys are left out (they are regenerated, never modelled). Features are
standardised and one-hot encoded on real_train's entities (`ouroboros.quality.encoding.Encoder`), so a
copied sequence is seen as a copy even when no single row of it is.

Privacy (`entity_privacy`):
- `entity_closer_to_train`: the share of batch entities whose nearest real_train entity is nearer than their
  nearest real_holdout entity. For fresh real entities the nearest of the n_t + n_h reference entities is any
  one of them with equal chance (they are exchangeable), so the honest share is exactly q = n_t / (n_t + n_h)
  (0.5 for equal sizes); ties are broken with chance q. One-sided binomial test against q. The binomial treats
  batch entities as independent given the references; the references' own sampling adds a little variance
  (a Voronoi cell's mass varies), small while the references outnumber the batch sample (measured:
  docs/relational-gate-entity.md). Refused beyond q + max_memorised_share * (1 - q): that is, when more than
  `max_memorised_share` of the batch's entities are nearer their training entity than chance allows.
- `entity_near_copy`: the share of batch entities within `near_copy_distance` real std per numeric feature
  (RMS over the entity's non-null numeric features, every category equal) of a real_train entity, against the
  share real_holdout entities show (Fisher's exact test), as `entity_copy` does for exact copies.

Utility (`entity_utility`): a task that needs the children. A small seeded gradient-boosted model predicts the
dataset's target (a column of the root table) from the other entity features, the children's aggregates
included; trained on the batch (TSTR) and on draws of real_train entities of the same number (TRTR), scored on
the same real_holdout entities (ROC AUC for a class target, macro one-vs-rest for more than two classes; R2
for a numeric one). Null: the batch trains as good a model as real_train entities of its size do, so TSTR is
one more draw from the TRTR scores; the test is a one-sided prediction-interval t test of TSTR against the
`utility_draws` TRTR scores (`stats.shortfall_t_p`). The draws carry the training noise of a sample of that
size; the test entities are the same for every model, so their noise is shared (paired). Also reported: TRTR
without the children's aggregates (root columns only), and the share of the skill over chance that the
children carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from ouroboros.dataset import Dataset, root_keys
from ouroboros.quality.encoding import Encoder
from ouroboros.quality.gate_privacy import nearest_two
from ouroboros.quality.learners import auc
from ouroboros.quality.stats import shortfall_t_p
from ouroboros.schema import ColumnKind, column_kind, infer_schema

ENTITY = "__entity"


def key_columns(ds: Dataset) -> set[str]:
    """Every primary and foreign key column name of the dataset."""
    return {s.key for s in ds.specs.values() if s.key} | {ds.foreign_key(n) for n in ds.order if ds.specs[n].parent}


def _is_number(d: pl.DataType) -> bool:
    return d.is_numeric() or d == pl.Boolean


def entity_frame(ds: Dataset, drop: Sequence[str] = (), children: bool = True) -> pl.DataFrame:
    """One row per entity of the first root table, in the root table's row order: `__entity` (the root's key),
    the root's non-key columns but `drop`, and (with `children`) per table below the root `<t>:n`, `<t>:<c>:mean`
    and, for a sequence whose parent is the root, `<t>:<c>:first`, `<t>:<c>:last` and `<t>:length`."""
    keys = key_columns(ds)
    root = ds.roots()[0]
    base = ds.tables[root]
    out = base.select(pl.col(ds.specs[root].key).alias(ENTITY),
                      *[c for c in base.columns if c not in keys and c not in drop])
    if not children:
        return out
    entity = root_keys(ds)
    for name in ds.order:
        if name == root or ds.root_of(name) != root:
            continue
        spec, df = ds.specs[name], ds.tables[name]
        num = [c for c, d in df.schema.items() if c not in keys and c != spec.order_by and _is_number(d)]
        df = df.with_columns(entity[name].alias(ENTITY))
        aggs = [pl.len().alias(f"{name}:n")] + [pl.col(c).cast(pl.Float64).mean().alias(f"{name}:{c}:mean")
                                                 for c in num]
        if spec.order_by and spec.parent == root:
            df = df.sort(ENTITY, spec.order_by, maintain_order=True)
            o = pl.col(spec.order_by).to_physical().cast(pl.Float64)
            aggs += [pl.col(c).cast(pl.Float64).first().alias(f"{name}:{c}:first") for c in num]
            aggs += [pl.col(c).cast(pl.Float64).last().alias(f"{name}:{c}:last") for c in num]
            aggs.append((o.max() - o.min()).alias(f"{name}:length"))
        per = df.group_by(ENTITY, maintain_order=True).agg(aggs)
        out = out.join(per, on=ENTITY, how="left", maintain_order="left").with_columns(
            pl.col(f"{name}:n").fill_null(0))
    return out


@dataclass
class EntityMatrix:
    """Entity features encoded on real_train's entities: `matrix(frame)` and each row's non-null numeric count."""

    encoder: Encoder | None  # None: no feature at all (every row encodes as one zero)

    @classmethod
    def fit(cls, train: pl.DataFrame) -> EntityMatrix:
        feats = train.drop(ENTITY)
        if feats.width == 0:
            return cls(None)
        return cls(Encoder.fit(feats, infer_schema(feats)))

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        if self.encoder is None:
            return np.zeros((frame.height, 1), dtype=np.float32)
        return self.encoder.matrix(frame)

    def width(self, frame: pl.DataFrame) -> np.ndarray:
        """Per row, how many numeric features are known (the near-copy radius grows with it)."""
        cols = list(self.encoder.numeric) if self.encoder else []
        if not cols:
            return np.ones(frame.height)
        known = frame.select(pl.sum_horizontal([pl.col(c).cast(pl.Float64).fill_nan(None).is_not_null()
                                                for c in cols]))
        return np.maximum(known.to_series().to_numpy().astype(float), 1.0)


def align(frame: pl.DataFrame, like: pl.DataFrame) -> pl.DataFrame:
    """`frame` with `like`'s columns in its order; a column the frame lacks is all null (a missing feature)."""
    return frame.select([pl.col(c) if c in frame.columns else pl.lit(None, dtype=d).alias(c)
                         for c, d in like.schema.items()])


def _take(frame: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    return frame if frame.height <= n else frame[np.sort(rng.choice(frame.height, n, replace=False))]


@dataclass
class Tested:
    """One tested statistic, before the shared alpha decides: refused when gap > limit and p < alpha."""

    name: str
    statistic: float
    real: float | None
    limit: float
    p_value: float | None
    gap: float
    detail: str = ""


def closer_flags(to_train: np.ndarray, to_holdout: np.ndarray, q: float, rng: np.random.Generator) -> np.ndarray:
    """True where an entity is nearer to train; a tie counts as nearer to train with chance q (the honest share)."""
    tie = to_train == to_holdout
    return (to_train < to_holdout) | (tie & (rng.random(len(to_train)) < q))


def closer_p(k: int, n: int, q: float) -> float:
    """One-sided exact binomial p of k or more of n entities nearer to train, each with chance q."""
    if n == 0:
        return 1.0
    return float(stats.binomtest(int(k), int(n), q, alternative="greater").pvalue)


def copy_excess_p(x: int, n_x: int, y: int, n_y: int) -> float:
    """Fisher's exact one-sided p that the share x / n_x exceeds y / n_y."""
    if n_x == 0 or n_y == 0:
        return 1.0
    return float(stats.fisher_exact([[x, n_x - x], [y, n_y - y]], alternative="greater").pvalue)


def entity_privacy(fb: pl.DataFrame, ft: pl.DataFrame, fh: pl.DataFrame, queries: int, references: int,
                   near_copy_distance: float, max_memorised_share: float, max_copy_excess: float,
                   rng: np.random.Generator) -> list[Tested]:
    """`entity_closer_to_train` and `entity_near_copy` on entity frames of the batch, real_train, real_holdout."""
    if min(fb.height, ft.height, fh.height) == 0:
        return []
    enc = EntityMatrix.fit(ft)
    fb, fh = align(fb, ft), align(fh, ft)
    qb, qh = _take(fb, queries, rng), _take(fh, queries, rng)
    rt, rh = _take(ft, references, rng), _take(fh, references, rng)
    xb, xt, xh = enc.matrix(qb), enc.matrix(rt), enc.matrix(rh)
    to_train = nearest_two(xb, xt)[:, 0]
    q = len(xt) / (len(xt) + len(xh))
    k = int(closer_flags(to_train, nearest_two(xb, xh)[:, 0], q, rng).sum())
    share = k / len(xb)
    out = [Tested("entity_closer_to_train", share, q, max_memorised_share * (1 - q), closer_p(k, len(xb), q),
                  share - q,
                  f"{k} of {len(xb)} batch entities are nearer to one of {len(xt)} real_train entities than to one of "
                  f"{len(xh)} real_holdout entities (honest share {q:.3f}; refused beyond "
                  f"{q + max_memorised_share * (1 - q):.3f}, i.e. more than {max_memorised_share:.0%} of entities "
                  f"nearer their training entity than chance allows)")]
    # near copies: the query samples of batch and holdout, each against the same real_train references
    h_train = nearest_two(enc.matrix(qh), xt)[:, 0]
    near_b = int((to_train <= near_copy_distance ** 2 * enc.width(qb)).sum())
    near_h = int((h_train <= near_copy_distance ** 2 * enc.width(qh)).sum())
    sb, sh = near_b / len(qb), near_h / len(qh)
    out.append(Tested("entity_near_copy", sb, sh, max_copy_excess, copy_excess_p(near_b, len(qb), near_h, len(qh)),
                      sb - sh,
                      f"{near_b} of {len(qb)} batch entities lie within {near_copy_distance} real std per numeric "
                      f"feature (RMS, every category equal) of one of {len(xt)} real_train entities (real_holdout: "
                      f"{near_h} of {len(qh)})"))
    return out


# -- utility ----------------------------------------------------------------------------------------------------


def _model(classes: int | None, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    kw = dict(max_iter=80, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0,
              early_stopping=False, random_state=seed)
    return HistGradientBoostingClassifier(**kw) if classes else HistGradientBoostingRegressor(**kw)


def class_auc(proba: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC of class 1 for two classes; for more, the mean one-vs-rest AUC over the classes y shows."""
    if proba.shape[1] == 2:
        return auc(proba[:, 1], (y == 1).astype(int))
    shown = [k for k in range(proba.shape[1]) if 0 < (y == k).sum() < len(y)]
    return float(np.mean([auc(proba[:, k], (y == k).astype(int)) for k in shown])) if shown else 0.5


def r2(pred: np.ndarray, y: np.ndarray) -> float:
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def fit_score(x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, classes: int | None,
              seed: int) -> float:
    """A small seeded HistGradientBoosting model fitted on (x_fit, y_fit), scored on the test entities: AUC for
    `classes` classes (a fit on one class predicts nothing: 0.5), else R2. One thread (see `single_thread`)."""
    from threadpoolctl import threadpool_limits

    if classes and np.unique(y_fit).size < 2:
        return 0.5
    model = _model(classes, seed)
    with threadpool_limits(limits=1):
        model.fit(x_fit, y_fit)
        if not classes:
            return r2(model.predict(x_test), y_test)
        proba = np.zeros((len(x_test), classes))
        proba[:, model.classes_.astype(int)] = model.predict_proba(x_test)
    return class_auc(proba, y_test)


def _target_values(frame: pl.DataFrame, target: str, classes: list[str] | None) -> tuple[pl.DataFrame, np.ndarray]:
    """The frame's rows with a usable target, and the target as class indices (classes given) or floats."""
    s = frame[target]
    if classes is None:
        y = s.cast(pl.Float64).fill_nan(None).to_numpy()
        ok = np.isfinite(y)
        return frame.filter(pl.Series(ok)), y[ok]
    lookup = {c: i for i, c in enumerate(classes)}
    idx = np.array([lookup.get(v, -1) if v is not None else -1 for v in s.cast(pl.String).to_list()])
    ok = idx >= 0
    return frame.filter(pl.Series(ok)), idx[ok]


@dataclass
class UtilityResult:
    tested: Tested | None
    skipped: str = ""  # why the check was not run


def entity_utility(batch: Dataset, real_train: Dataset, real_holdout: Dataset, entities: int, draws: int,
                   min_entities: int, min_skill: float, max_drop: float, seed: int) -> UtilityResult:
    """TSTR against TRTR on entity features (children's aggregates included); see the module's docstring."""
    if real_train.target is None:
        return UtilityResult(None, "the dataset names no target (data.target): there is no task to keep")
    table, target = real_train.target
    root = real_train.roots()[0]
    if table != root:
        return UtilityResult(None, f"the target {table}.{target} is not on the root table {root!r}: an entity has "
                                   "several values of it, and the entity-level task needs one per entity")
    col = real_train.tables[root][target]
    kind = column_kind(target, col.dtype)
    shown = col.drop_nulls().cast(pl.String).unique().sort().to_list()
    classes = shown if kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN) or (
        kind == ColumnKind.INTEGER and len(shown) <= 2) else None
    if classes is not None and len(shown) < 2:
        return UtilityResult(None, f"real_train shows {len(shown)} class of {target}: nothing to predict")
    rng = np.random.default_rng([seed, 21])
    sides = {}
    like = entity_frame(real_train)
    for side, ds in (("batch", batch), ("train", real_train), ("test", real_holdout)):
        full = align(entity_frame(ds), like).select(pl.exclude(target), pl.col(target).alias("__y"))
        sides[side] = _target_values(full, "__y", classes)
    if min(len(sides["batch"][1]), len(sides["test"][1]), len(sides["train"][1])) < min_entities:
        return UtilityResult(None, f"fewer than {min_entities} entities with a value of {target} (batch "
                                   f"{len(sides['batch'][1])}, real_holdout {len(sides['test'][1])})")
    n_fit = min(len(sides["batch"][1]), entities)
    test_frame, y_test = sides["test"]
    if test_frame.height > entities:
        pick = np.sort(rng.choice(test_frame.height, entities, replace=False))
        test_frame, y_test = test_frame[pick], y_test[pick]
    if (np.unique(y_test).size < 2) if classes else (np.var(y_test) <= 0):
        return UtilityResult(None, f"{target} is constant on the real_holdout entities: no score can be measured")
    metric = "AUC" if classes else "R2"
    chance = 0.5 if classes else 0.0
    n_classes = len(classes) if classes else None
    train_frame, y_train = sides["train"]
    root_cols = [c for c in entity_frame(real_train, drop=(target,), children=False).columns if c != ENTITY]
    full_enc = EntityMatrix.fit(train_frame.drop("__y"))
    root_enc = EntityMatrix.fit(train_frame.select(ENTITY, *root_cols))
    x_test, xr_test = full_enc.matrix(test_frame), root_enc.matrix(test_frame)
    x_train, xr_train = full_enc.matrix(train_frame), root_enc.matrix(train_frame)
    b_frame, y_b = sides["batch"]
    if b_frame.height > n_fit:
        pick = np.sort(rng.choice(b_frame.height, n_fit, replace=False))
        b_frame, y_b = b_frame[pick], y_b[pick]
    tstr = fit_score(full_enc.matrix(b_frame), y_b, x_test, y_test, n_classes, seed)
    full, roots = [], []
    for i in range(draws):
        idx = rng.integers(0, len(y_train), n_fit)  # real_train entities of the batch's number, with replacement
        full.append(fit_score(x_train[idx], y_train[idx], x_test, y_test, n_classes, seed + i))
        roots.append(fit_score(xr_train[idx], y_train[idx], xr_test, y_test, n_classes, seed + i)
                     if root_cols else chance)
    full_a, trtr, trtr_root = np.array(full), float(np.mean(full)), float(np.mean(roots))
    sd = float(full_a.std(ddof=1))
    if trtr - chance < min_skill:
        return UtilityResult(None, f"models trained on {n_fit} real_train entities predict {target} with {metric} "
                                   f"{trtr:.3f} (chance {chance}): no learnable relation to keep at this size")
    children_share = (trtr - trtr_root) / (trtr - chance)
    detail = (f"{metric} of {target} on {len(y_test)} real_holdout entities: trained on {n_fit} batch entities "
              f"{tstr:.3f}, on {n_fit} real_train entities {trtr:.3f} (sd {sd:.3f} over {draws} draws); without the "
              f"children's aggregates real entities score {trtr_root:.3f}, so the children carry "
              f"{children_share:.0%} of the skill over chance ({chance})")
    return UtilityResult(Tested("entity_utility", tstr, trtr, max_drop, shortfall_t_p(tstr, full_a), trtr - tstr,
                                detail))
