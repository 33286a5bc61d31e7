"""`family: auto`: the validation split, the bake-off's ranking and the budget plan (ouroboros.chain)."""

from __future__ import annotations

import polars as pl
import pytest

import ouroboros.collapse  # noqa: F401 - registers the fast "gaussian" family
from ouroboros.chain.bakeoff import QUALITY_TIE, Candidate, rank, run_bakeoff, validation_split
from ouroboros.chain.budget import MIN_EPOCHS, MIN_ROWS, estimate, plan_fit
from ouroboros.config import GateConfig, StudyConfig


def test_validation_split_is_deterministic_disjoint_and_complete(small_demo: pl.DataFrame):
    fit, val = validation_split(small_demo, seed=0)
    fit2, val2 = validation_split(small_demo, seed=0)
    assert fit.equals(fit2) and val.equals(val2)
    assert fit.height + val.height == small_demo.height
    assert 0.1 * small_demo.height < val.height < 0.3 * small_demo.height
    key = small_demo.columns
    # disjoint as rows (the demo table has no duplicate rows in this slice)
    assert fit.join(val, on=key, how="semi", nulls_equal=True).height == 0
    # the row order of real_train does not change which rows are held out
    _, shuffled = validation_split(small_demo.sample(fraction=1.0, shuffle=True, seed=3), seed=0)
    assert shuffled.sort(key, nulls_last=True).equals(val.sort(key, nulls_last=True))
    # another data seed is another split
    _, other = validation_split(small_demo, seed=1)
    assert not other.sort(key, nulls_last=True).equals(val.sort(key, nulls_last=True))


def test_bakeoff_ranks_passing_candidates_first(small_demo: pl.DataFrame):
    b = run_bakeoff(small_demo, ["gaussian", "copula", "vae"], 20.0, GateConfig(), target="outcome", seed=0,
                    params={"vae": {"epochs": 5}})
    assert {c.family for c in b.candidates} == {"gaussian", "copula", "vae"}
    # a family that cannot model the table (gaussian: numeric columns only) is ranked last, with the reason
    assert b.candidates[-1].family == "gaussian" and b.candidates[-1].refused_by.startswith("fit error")
    assert next(c for c in b.candidates if c.family == "vae").epochs == 5
    assert rank(b.candidates) == b.candidates
    assert b.validation_rows + b.fit_rows == small_demo.height
    for c in b.candidates:
        assert c.passed == (c.refused_by == "")
    assert "| 1 |" in b.markdown() and b.chosen.family in b.markdown()
    again = run_bakeoff(small_demo, ["gaussian", "copula", "vae"], 20.0, GateConfig(), target="outcome", seed=0,
                        params={"vae": {"epochs": 5}})
    assert [(c.family, c.passed, c.quality) for c in again.candidates] == \
        [(c.family, c.passed, c.quality) for c in b.candidates]


def test_quality_scores_within_the_tie_let_detection_decide():
    def cand(family, passed, quality, detection):
        return Candidate(family, None, 100, 1.0, 1.0, passed, quality, detection, 0.9, 0 if passed else 1,
                         "" if passed else "x", "")

    a = cand("a", True, 0.990, 0.63)
    b = cand("b", True, 0.990 - QUALITY_TIE / 2, 0.57)  # as faithful in its marginals, closer in the joint
    c = cand("c", True, 0.990 - 2 * QUALITY_TIE, 0.50)  # a tier below: its better detection does not lift it
    d = cand("d", False, 0.999, 0.50)  # refused: after every passing candidate
    e = cand("e", False, 0.980, 0.52)
    assert [x.family for x in rank([a, c, d, e, b])] == ["b", "a", "c", "d", "e"]


def test_budget_cuts_epochs_first_then_rows():
    full = plan_fit("vae", 1e6, 10_000)
    assert full.epochs == 100 and full.rows == 10_000 and full.cut == ""
    some = plan_fit("vae", estimate("vae", 50, 10_000), 10_000)
    assert MIN_EPOCHS <= some.epochs < 100 and some.rows == 10_000 and "epochs" in some.cut
    assert "rows" not in some.cut
    tight = plan_fit("vae", estimate("vae", MIN_EPOCHS, 10_000) / 4, 10_000)
    assert tight.epochs == MIN_EPOCHS and MIN_ROWS <= tight.rows < 10_000 and "rows" in tight.cut
    assert plan_fit("vae", 0.0, 10_000).rows == MIN_ROWS  # never below the floor
    assert plan_fit("copula", 0.001, 10_000).rows == 10_000  # no epochs: nothing to cut
    assert plan_fit("vae", 1e6, 10_000, max_epochs=20).epochs == 20  # the user's epochs are the ceiling


def test_study_candidates_are_families():
    assert StudyConfig(name="s").family == "auto"
    with pytest.raises(ValueError, match="candidates"):
        StudyConfig(name="s", candidates=["auto"])


def test_family_params_split_flat_and_own():
    from ouroboros.chain.bakeoff import check_params, family_params
    from ouroboros.generators import GeneratorError

    p = {"epochs": 30, "vae": {"epochs": 7}}
    assert family_params("vae", p)["epochs"] == 7
    assert family_params("gan", p)["epochs"] == 30
    assert "epochs" not in family_params("copula", p)
    with pytest.raises(GeneratorError, match="epoch"):
        check_params(["vae", "copula"], {"epoch": 3})


def test_an_indicator_that_carries_its_check_name_is_not_prefixed_twice():
    from ouroboros.chain.bakeoff import indicator_name
    assert indicator_name("fidelity", "fidelity.association_retention") == "fidelity.association_retention"
    assert indicator_name("fidelity", "joint.detection_auc") == "fidelity.joint.detection_auc"
