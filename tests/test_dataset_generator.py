"""The dataset generator: a tiny fit gives a dataset whose keys resolve and whose sequences are ordered."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ouroboros.dataset import TableSpec, validate_dataset
from ouroboros.errors import GeneratorError
from ouroboros.generators.children import DatasetGenerator
from ouroboros.quality.gate_dataset import integrity_checks
from tests.relational_data import draw


def test_tiny_fit_gives_valid_integrity_and_ordered_sequences():
    real = draw(300, seed=3)
    syn = DatasetGenerator(family="copula", seed=0).fit(real).sample(200, seed=1)
    p, v = syn.tables["patients"], syn.tables["visits"]
    assert p.height == 200 and p["patient_id"].n_unique() == 200 and v["visit_id"].n_unique() == v.height
    assert all(c.passed for c in integrity_checks(syn))
    assert v.columns == real.tables["visits"].columns and p.columns == real.tables["patients"].columns
    # days increase within each patient (gaps are drawn non-negative and accumulated)
    assert v.group_by("patient_id").agg((pl.col("day").diff().drop_nulls() >= 0).all())["day"].all()
    # the count model follows the parent: older patients have more visits, as in the real process
    n = p.join(v.group_by("patient_id").len(), on="patient_id", how="left").fill_null(0)
    assert np.corrcoef(n["age"], n["len"])[0, 1] > 0.2
    # same seed, same dataset
    again = DatasetGenerator(family="copula", seed=0).fit(real).sample(200, seed=1)
    assert again.tables["visits"].equals(v)


def test_plain_children_without_order_and_grandchildren_refused():
    parent = pl.DataFrame({"id": [1, 2, 3, 4] * 10, "x": np.arange(40.0)}).with_columns(pl.int_range(40).alias("id"))
    kids = pl.DataFrame({"cid": range(80), "id": np.repeat(np.arange(40), 2), "y": np.arange(80.0)})
    ds = validate_dataset({"p": parent, "c": kids}, {"p": TableSpec("id"), "c": TableSpec("cid", "p")})
    syn = DatasetGenerator().fit(ds).sample(30, seed=0)
    assert all(c.passed for c in integrity_checks(syn)) and syn.tables["c"].height > 0
    deep = validate_dataset({"p": parent, "c": kids, "g": pl.DataFrame({"gid": [0], "cid": [0]})},
                            {"p": TableSpec("id"), "c": TableSpec("cid", "p"), "g": TableSpec("gid", "c")})
    with pytest.raises(GeneratorError, match="grandchildren"):
        DatasetGenerator().fit(deep)


def test_copula_dataset_generator_passes_the_dataset_gate_on_the_test_process():
    """Measured: the copula-based generator's 2,000 entities pass every link check against 2,250 real_train
    entities (one seed; with one model for first events and one for later ones)."""
    from ouroboros.entity_split import entity_split  # noqa: PLC0415
    from ouroboros.quality.gate_dataset import judge_dataset  # noqa: PLC0415

    train, hold = entity_split(draw(3000, seed=100), 0.25, 0)
    syn = DatasetGenerator(family="copula").fit(train).sample(2000, seed=1)
    verdict = judge_dataset(syn, train, hold)
    assert verdict.passed, [(c.name, c.statistic, c.real) for c in verdict.failed]


def test_demo_dataset_loads_and_its_holdout_passes_the_gate():
    from ouroboros.demo_dataset import demo_dataset  # noqa: PLC0415
    from ouroboros.entity_split import entity_split  # noqa: PLC0415
    from ouroboros.quality.gate_dataset import judge_dataset  # noqa: PLC0415

    ds = demo_dataset()
    assert ds.tables["students"].height == 1721 and ds.tables["student_years"].height == 7230
    train, hold = entity_split(ds, 0.3, 0)
    assert judge_dataset(hold, train, hold).passed  # fresh real pupils (the holdout) against real_train


@pytest.mark.parametrize("family", ["vae", "gan", "diffusion"])
def test_neural_families_drive_the_dataset_generator(family):
    """Only fit/sample are used, so the torch families work too (2 epochs: integrity only, not quality)."""
    syn = DatasetGenerator(family=family, params={"epochs": 2}).fit(draw(300, seed=3)).sample(100, seed=1)
    assert all(c.passed for c in integrity_checks(syn)) and syn.tables["visits"].height > 0
