"""The `ouroboros` command line: help, and `evaluate` on files without Dagster."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

from ouroboros.generators import create
from pipelines.cli import main


@pytest.fixture()
def real_file(tmp_path, small_demo):
    path = tmp_path / "real.parquet"
    small_demo.write_parquet(path)
    return path


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "ui", "report", "evaluate"):
        assert f"    {command} " in out


def test_the_cli_and_evaluate_do_not_import_dagster():
    code = ("import sys, pipelines.cli, pipelines.evaluate; "
            "assert 'dagster' not in sys.modules, 'dagster imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_evaluate_approves_a_fair_copy_and_blocks_a_collapsed_one(tmp_path, real_file, small_demo, capsys):
    synthetic = create("copula", seed=3).fit(small_demo).sample(400, seed=4)
    good = tmp_path / "good.csv"
    synthetic.write_csv(good)  # CSV on purpose: its inferred types differ from the real parquet's
    assert main(["evaluate", str(good), str(real_file), "--target", "outcome"]) == 0
    out = capsys.readouterr().out
    assert "Verdict: APPROVED" in out and "fidelity.column_shapes" in out

    squeezed = synthetic.with_columns((pl.col("sampling_weight") - pl.col("sampling_weight").median()) * 0.1
                                      + pl.col("sampling_weight").median())
    bad = tmp_path / "bad.parquet"
    squeezed.write_parquet(bad)
    assert main(["evaluate", str(bad), str(real_file)]) == 1
    out = capsys.readouterr().out
    assert "Verdict: BLOCKED" in out and "sampling_weight" in out
    assert main(["evaluate", str(bad), str(real_file), "--markdown"]) == 1
    assert "# Gate scorecard: bad.parquet" in capsys.readouterr().out


def test_evaluate_names_the_file_and_column_that_do_not_fit(tmp_path, real_file, small_demo, capsys):
    wrong = tmp_path / "wrong.parquet"
    small_demo.drop("sex").write_parquet(wrong)
    assert main(["evaluate", str(wrong), str(real_file)]) == 2
    err = capsys.readouterr().err
    assert str(wrong) in err and "missing ['sex']" in err

    text = tmp_path / "text.csv"
    small_demo.with_columns(pl.lit("many").alias("occupant_age")).write_csv(text)
    assert main(["evaluate", str(text), str(real_file)]) == 2
    err = capsys.readouterr().err
    assert "column 'occupant_age'" in err and "cannot be read as the real type" in err

    assert main(["evaluate", str(tmp_path / "nope.csv"), str(real_file)]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err
