"""Mitigation `verify`: draw more rows than the batch needs and keep the rows a verifier judges real-like.

The verifier is a real-vs-synthetic classifier (gradient-boosted trees on the gate's encoding) trained on
real_train against a SEPARATE draw of the same generator (its own seed), never on real_holdout, so the final
judge stays independent of the selection, and the selected batch is gated again on real_holdout.

How rows are kept. A hard cut (the third scored most real-like) distorts even a perfect generator: fed fresh
real rows, the classifier fits noise, and keeping its top third concentrates the batch in whatever regions the
noise favoured. So the rows are kept in proportion to the classifier's odds p/(1-p), an estimate of the
density ratio real/synthetic (sampling-importance-resampling, without replacement): where the generator
over-produces, rows are thinned; where it under-produces, kept. Fed fresh real rows the odds are near 1
everywhere and the selection is near uniform, so the gate keeps its level (tests/test_mitigation.py). What
selection cannot do is make rows the generator never draws: a dropped category stays dropped, and a target
relationship the generator lost is at best thinned towards the real one, so such batches are still refused.

The selection is reproducible from plain data (`Selection`: the draw's size and the kept row positions), so
the batch asset re-draws the same rows the step gated (`draw_selected`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from ouroboros.quality.encoding import Encoder
from ouroboros.schema import infer_schema

VERIFY_FACTOR = 3  # rows drawn per row kept
VERIFIER_SEED_OFFSET = 104_729  # the verifier's separate draw: never the batch's own rows
VERIFIER_ROWS = 5_000  # at most this many rows per side train the verifier
MAX_ODDS = 20.0  # a row's weight is capped: one outlier score must not take the batch


@dataclass(frozen=True)
class Selection:
    draw_rows: int  # rows drawn with the batch seed
    index: np.ndarray  # positions kept, increasing
    effective_share: float  # Kish effective sample size of the weights over the draw (1: uniform, no selection)

    def to_dict(self) -> dict:
        return {"draw_rows": int(self.draw_rows), "index": [int(i) for i in self.index],
                "effective_share": round(float(self.effective_share), 4), "factor": VERIFY_FACTOR}


def draw_selected(generator, rows: int, seed: int, selection: dict | None = None) -> pl.DataFrame:
    """The batch: `rows` rows sampled with `seed`, or, with a stored selection, the selected rows of its draw."""
    if not selection:
        return generator.sample(rows, seed=seed)
    index = selection["index"]
    if len(index) != rows:
        raise ValueError(f"the stored batch selection keeps {len(index)} rows but the batch needs {rows}: "
                         "studies[].rows changed since the generator was fitted; re-materialise the generation")
    return generator.sample(int(selection["draw_rows"]), seed=seed)[list(index)]


def _subsample(df: pl.DataFrame, rows: int, rng: np.random.Generator) -> pl.DataFrame:
    return df if df.height <= rows else df[np.sort(rng.choice(df.height, rows, replace=False)).tolist()]


def select(generator, rows: int, seed: int, real_train: pl.DataFrame, *, target: str | None = None,
           id_columns: Sequence[str] = (), factor: int = VERIFY_FACTOR,
           rule: str = "odds") -> tuple[pl.DataFrame, Selection]:
    """Draw `factor * rows` rows with `seed` and keep `rows` of them by the verifier's odds (module docstring);
    `rule="top"`: the hard cut (the rows scored most real-like), kept for comparison only."""
    if rule not in ("odds", "top"):
        raise ValueError(f"selection rule must be 'odds' or 'top', got {rule!r}")
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng([seed, 0x5E1])
    draw = generator.sample(rows * factor, seed=seed)
    side = min(real_train.height, VERIFIER_ROWS)
    separate = generator.sample(side, seed=seed + VERIFIER_SEED_OFFSET)
    real = _subsample(real_train, side, rng)
    schema = infer_schema(real_train, target=target, id_columns=id_columns)
    exclude = tuple(schema.identifiers())  # identifiers and free text: regenerated, never judged
    enc = Encoder.fit(real_train, schema, exclude=exclude)
    x = np.concatenate([enc.matrix(real), enc.matrix(separate)])
    y = np.r_[np.ones(real.height), np.zeros(separate.height)]
    # shallow, regularised trees with large leaves: the verifier must learn where the generator is wrong, not
    # memorise real_train rows (which would select near copies)
    model = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.1, max_leaf_nodes=15,
                                           min_samples_leaf=max(20, len(x) // 50), l2_regularization=1.0,
                                           early_stopping=False, random_state=seed % (2**32))
    with threadpool_limits(limits=1):
        model.fit(x, y)
        p = model.predict_proba(enc.matrix(draw))[:, 1]
    # balanced sides: the odds estimate the density ratio real/synthetic (up to a constant, which cancels)
    weights = np.clip(p / np.clip(1 - p, 1e-6, None), 1e-9, MAX_ODDS)
    if rule == "top":
        keep = np.sort(np.argsort(-p, kind="stable")[:rows])
    else:
        keep = np.sort(rng.choice(draw.height, size=rows, replace=False, p=weights / weights.sum()))
    ess = weights.sum() ** 2 / (weights ** 2).sum() / len(weights)
    return draw[keep.tolist()], Selection(draw.height, keep, float(ess))
