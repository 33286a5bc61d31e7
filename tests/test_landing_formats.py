"""Any file a user drops: compressed CSV, parquet from other tools, other encodings, common null tokens, and
formats we do not take (quarantined with a reason, never left waiting). Through the real sensor and ingest."""

from __future__ import annotations

import io
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_landing import Env

from ouroboros.landing import LandingReadError, is_landing_candidate, read_landed


def _csv(df: pl.DataFrame) -> str:
    return df.write_csv()


def _compressed(text: str, codec: str) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, codec) as f:
        f.write(text.encode())
    return sink.getvalue().to_pybytes()


def test_formats_encodings_and_null_tokens_through_the_sensor(tmp_path):
    with dg.instance_for_test() as instance:
        env = Env(tmp_path, instance)
        fresh = env.fresh
        env.land_bytes("gzip.csv.gz", _compressed(_csv(fresh.slice(0, 40)), "gzip"), 40)
        env.land_bytes("zstd.csv.zst", _compressed(_csv(fresh.slice(40, 40)), "zstd"), 40)
        # parquet as pandas writes it: a non-default index column, dictionary-encoded strings, int64 everywhere
        pandas = fresh.slice(80, 40).to_pandas().set_index(pl.Series(range(1000, 1040)).to_numpy())
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(pandas), sink, use_dictionary=True)
        env.land_bytes("pandas.parquet", sink.getvalue(), 40)
        utf16 = fresh.slice(120, 40)
        env.land_bytes("excel_utf16.csv", _csv(utf16).encode("utf-16"), 40)  # with a byte-order mark
        env.land_bytes("no_bom_utf16.csv", _csv(fresh.slice(160, 40)).encode("utf-16-le"), 40)
        tokens = fresh.slice(200, 200).with_columns(injury_severity=pl.col("injury_severity").cast(pl.String))
        for i, token in enumerate(["n/a", "NA", "N/A", "null", "NaN"]):
            tokens = tokens.with_columns(injury_severity=pl.when(pl.int_range(pl.len()) == i * 7)
                                         .then(pl.lit(token)).otherwise(pl.col("injury_severity")))
        env.land_bytes("null_tokens.csv", _csv(tokens).encode(), 200)
        env.land_bytes("notes.txt", b"some notes", None)
        env.land_bytes("report.xlsx", b"PK\x03\x04 not really", None)
        (env.landing / ".hidden.csv").write_text("a,b\n1,2\n")
        (env.landing / "upload.csv.part").write_text("a,b\n1,2\n")

        results = env.ingest_all()
        assert len(results) == 8
        reasons, accepted = env.reasons(), env.accepted()
        assert set(accepted) == {"gzip.csv.gz", "zstd.csv.zst", "pandas.parquet", "excel_utf16.csv", "null_tokens.csv"}
        for name in ("notes.txt", "report.xlsx"):
            (problem,) = reasons[name]["reasons"]
            assert problem["code"] == "unsupported_format" and ".csv.gz" in problem["detail"], problem
        (problem,) = reasons["no_bom_utf16.csv"]["reasons"]
        assert problem["code"] == "encoding" and "save it as UTF-8" in problem["detail"]
        # temp and hidden files keep waiting
        assert sorted(p.name for p in env.landing.iterdir()) == [".hidden.csv", "upload.csv.part"]
        table = env.lake.read_real()
        assert table.schema == env.source_df.schema
        assert table.height == env.source_df.height + 40 * 4 + 200
        # every null token read as null, nothing else did
        nulls = table["injury_severity"].null_count() - env.source_df["injury_severity"].null_count()
        as_int = tokens["injury_severity"].cast(pl.Int8, strict=False)
        expected = fresh.slice(0, 160)["injury_severity"].null_count() + as_int.null_count()
        assert nulls == expected


def test_read_landed_encodings_and_configurable_nulls(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("city,n\nZürich,1\nSão Paulo,-\n".encode("latin-1"))
    df = read_landed(latin, null_values=["-"])
    assert df["city"].to_list() == ["Zürich", "São Paulo"] and df["n"].to_list() == ["1", None]
    assert read_landed(latin, null_values=[])["n"].to_list() == ["1", "-"]  # the set is the user's
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x00\x01\x02\xff" * 10)
    with pytest.raises(LandingReadError, match="save it as UTF-8") as err:
        read_landed(binary)
    assert err.value.code == "encoding"
    assert is_landing_candidate("a.txt") and is_landing_candidate("b.csv.gz")
    assert not is_landing_candidate(".a.csv") and not is_landing_candidate("a.csv.part")


def test_landed_csv_with_dates_and_zoned_datetimes_casts_back(tmp_path):
    from ouroboros.landing import cast_to_schema, structural_problems
    from ouroboros.schema import infer_schema

    start = pl.datetime(2024, 3, 30, 22)
    real = pl.DataFrame({
        "day": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 12), "1d", eager=True),
        "seen": pl.datetime_range(start, start + pl.duration(hours=11), "1h", eager=True, time_zone="UTC")
        .dt.convert_time_zone("Europe/Paris"),
        "naive": pl.datetime_range(start, start + pl.duration(hours=11), "1h", eager=True),
    })
    path = tmp_path / "dates.csv"
    real.write_csv(path)
    schema = infer_schema(real)
    landed = read_landed(path)
    assert structural_problems(landed, schema) == []
    assert cast_to_schema(landed, schema).equals(real)  # the zone and the instants survive (across a DST change)
    broken = landed.with_columns(day=pl.lit("someday"))
    (problem,) = structural_problems(broken, schema)
    assert problem.code == "wrong_type" and problem.column == "day"


