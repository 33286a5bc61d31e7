"""Hostile landed files: names that try to leave the lake, symbolic links, and decompression bombs.

Through the real sensor scan and ingest (tests/test_landing.py's Env): each ends quarantined or accepted with its
reason, nothing is written outside the lake, and no link is followed.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from test_landing import Env

from assets.real import ensure_real_table, ingest_landed_file, safe_name
from ouroboros.landing import LandingReadError, read_landed
from resources import GreatExpectationsResource


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def test_safe_name_keeps_names_inside_one_folder():
    for hostile in ("../../etc/passwd.csv", "/abs/x.parquet", "a\nb\x00c.csv", "..", ".hidden.csv",
                    "ü名前 (1).csv.gz", "x" * 400 + ".csv.zst"):
        name = safe_name(hostile)
        assert "/" not in name and not name.startswith(".") and len(name) <= 120, (hostile, name)
        assert name not in ("", ".", "..")
    assert safe_name("x" * 400 + ".csv.zst").endswith(".csv.zst")
    assert safe_name("good-file_1.parquet") == "good-file_1.parquet"


def test_hostile_names_and_links_stay_inside_the_lake(tmp_path):
    with dg.instance_for_test() as instance:
        env = Env(tmp_path, instance)
        outside = tmp_path / "secret.csv"
        env.fresh.slice(0, 10).write_csv(outside)
        (env.landing / "link.csv").symlink_to(outside)  # a link to a file outside landing: never followed
        long_name = "n" * 240 + ".parquet"  # with the time stamp prefix it would pass the 255-byte name limit
        env.fresh.slice(10, 10).write_parquet(env.landing / long_name)
        env.land_frame("we ird\tname;$(x).parquet", env.fresh.slice(20, 10))
        results = env.ingest_all()
        assert len(results) == 3
        reasons, accepted = env.reasons(), env.accepted()
        assert set(accepted) == {long_name, "we ird\tname;$(x).parquet"}  # original names kept in the ledger
        (link,) = reasons["link.csv"]["reasons"]
        assert link["code"] == "unsafe_file" and "symbolic link" in link["detail"]
        assert outside.exists() and outside.read_text().startswith(env.fresh.columns[0])  # untouched
        quarantined = Path(reasons["link.csv"]["quarantined_file"])
        assert quarantined.is_symlink()  # the link itself was moved, its target never read
        for entry in accepted.values():
            archive = Path(entry["archive"])
            assert archive.exists() and archive.parent == env.lake.archive_dir() and len(archive.name) <= 160
        lake = env.lake.path
        for p in lake.rglob("*"):
            assert _inside(p.parent, lake), p
        assert env.lake.read_real().height == env.source_df.height + 20


def test_a_run_config_with_a_path_name_cannot_escape(tmp_path):
    """A name with '../' in it (run config is user input) lands as one file name in quarantine."""
    with dg.instance_for_test() as instance:
        env = Env(tmp_path, instance)
        ensure_real_table(env.lake, str(env.source))
        evil = env.landing / "..%2f..%2fescape.csv"
        evil.write_text("not,a,real\n1,2,3\n")
        outcome = ingest_landed_file(dg.get_dagster_logger(), evil, env.lake,
                                     GreatExpectationsResource(project_root=str(env.settings.gx_root)), env.config)
        assert outcome["status"] == "quarantined"
        target = Path(outcome["quarantined_file"])
        assert target.parent == env.lake.quarantine_dir() and target.exists()


def _bomb(codec: str, header: str, mib: int) -> bytes:
    sink = pa.BufferOutputStream()
    line = ("1," * (header.count(",") + 1))[:-1] + "\n"
    with pa.CompressedOutputStream(sink, codec) as f:
        f.write(header.encode() + b"\n")
        block = (line * ((1 << 20) // len(line) + 1)).encode()  # about 1 MiB
        for _ in range(mib):
            f.write(block)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("codec,suffix", [("gzip", ".csv.gz"), ("zstd", ".csv.zst")])
def test_decompression_bomb_is_stopped_at_the_bound(tmp_path, codec, suffix):
    path = tmp_path / f"bomb{suffix}"
    path.write_bytes(_bomb(codec, "a,b,c", 64))  # about 64 MiB of text from a file of a few hundred KB
    assert path.stat().st_size < 2 * 1024**2
    with pytest.raises(LandingReadError, match="max_decompressed_bytes") as err:
        read_landed(path, max_bytes=8 * 1024**2)
    assert err.value.code == "too_large"
    assert read_landed(path, max_bytes=256 * 1024**2).height > 1000  # the same file under a larger bound


def test_bomb_is_quarantined_with_its_reason(tmp_path):
    with dg.instance_for_test() as instance:
        env = Env(tmp_path, instance, {"max_decompressed_bytes": 1024**2})
        header = ",".join(env.fresh.columns)
        env.land_bytes("bomb.csv.gz", _bomb("gzip", header, 8), None)
        [result] = env.ingest_all()
        assert not result.success
        (problem,) = env.reasons()["bomb.csv.gz"]["reasons"]
        assert problem["code"] == "too_large" and "1,048,576" in problem["detail"]
        assert Path(env.reasons()["bomb.csv.gz"]["quarantined_file"]).exists()
        assert env.lake.read_real().height == env.source_df.height
