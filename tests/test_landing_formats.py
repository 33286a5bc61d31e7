"""Any file a user drops: compressed CSV, parquet from other tools, other encodings, common null tokens, and
formats we do not take (quarantined with a reason, never left waiting). Through the real sensor and ingest."""

from __future__ import annotations

import io

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
