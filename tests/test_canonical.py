"""The project's own value encoding: pinned digests, so no library upgrade can move a split or a fingerprint."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import polars as pl

from ouroboros.canonical import row_digests, table_digest
from ouroboros.split import HASH, row_unit
from ouroboros.verdict import LEGACY_FINGERPRINT_NOTE, CheckRecord, Verdict, fingerprint


def every_dtype() -> pl.DataFrame:
    return pl.DataFrame({
        "i": pl.Series([1, None, -3], dtype=pl.Int32), "u": pl.Series([0, 7, None], dtype=pl.UInt8),
        "f": [-0.0, float("nan"), None], "b": [True, None, False], "s": ["ä", None, ""],
        "c": pl.Series(["x", "y", None], dtype=pl.Categorical), "bin": [b"\x00", None, b"ab"],
        "d": [date(2020, 1, 1), None, date(1960, 5, 5)],
        "t": [datetime(2024, 1, 1, tzinfo=timezone.utc), None, datetime(9999, 12, 31, tzinfo=timezone.utc)],
        "ns": pl.Series([datetime(2024, 1, 1, 0, 0, 0, 1), None, None], dtype=pl.Datetime("ns")),
        "dur": [timedelta(seconds=1), None, timedelta(days=-1)], "tod": [time(1, 2, 3), None, time(0)],
    })


def test_pinned_digests_of_every_dtype():
    df = every_dtype()
    assert fingerprint(df) == "fp2-" + table_digest(df)
    assert table_digest(df) == PINNED_TABLE
    assert row_digests(df).tolist() == PINNED_ROWS
    assert [round(float(u), 12) for u in row_unit(df, seed=0)] == PINNED_UNITS
    assert HASH == "blake2b-64/v2"


def test_equal_values_hash_equal_whatever_the_storage():
    a = pl.DataFrame({"f": [0.0, float("nan")], "t": [datetime(2024, 1, 1, 12, tzinfo=timezone.utc)] * 2})
    b = pl.DataFrame({"f": pl.Series([-0.0, -float("nan")], dtype=pl.Float32),
                      "t": pl.Series([datetime(2024, 1, 1, 12, tzinfo=timezone.utc)] * 2, dtype=pl.Datetime("ms", "UTC"))
                      .dt.convert_time_zone("Europe/Paris")})
    assert row_digests(a).tolist() == row_digests(b).tolist()  # -0.0 is 0.0, one NaN, UTC instants, any unit
    assert table_digest(a) != table_digest(b)  # the dtypes differ: another table
    assert table_digest(a) != table_digest(a.with_columns(pl.col("f").fill_nan(None)))  # null is not NaN
    assert table_digest(a) != table_digest(a.rename({"f": "g"}))


def test_records_of_the_old_fingerprint_rule_do_not_count_and_say_why():
    old = CheckRecord("contract", "ab" * 32, True)  # a bare sha256 hex: rule fp/v1
    v = Verdict.combine("s/batch_g0", [old], fingerprint(every_dtype()), required=("contract",))
    assert v.missing == ["contract"] and not v.passed and v.note == LEGACY_FINGERPRINT_NOTE


PINNED_TABLE = "6560c0c55f37a547494aa32d073b494fabacf2411258472648ff9ec2e6047930"
PINNED_ROWS = [5092441149911759484, 3097818587107931753, 6353433695057212827]
PINNED_UNITS = [0.414374252768, 0.221386433375, 0.830085641542]


def test_mode_collapse_counts_rows_by_the_canonical_encoding(monkeypatch):
    """The mode-collapse test identifies repeated rows by `row_digests`, never by polars' `hash_rows` (documented as
    unstable across polars versions): with hash_rows broken it still counts -0.0 as 0.0 and one NaN as another."""
    from ouroboros.config import GateConfig
    from ouroboros.quality.gate_joint import _mode
    from ouroboros.quality.judge import Judge

    def unstable(*_args, **_kwargs):
        raise AssertionError("polars hash_rows is not a stable row identity")

    monkeypatch.setattr(pl.DataFrame, "hash_rows", unstable)
    batch = pl.DataFrame({"x": [0.0, -0.0, 0.0, float("nan"), -float("nan"), 1.0, 2.0, 3.0],
                          "c": ["a", "a", "a", "b", "b", "c", "d", "e"]})
    train = pl.DataFrame({"x": [-0.0, 5.0, 6.0, 7.0], "c": ["a", "a", "b", "c"]}).select(["c", "x"])  # other order
    j = Judge(0.05)
    _mode(j, batch, train, GateConfig())
    assert j.scores["joint.mode_share"] == 3 / 8  # (0.0, "a") three times, -0.0 included
    assert j.scores["joint.repeated_rows"] == 2.0  # (0.0, "a") and (NaN, "b")
    assert j.scores["joint.mode_share.real"] == 1 / 4  # real_train's (-0.0, "a"), its columns in another order
