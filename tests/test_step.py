"""One generation step (ouroboros.chain.step): auto picks on real_train alone, repair re-gates within bounds."""

from __future__ import annotations

import polars as pl
import pytest

from ouroboros.chain.step import BATCH_SEED_OFFSET, MAX_ATTEMPTS, run_step
from ouroboros.config import GateConfig, StudyConfig

FAST = {"vae": {"epochs": 5}}


class Poisoned:
    """A holdout that fails the moment anything reads it."""

    def __getattr__(self, name):
        raise AssertionError(f"real_holdout was read ({name})")


def _study(**kw) -> StudyConfig:
    return StudyConfig(name="s", family="auto", candidates=["copula", "vae"], params=FAST, budget_seconds=30,
                       rows=300, **kw)


@pytest.fixture(scope="module")
def split(small_demo: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    return small_demo[:450], small_demo[450:]


def _table(result) -> list[tuple]:
    return [(c.family, c.epochs, c.train_rows, c.passed, round(c.quality, 9), round(c.detection_auc, 9))
            for c in result.bakeoff.candidates]


def test_auto_chooses_before_reading_real_holdout(split):
    train, _ = split
    seen: list[str] = []
    with pytest.raises(AssertionError, match="real_holdout was read"):
        run_step(train, _study(), GateConfig(), 0, real_holdout=Poisoned(), target="outcome", log=seen.append)
    assert seen and seen[0].startswith("bake-off:")  # the choice was made, then the holdout was first touched


def test_a_holdout_that_refuses_everything_does_not_change_the_choice(split):
    train, holdout = split
    good = run_step(train, _study(), GateConfig(), 0, real_holdout=holdout, target="outcome")
    # a holdout whose target is inverted: every batch loses its relationship to it and is refused
    flipped = holdout.with_columns(pl.col("outcome").shuffle(seed=1).alias("outcome"))
    bad = run_step(train, _study(), GateConfig(), 0, real_holdout=flipped, target="outcome")
    assert _table(good) == _table(bad)
    assert good.attempts[0].family == bad.attempts[0].family == good.bakeoff.chosen.family


def test_repair_tries_the_next_candidate_and_records_every_look(split):
    train, holdout = split
    # a gate no batch can pass (detection at chance, 99% of every column's shape and of the associations kept,
    # and tests at a 45% false-refusal rate, so a small batch's shortfalls count): every attempt is refused,
    # then the loop stops at the cap
    strict = GateConfig(max_detection_auc=0.5, min_column_shape=0.99, min_association_retention=0.99,
                        false_refusal_rate=0.45)
    r = run_step(train, _study(), strict, 0, real_holdout=holdout, target="outcome")
    assert 2 <= len(r.attempts) <= MAX_ATTEMPTS and r.holdout_looks == len(r.attempts)
    assert r.attempts[0].strategy == "first" and r.attempts[1].strategy == "next candidate"
    assert r.attempts[1].family != r.attempts[0].family
    assert r.passed is False and all(a.passed is False for a in r.attempts)
    assert "No candidate met" in r.advice and "budget_seconds" in r.advice
    assert r.family in {"copula", "vae"} and r.requested_family == "auto"
    assert "Attempts" in r.markdown() and "Bake-off" in r.markdown()


def test_kept_generator_reproduces_the_gated_batch(split):
    train, holdout = split
    r = run_step(train, _study(), GateConfig(), 0, real_holdout=holdout, target="outcome")
    a = r.generator.sample(300, seed=r.seed + BATCH_SEED_OFFSET)
    b = r.generator.sample(300, seed=r.seed + BATCH_SEED_OFFSET)
    assert a.equals(b)


def test_explicit_family_fits_once_without_gating(split):
    train, holdout = split
    r = run_step(train, StudyConfig(name="s", family="copula"), GateConfig(), 0, real_holdout=holdout)
    assert r.bakeoff is None and len(r.attempts) == 1 and r.passed is None and r.holdout_looks == 0
    assert r.family == r.requested_family == "copula"


def test_advice_offers_the_identifier_fix_only_for_columns_that_look_like_one():
    from ouroboros.chain.step import Attempt, advice_for

    reference = pl.DataFrame({"rating": [1, 2, 3, 4, 5] * 40, "code": [f"c{i}" for i in range(200)]})

    def refused(indicator: str) -> Attempt:
        return Attempt(1, "first", "copula", None, 200, 0, 1.0, 1.0, True, False, 0.9, 0.6, 0.5, indicator,
                       [{"check": "fidelity", "indicator": indicator, "value": 0.1, "threshold": 0.4}])

    spread = advice_for([refused("association_retention.rating")], reference, 90, "")
    assert "rating" in spread and "data.id_columns" not in spread  # a 5-level rating is no identifier
    assert "check or drop the column(s) the failing indicators name (rating)" in spread
    code = advice_for([refused("shape.code")], reference, 90, "")
    assert "if code is an identifier (mostly distinct values), declare it in data.id_columns" in code
