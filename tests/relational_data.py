"""A seeded process of entities with an ordered child table (the tests' fresh real entities).

Patients (age, income, a group) and their visits: the number of visits grows with age; each visit's value
carries the patient's own level, the age and a trend over the visits with AR(1) noise; gaps between visits
are exponential with a scale set by the patient's income. Every draw with a new seed is a set of fresh real
entities from the same population, so the dataset gate must pass it (at its false-refusal rate).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ouroboros.dataset import Dataset, TableSpec, validate_dataset

SPECS = {"patients": TableSpec(key="patient_id"),
         "visits": TableSpec(key="visit_id", parent="patients", foreign_key="patient_id", order_by="day")}


def draw(n: int, seed: int, first_id: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    income = rng.lognormal(3.0, 0.5, n)
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    n_visits = rng.poisson(0.5 + age / 15)
    pid = np.arange(first_id, first_id + n)
    level = rng.normal(0, 1, n)
    rows = {"visit_id": [], "patient_id": [], "day": [], "value": [], "cost": []}
    vid = first_id * 100
    for i in range(n):
        k = int(n_visits[i])
        if not k:
            continue
        gaps = rng.exponential(5 + income[i] / 4, k)
        noise = np.zeros(k)
        for t in range(k):
            noise[t] = (0.6 * noise[t - 1] if t else 0) + rng.normal(0, 0.5)
        value = level[i] + 0.03 * age[i] + 0.4 * np.arange(k) + noise
        rows["visit_id"] += list(range(vid, vid + k))
        vid += k
        rows["patient_id"] += [int(pid[i])] * k
        rows["day"] += list(np.cumsum(gaps))
        rows["value"] += list(value)
        rows["cost"] += list(rng.gamma(2.0, 10 + income[i] / 5, k))
    patients = pl.DataFrame({"patient_id": pid, "age": age, "income": income, "group": group})
    visits = pl.DataFrame(rows, schema={"visit_id": pl.Int64, "patient_id": pl.Int64, "day": pl.Float64,
                                        "value": pl.Float64, "cost": pl.Float64})
    return validate_dataset({"patients": patients, "visits": visits}, SPECS)
