"""Shared fixtures: small seeded slices of the bundled demo table, and a tiny pipeline config."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

DEMO = Path(__file__).resolve().parents[1] / "ouroboros" / "data" / "crashes.parquet"


@pytest.fixture(scope="session")
def demo() -> pl.DataFrame:
    return pl.read_parquet(DEMO)


@pytest.fixture(scope="session")
def small_demo(demo: pl.DataFrame) -> pl.DataFrame:
    """600 seeded rows: enough for every column's categories and nulls to show, fast to model."""
    return demo.sample(n=600, seed=11, shuffle=True)


@pytest.fixture()
def tiny_source(tmp_path: Path, small_demo: pl.DataFrame) -> Path:
    """small_demo written as a parquet file, the real-data source of the Dagster tests."""
    path = tmp_path / "real.parquet"
    small_demo.write_parquet(path)
    return path


@pytest.fixture()
def mixed_frame() -> pl.DataFrame:
    """A hand-made frame with every kind the schema knows, and nulls."""
    return pl.DataFrame({
        "x": [1.5, 2.5, None, 4.0, 5.5, 6.0],
        "n": pl.Series([1, 2, 3, None, 5, 6], dtype=pl.Int32),
        "b": [True, False, True, None, False, True],
        "c": ["a", "b", "a", None, "c", "a"],
        "t": pl.Series(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", None, "2024-01-06"]).str.to_date(),
    })
