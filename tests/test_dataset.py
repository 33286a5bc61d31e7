"""Datasets of several tables: validation, config parsing, landing checks (orphans, duplicate keys), entity split."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ouroboros.config import load_config
from ouroboros.dataset import Dataset, DatasetError, TableSpec, root_keys, validate_dataset
from ouroboros.dataset_landing import dataset_problems, duplicate_key_problems, orphan_problems
from ouroboros.entity_split import entity_holdout, entity_split
from ouroboros.split import train_holdout_split
from tests.relational_data import SPECS, draw

P = pl.DataFrame({"pid": [1, 2, 3], "age": [30, 40, 50]})
C = pl.DataFrame({"cid": [10, 11, 12], "pid": [1, 1, 3], "t": [1, 2, 1]})


def test_validation_names_what_is_wrong():
    with pytest.raises(DatasetError, match="parent names table 'nope'"):
        validate_dataset({"p": P, "c": C}, {"p": TableSpec("pid"), "c": TableSpec("cid", parent="nope")})
    with pytest.raises(DatasetError, match="cycle"):
        validate_dataset({"p": P, "c": C}, {"p": TableSpec("pid", parent="c"), "c": TableSpec("cid", parent="p")})
    with pytest.raises(DatasetError, match="key 'id' is not a column"):
        validate_dataset({"p": P}, {"p": TableSpec("id")})
    with pytest.raises(DatasetError, match="foreign_key 'pk'"):
        validate_dataset({"p": P, "c": C}, {"p": TableSpec("pid"), "c": TableSpec("cid", "p", "pk")})
    with pytest.raises(DatasetError, match="1 null value"):
        validate_dataset({"p": P.with_columns(pl.Series("pid", [1, None, 3]))}, {"p": TableSpec("pid")})
    ds = validate_dataset({"c": C, "p": P}, {"c": TableSpec("cid", "p", order_by="t"), "p": TableSpec("pid")})
    assert ds.order == ("p", "c") and ds.children("p") == ["c"] and ds.foreign_key("c") == "pid"
    assert root_keys(ds)["c"].to_list() == [1, 1, 3]


def test_config_reads_tables_and_keeps_the_flat_shape(tmp_path):
    (tmp_path / "a.yaml").write_text("data:\n  tables:\n    patients: {source: p.parquet, key: patient_id}\n"
                                     "    visits: {source: v.parquet, key: visit_id, parent: patients, "
                                     "foreign_key: patient_id, order_by: day}\n"
                                     "  target: {table: patients, column: group}\n")
    cfg = load_config(tmp_path / "a.yaml")
    sources, specs, target = cfg.data.dataset_layout()
    assert sources["visits"] == str(tmp_path / "v.parquet") and target == ("patients", "group")
    assert TableSpec(**specs["visits"]) == SPECS["visits"]
    (tmp_path / "b.yaml").write_text("data: {source: t.csv, target: y, key: id}\n")
    flat = load_config(tmp_path / "b.yaml")
    assert flat.data.target == "y" and flat.data.dataset_layout()[1]["table"]["key"] == "id"
    (tmp_path / "c.yaml").write_text("data:\n  tables: {p: {source: p.csv, key: id, parent: q}}\n"
                                     "  target: {table: p, column: y}\n")
    with pytest.raises(ValueError, match="parent 'q' is not one of data.tables"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("data: {source: t.csv, tables: {p: {source: p.csv, key: id}}, target: y}\n")
    with pytest.raises(ValueError, match="exactly one of source"):
        load_config(tmp_path / "d.yaml")


def test_orphans_and_duplicate_keys_at_landing():
    kids = pl.DataFrame({"cid": [10, 11, 11, 12], "pid": [1, 7, 8, 8]})
    (dup,) = duplicate_key_problems("c", kids, "cid")
    assert dup.code == "duplicate_key" and dup.observed == [11]
    (again,) = duplicate_key_problems("c", pl.DataFrame({"cid": [12, 13]}), "cid", accepted=kids)
    assert again.code == "duplicate_key" and again.observed == [12]
    (orphan,) = orphan_problems("c", kids, "pid", "p", P["pid"])
    assert orphan.code == "orphan" and orphan.observed == [7, 8] and "3 row(s)" in orphan.detail
    assert orphan_problems("c", C, "pid", "p", P["pid"]) == []
    specs = {"p": TableSpec("pid"), "c": TableSpec("cid", "p")}
    # the parent of 4 lands with its child: no orphan; a child of a parent in neither file is one
    out = dataset_problems({"p": pl.DataFrame({"pid": [4]}), "c": pl.DataFrame({"cid": [20, 21], "pid": [4, 9]})},
                           specs, accepted={"p": P})
    assert out["p"] == [] and [p.observed for p in out["c"]] == [[9]]
    # a quarantined parent file (duplicate key) brings no keys: its children are orphans
    out = dataset_problems({"p": pl.DataFrame({"pid": [5, 5]}), "c": pl.DataFrame({"cid": [30], "pid": [5]})}, specs)
    assert [p.code for p in out["p"]] == ["duplicate_key"] and [p.code for p in out["c"]] == ["orphan"]


def test_entity_split_keeps_entities_whole_and_stable_as_tables_grow():
    small = draw(300, seed=1)
    train, hold = entity_split(small, 0.2, seed=0)
    for side in (train, hold):  # every child on the side of its parent
        assert set(side.tables["visits"]["patient_id"]) <= set(side.tables["patients"]["patient_id"])
    assert 0.12 < hold.tables["patients"].height / 300 < 0.28
    # a flat table of one with a key splits as the flat split does
    one = Dataset.of_one(small.tables["patients"], key="patient_id")
    flat_hold = train_holdout_split(small.tables["patients"], 0.2, 0, key="patient_id")[1]
    assert entity_split(one, 0.2, 0)[1].tables["table"].equals(flat_hold)
    # grow both tables: new patients, and new visits of old patients; no old row changes side
    more = draw(200, seed=2, first_id=10_000)
    extra_visits = small.tables["visits"].head(50).with_columns(pl.col("visit_id") + 5_000_000)
    grown = small.replace({"patients": pl.concat([more.tables["patients"], small.tables["patients"]]),
                           "visits": pl.concat([more.tables["visits"], small.tables["visits"], extra_visits])})
    old_p, new_p = entity_holdout(small, 0.2, 0), entity_holdout(grown, 0.2, 0)
    side = dict(zip(grown.tables["patients"]["patient_id"], new_p["patients"]))
    assert [side[k] for k in small.tables["patients"]["patient_id"]] == list(old_p["patients"])
    vside = dict(zip(grown.tables["visits"]["visit_id"], new_p["visits"]))
    assert [vside[k] for k in small.tables["visits"]["visit_id"]] == list(old_p["visits"])
    # the added visits of an old patient sit on that patient's side
    assert list(new_p["visits"][-50:]) == list(old_p["visits"][:50])
    assert np.any(new_p["patients"]) and not np.all(new_p["patients"])


def test_a_dataset_study_with_family_auto_stops_at_load_saying_what_to_write(tmp_path):
    """The auto bake-off is flat: a data.tables config whose study asks for it stops at load with an error naming
    the study and the families to choose from, not somewhere inside an asset."""
    from ouroboros.config import ConfigError, PipelineConfig
    from pipelines.definitions import build_definitions
    from pipelines.settings import Settings

    config = PipelineConfig.model_validate({"data": {
        "tables": {"patients": {"source": "p.parquet", "key": "patient_id"},
                   "visits": {"source": "v.parquet", "key": "visit_id", "parent": "patients",
                              "foreign_key": "patient_id"}},
        "target": {"table": "patients", "column": "outcome"}},
        "studies": [{"name": "chosen", "family": "auto"}]})
    lake = tmp_path / "lake"
    settings = Settings(config_path=tmp_path / "ouroboros.yaml", lake=lake, mlflow_tracking_uri="sqlite:///x.db",
                        mlflow_artifacts=lake / "a", gx_root=lake / "gx", landing=lake / "landing")
    with pytest.raises(ConfigError, match="study 'chosen': family auto .*name the family"):
        build_definitions(config, settings)
