"""Utility family of the scorecard: does a model trained on the batch predict the target on real_holdout as
well as one trained on real rows of the same number? Skill is 1 - loss / loss of the constant prediction
(log-loss for a categorical target, squared error for a numeric one: R2). Honest batches are bootstrap draws of
real_train of the batch's size, each fitted and scored the same way."""

from __future__ import annotations

import numpy as np
import polars as pl

from ouroboros.config import GateConfig
from ouroboros.quality.encoding import Encoder, numeric_values
from ouroboros.quality.fidelity import NUMERIC_KINDS
from ouroboros.quality.gate_fidelity import sample
from ouroboros.quality.judge import Failure, Judge
from ouroboros.quality.learners import linear_utility
from ouroboros.quality.stats import shortfall_t_p
from ouroboros.schema import ColumnKind, TableSchema

UTILITY_DRAWS = 6  # models fitted on bootstrap draws of real_train: the honest spread of the skill
MIN_SKILL = 0.02  # real rows of the batch's size must predict at least this well for utility to be judged
MIN_ROWS = 100  # below this a linear model's skill swings too much to judge a batch by


def score_utility(j: Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None,
                  schema: TableSchema, target: str, config: GateConfig) -> None:
    key = "utility.skill_retention"
    j.scores["utility.rows"] = float(min(syn.height, config.utility_rows))  # shown even when skipped
    if holdout is None or holdout.height < MIN_ROWS:
        j.skip(key, f"real_holdout has fewer than {MIN_ROWS} rows to test the models on")
        return
    spec = schema.column(target)
    if spec.kind not in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN) and spec.kind not in NUMERIC_KINDS:
        j.skip(key, f"target {target} is of kind {spec.kind.value}")
        return
    encoder = Encoder.fit(train, schema, exclude=(target,))
    categorical = spec.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)
    known = pl.col(target).is_not_null()
    if syn[target].dtype.is_float():
        known = known & pl.col(target).is_finite()  # non-finite targets are refused by the contract family
    if categorical:
        classes = list(spec.categories)
        if len(classes) < 2:
            j.skip(key, f"target {target} has one class in real_train ({classes}): a constant prediction is "
                        "already perfect, there is no skill to keep")
            return
        # rows of a level real_train never showed have no class to learn or score: they are left out and named
        # (never mapped to another class); whether the batch shows such levels beyond noise is the contract
        # family's `categories.<target>` test
        in_classes = pl.col(target).cast(pl.String).is_in(pl.Series(classes, dtype=pl.String).implode())
        for side, df in (("batch", syn), ("holdout", holdout)):
            odd = df.filter(known & ~in_classes)[target].cast(pl.String)
            j.scores[f"utility.unknown_target_rows.{side}"] = float(odd.len())
            if odd.len() and side == "batch":
                levels = odd.unique().sort().head(5).to_list()
                j.warnings.append(Failure(
                    "fidelity", f"utility.unknown_target_levels.{target}", float(odd.len()), 0.0,
                    f"{odd.len()} batch row(s) have target levels real_train never showed ({levels}); they are left "
                    "out of the utility model", "warn"))
        known = known & in_classes
    frames = {name: df.filter(known) for name, df in
              (("syn", syn), ("train", train), ("test", holdout))}
    rows = min(frames["syn"].height, config.utility_rows)
    if rows < MIN_ROWS or frames["train"].height < MIN_ROWS or frames["test"].height < MIN_ROWS:
        j.skip(key, f"fewer than {MIN_ROWS} rows with a target value (batch {frames['syn'].height})")
        return
    if categorical and (shown := frames["train"][target].n_unique()) < 2:
        j.skip(key, f"real_train shows {shown} class of {target}: a constant prediction is already perfect, there "
                    "is no skill to keep")
        return
    if categorical:
        lookup = pl.DataFrame({"v": pl.Series(classes, dtype=pl.String), "i": np.arange(len(classes), dtype=np.int64)})

        def y(df: pl.DataFrame) -> np.ndarray:
            return (df[target].cast(pl.String).alias("v").to_frame().join(lookup, on="v", how="left",
                                                                         maintain_order="left")["i"]
                    .to_numpy().astype(np.int64))  # every row is of a known class (filtered above)
        n_classes = len(classes)
    else:
        def y(df: pl.DataFrame) -> np.ndarray:
            return numeric_values(df[target])
        n_classes = None
    test = sample(frames["test"], config.utility_rows, config.seed + 30)
    x_test, y_test = encoder.matrix(test), y(test)
    train_y = y(frames["train"])
    if categorical:
        prior = np.bincount(train_y, minlength=n_classes) / len(train_y)
        base_loss = float(-np.log(np.clip(prior[y_test], 1e-7, 1)).mean())
    else:
        base_loss = float(np.var(y_test))
    if base_loss <= 0:
        # skill is measured against the constant prediction: where that is already perfect on real_holdout (one
        # class, or one value, there) no model can show skill, and 1 - loss / 0 is no number
        j.skip(key, f"the constant prediction of {target} is already perfect on real_holdout "
                    f"({np.unique(y_test).size} distinct value(s) there): there is no skill to keep")
        return

    def skill(x_fit: np.ndarray, y_fit: np.ndarray) -> float:
        r = linear_utility(x_fit, y_fit, x_test, y_test, n_classes, config.seed, l2=1.0 / len(y_fit))
        loss = r["log_loss"] if categorical else r["rmse"] ** 2
        return 1.0 - loss / base_loss

    syn_s = sample(frames["syn"], rows, config.seed + 31)
    tstr = skill(encoder.matrix(syn_s), y(syn_s))
    rng = np.random.default_rng(config.seed + 32)
    # draws come from a sample of real_train ten times the batch's fit size: encoding a million rows for them
    # would cost more than the fits
    pool = sample(frames["train"], max(10 * rows, 20_000), config.seed + 33)
    pool_x, pool_y = encoder.matrix(pool), y(pool)
    draws = []
    for _ in range(UTILITY_DRAWS):
        idx = rng.integers(0, len(pool_y), rows)
        draws.append(skill(pool_x[idx], pool_y[idx]))
    draws = np.array(draws)
    trtr = float(draws.mean())
    j.scores.update({"utility.tstr.skill": tstr, "utility.trtr.skill": trtr, "utility.rows": float(rows),
                     "utility.trtr.skill.sd": float(draws.std(ddof=1)),
                     "utility.skill_gap": trtr - tstr})
    if trtr < MIN_SKILL:
        j.skip(key, f"a model trained on {rows} real rows predicts {target} with skill {trtr:.3f} (< {MIN_SKILL}): "
                    "there is no learnable relation to keep at this size")
        return
    retention = tstr / trtr
    j.scores[f"{key}.noise_low"] = float(np.quantile(draws, 0.05) / trtr)
    j.test("fidelity", key, retention, config.min_utility_retention, "below",
           shortfall_t_p(tstr, draws),
           f"a model trained on the batch keeps {retention:.0%} of the skill a model trained on {rows} real rows has "
           f"at predicting {target} on real_holdout (skill {tstr:.3f} vs {trtr:.3f})",
           f"{UTILITY_DRAWS} models on bootstrap draws of real_train of that size score {trtr:.3f} "
           f"(sd {draws.std(ddof=1):.3f})")
    j.warn_above("fidelity", "utility.skill_gap", config.warn_utility_gap,
                 f"a model trained on the batch scores {trtr - tstr:.3f} skill below one trained on real rows")
