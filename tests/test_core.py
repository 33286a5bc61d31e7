"""Unit tests of the framework-free core: schema, tables, split, config, policies, verdicts, downstream."""

from __future__ import annotations

import polars as pl
import pytest

from ouroboros.config import ConfigError, GateConfig, load_config
from ouroboros.downstream import score, train_downstream
from ouroboros.policies import build_pool
from ouroboros.quality.contract import derive_contract, validation_frame
from ouroboros.schema import ColumnKind, SchemaError, conform, infer_schema
from ouroboros.split import train_holdout_split
from ouroboros.tables import TableReadError, read_table
from ouroboros.verdict import CheckRecord, GateRefusal, Verdict, fingerprint, require_approved


def test_infer_schema_kinds_nulls_and_ranges(mixed_frame):
    schema = infer_schema(mixed_frame, target="c")
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {"x": ColumnKind.CONTINUOUS, "n": ColumnKind.INTEGER, "b": ColumnKind.BOOLEAN,
                     "c": ColumnKind.CATEGORICAL, "t": ColumnKind.DATETIME}
    assert schema.column("x").null_fraction == pytest.approx(1 / 6)
    assert (schema.column("n").min, schema.column("n").max) == (1.0, 6.0)
    assert schema.column("c").categories == ("a", "b", "c")
    assert infer_schema(mixed_frame).to_dict() == type(schema).from_dict(infer_schema(mixed_frame).to_dict()).to_dict()


def test_infer_schema_rejects_bad_tables(mixed_frame):
    with pytest.raises(SchemaError, match="target column 'nope'"):
        infer_schema(mixed_frame, target="nope")
    with pytest.raises(SchemaError, match="no rows"):
        infer_schema(mixed_frame.head(0))
    with pytest.raises(SchemaError, match="column 'l'.*cannot model"):
        infer_schema(pl.DataFrame({"l": [[1, 2], [3]]}))


def test_conform_restores_dtypes_and_order(mixed_frame):
    schema = infer_schema(mixed_frame)
    loose = mixed_frame.select(pl.col("c"), pl.col("n").cast(pl.Float64) + 0.2, pl.exclude("c", "n"))
    back = conform(loose, schema)
    assert back.columns == mixed_frame.columns
    assert back.schema == mixed_frame.schema
    assert back["n"].to_list() == mixed_frame["n"].to_list()


def test_read_table_errors_name_the_file(tmp_path):
    with pytest.raises(TableReadError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(TableReadError, match="empty.csv: the file is empty"):
        read_table(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(TableReadError, match="header but no rows"):
        read_table(header_only)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(TableReadError, match="unsupported file type"):
        read_table(tmp_path / "x.json")


def test_config_loads_and_reports_bad_settings(tmp_path):
    good = tmp_path / "c.yaml"
    good.write_text("data: {source: data.csv, target: y}\nstudies: [{name: s1, generations: 2}]\n")
    config = load_config(good)
    assert config.data.source == str(tmp_path / "data.csv")
    assert config.training.study == "s1"
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {source: d.csv, target: y}\nstudies: [{name: s1, policy: mix}]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid config:\n.*studies.0.policy"):
        load_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("data: {source: d.csv, target: y}\ntraining: {study: nope}\n")
    with pytest.raises(ConfigError, match="training.study 'nope'"):
        load_config(typo)


def test_policies_compose_the_pool(small_demo):
    real = small_demo.head(100)
    b0, b1 = small_demo.slice(100, 80), small_demo.slice(180, 80)
    assert build_pool("replace", 0, real, []).composition == {"real": 100}
    assert build_pool("replace", 2, real, [b0, b1]).composition == {"gen_1": 80}
    acc = build_pool("accumulate", 2, real, [b0, b1])
    assert acc.composition == {"real": 100, "gen_0": 80, "gen_1": 80} and acc.rows.height == 260
    anchor = build_pool("anchor", 2, real, [b0, b1], lam=0.25, seed=1)
    assert anchor.composition == {"real": 20, "gen_1": 60} and anchor.rows.height == 80
    with pytest.raises(ValueError, match="unknown mixing policy"):
        build_pool("blend", 1, real, [b0])


def test_verdict_needs_every_check_on_this_exact_batch(small_demo):
    batch = small_demo.head(50)
    fp = fingerprint(batch)
    records = [CheckRecord(c, fp, True) for c in ("contract", "fidelity", "privacy", "collapse")]
    assert require_approved(Verdict.combine("s/batch_g0", records, fp)).passed
    with pytest.raises(GateRefusal, match=r"checks \['collapse'\] have not judged it"):
        require_approved(Verdict.combine("s/batch_g0", records[:3], fp))
    edited = batch.with_columns(pl.col("occupant_age") + 1)
    with pytest.raises(GateRefusal, match="have not judged it"):
        require_approved(Verdict.combine("s/batch_g0", records, fingerprint(edited)))
    failed = records[:3] + [CheckRecord("collapse", fp, False, [{"reason": "variance collapsed"}])]
    with pytest.raises(GateRefusal, match="variance collapsed"):
        require_approved(Verdict.combine("s/batch_g0", failed, fp))


def test_contract_rules_cover_every_column(small_demo):
    contract = derive_contract(small_demo, GateConfig(), batch_rows=300)
    covered = {r.kwargs.get("column") for r in contract.rules} - {None}
    assert covered == set(small_demo.columns)
    spread = [r for r in contract.rules if r.expectation == "ExpectColumnQuantileValuesToBeBetween"]
    assert {r.kwargs["column"] for r in spread} >= {"sampling_weight", "occupant_age"}
    for r in spread:  # the real data's own quantiles lie inside the bands the rule allows
        q = r.kwargs["quantile_ranges"]
        values = small_demo[r.kwargs["column"]].cast(pl.Float64).drop_nulls()
        for p, (lo, hi) in zip(q["quantiles"], q["value_ranges"]):
            assert lo <= values.quantile(p, "nearest") <= hi
    frame = validation_frame(small_demo)
    assert str(frame["injury_severity"].dtype) == "Int8"  # nulls no longer turn ints into floats


def test_downstream_beats_chance_on_real_data(demo):
    data = demo.sample(n=3000, seed=2)
    train, holdout = train_holdout_split(data, 0.3, seed=0)
    schema = infer_schema(train, target="outcome")
    model = train_downstream(train, schema, "outcome", epochs=20, batch_size=128, seed=0)
    metrics = score(model, holdout)
    assert metrics["roc_auc"] > 0.8  # injury severity predicts the outcome; a broken pipeline would not
    again = score(train_downstream(train, schema, "outcome", epochs=20, batch_size=128, seed=0), holdout)
    assert again == metrics  # seeded
    regression = train_downstream(train, infer_schema(train), "occupant_age", epochs=3, seed=0)
    assert set(score(regression, holdout)) == {"rmse", "r2"}