def test_lossy_casts_are_wrong_type_with_examples_csv_and_parquet(tmp_path):
    """A value the cast would keep but alter is refused like one it cannot read: ints, bools, dates, floats."""
    import datetime as dt

    from ouroboros.landing import cast_to_schema, structural_problems
    from ouroboros.schema import infer_schema

    real = pl.DataFrame({
        "n": pl.Series([1, 2, 3, 4], dtype=pl.Int16),
        "flag": [True, False, True, False],
        "day": [dt.date(2024, 1, d) for d in range(1, 5)],
        "x": pl.Series([0.5, 1.5, 2.5, 3.5], dtype=pl.Float32),
        "at": [dt.datetime(2024, 1, 1, h) for h in range(4)],
    })
    schema = infer_schema(real)
    ns = pl.Series([dt.datetime(2024, 1, 1)] * 4, dtype=pl.Datetime("ns")) + pl.Series([1, 0, 0, 0]).cast(
        pl.Duration("ns"))
    lossy = pl.DataFrame({
        "n": [1.7, -2.9, 3.0, 4.0], "flag": [2, 7, 0, 1],
        "day": [dt.datetime(2024, 1, 1, 10, 30), dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3),
                dt.datetime(2024, 1, 4)],
        "x": [0.1, 1e300, 2.0, 3.0], "at": ns,
    })
    for path in (tmp_path / "lossy.parquet", tmp_path / "lossy.csv"):
        if path.suffix == ".parquet":
            lossy.write_parquet(path)
        else:
            lossy.with_columns(x=pl.Series(["0.1", "1e400", "2", "3"])).write_csv(path)
        problems = {p.column: p for p in structural_problems(read_landed(path), schema)}
        assert {p.code for p in problems.values()} == {"wrong_type"}, path
        if path.suffix == ".parquet":  # a CSV reader already refuses "1.7" for an integer and "2" for a boolean
            assert set(problems) == {"n", "flag", "day", "x", "at"}
            assert "1.7 -> 1" in problems["n"].detail and "-2.9 -> -2" in problems["n"].detail
            assert problems["n"].observed == 2 and "whole numbers" in problems["n"].detail
            assert "2 -> true" in problems["flag"].detail and problems["flag"].observed == 2
            assert "10:30" in problems["day"].detail and problems["day"].observed == 1
            assert "inf" in problems["x"].detail and problems["x"].observed == 1  # 0.1 as float32 is no loss
        else:
            assert set(problems) == {"n", "flag", "day", "x", "at"}
            assert "cannot be read" in problems["n"].detail and "cannot be read" in problems["flag"].detail
            assert "1e400 -> inf" in problems["x"].detail
        assert ".000000001" in problems["at"].detail and problems["at"].observed == 1  # nanoseconds would go
    # the same columns with values that fit exactly pass and cast unchanged, from either format
    exact = real.with_columns(n=pl.col("n").cast(pl.Float64), flag=pl.col("flag").cast(pl.Int64),
                              day=pl.col("day").cast(pl.Datetime("ns")), x=pl.col("x").cast(pl.Float64),
                              at=pl.col("at").cast(pl.Datetime("ns")))
    exact.write_parquet(tmp_path / "exact.parquet")
    real.write_csv(tmp_path / "exact.csv")
    for name in ("exact.parquet", "exact.csv"):
        landed = read_landed(tmp_path / name)
        assert structural_problems(landed, schema) == [], name
        assert cast_to_schema(landed, schema).equals(real), name


def test_lossy_parquet_is_quarantined_and_never_appended(tmp_path):
    """Through the sensor and ingest: 1.7 / -2.9 in an integer column and 2 / 7 in a boolean one."""
    with dg.instance_for_test() as instance:
        env = Env(tmp_path, instance)
        rows = env.fresh.slice(0, 30)
        ages = pl.Series([1.7, -2.9] + [float(v) for v in rows["occupant_age"][2:].fill_null(30).to_list()])
        env.land_frame("ages.parquet", rows.with_columns(occupant_age=ages))
        flags = pl.Series([2, 7] + [int(v) for v in rows["frontal_impact"][2:].fill_null(False).to_list()])
        env.land_frame("flags.parquet", rows.with_columns(frontal_impact=flags))
        env.land_frame("fine.parquet", env.fresh.slice(30, 30).with_columns(pl.col("occupant_age").cast(pl.Float64)))
        results = env.ingest_all()
        assert len(results) == 3
        reasons = env.reasons()
        assert set(reasons) == {"ages.parquet", "flags.parquet"} and set(env.accepted()) == {"fine.parquet"}
        (age,) = reasons["ages.parquet"]["reasons"]
        assert age["code"] == "wrong_type" and age["column"] == "occupant_age" and "1.7 -> 1" in age["detail"]
        (flag,) = reasons["flags.parquet"]["reasons"]
        assert flag["code"] == "wrong_type" and flag["column"] == "frontal_impact" and "7 -> true" in flag["detail"]
        for r in reasons.values():
            assert Path(r["quarantined_file"]).exists()
        table = env.lake.read_real()
        assert table.height == env.source_df.height + 30  # only the exact file's rows joined
        assert table.schema == env.source_df.schema
