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


def draw(n: int, seed: int, first_id: int = 0, fixed_children: int | None = None, outcome: bool = False) -> Dataset:
    """`n` fresh patients and their visits; `fixed_children` gives every patient that many visits (a fault).

    With `outcome`, each patient also has a boolean `outcome` (the dataset's target) that depends on the visits:
    on the patient's own level, which only the visits' values show, and on the mean cost of the visits; age
    alone tells little. It is drawn from a generator of its own, so the other columns are those of the same
    draw without it."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    income = rng.lognormal(3.0, 0.5, n)
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    n_visits = rng.poisson(0.5 + age / 15) if fixed_children is None else np.full(n, fixed_children)
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
    if not outcome:
        return validate_dataset({"patients": patients, "visits": visits}, SPECS)
    mean_cost = patients.select("patient_id").join(visits.group_by("patient_id").agg(pl.col("cost").mean()),
                                                   on="patient_id", how="left", maintain_order="left")["cost"]
    z = (mean_cost.fill_null(mean_cost.mean()).to_numpy() - 30) / 10
    logit = 2.0 * level + 1.0 * z - 1.5 * (n_visits == 0) + 0.01 * (age - 50)
    y = np.random.default_rng([seed, 7]).random(n) < 1 / (1 + np.exp(-logit))
    return validate_dataset({"patients": patients.with_columns(pl.Series("outcome", y)), "visits": visits}, SPECS,
                            ("patients", "outcome"))


def shuffle_children(ds: Dataset, seed: int) -> Dataset:
    """Fault: each visit moved to a random patient (the number of visits per patient kept)."""
    v = ds.tables["visits"]
    perm = np.random.default_rng(seed).permutation(v.height)
    return ds.replace({**ds.tables, "visits": v.with_columns(pl.Series("patient_id", v["patient_id"].to_numpy()[perm]))})


def scramble_order(ds: Dataset, seed: int) -> Dataset:
    """Fault: within each patient, the visits' values dealt to the visit days in random order."""
    v = ds.tables["visits"].sort("patient_id", "day")
    r = pl.Series("__r", np.random.default_rng(seed).random(v.height))
    shuffled = v.with_columns(r).sort("patient_id", "__r").select("value", "cost")
    return ds.replace({**ds.tables, "visits": v.select("visit_id", "patient_id", "day").hstack(shuffled)})


def copy_entities(ds: Dataset, real: Dataset, share: float, seed: int) -> Dataset:
    """Fault: `share` of the batch's patients replaced by real patients copied whole (with fresh keys)."""
    rng = np.random.default_rng(seed)
    p, v = ds.tables["patients"], ds.tables["visits"]
    k = int(round(share * p.height))
    take = rng.choice(real.tables["patients"].height, k, replace=False)
    copied = real.tables["patients"][take]
    new_ids = pl.Series("patient_id", np.arange(k) + 10**8)
    mapping = pl.DataFrame({"patient_id": copied["patient_id"], "__new": new_ids})
    cv = real.tables["visits"].join(mapping, on="patient_id").drop("patient_id").rename({"__new": "patient_id"})
    cv = cv.with_columns(pl.int_range(pl.len()).alias("visit_id") + 10**9).select(v.columns)
    keep = p.filter(~pl.col("patient_id").is_in(p["patient_id"][:k].implode()))
    return ds.replace({"patients": pl.concat([keep, copied.with_columns(new_ids)]),
                       "visits": pl.concat([v.filter(pl.col("patient_id").is_in(keep["patient_id"].implode())), cv])})


def jitter_copies(ds: Dataset, real: Dataset, share: float, seed: int, scale: float = 0.01) -> Dataset:
    """Fault: `share` of the patients copied whole from `real` (fresh keys), every numeric non-key value then
    moved by normal noise of `scale` times its column's sd in `real`: no row, and no entity, is an exact copy."""
    copied = copy_entities(ds, real, share, seed)
    rng = np.random.default_rng([seed, 3])
    tables = {}
    for name, keys in (("patients", {"patient_id"}), ("visits", {"visit_id", "patient_id"})):
        df = copied.tables[name]
        is_copy = (df["patient_id"] >= 10**8).to_numpy()
        cols = [c for c, d in df.schema.items() if c not in keys and d.is_float()]
        tables[name] = df.with_columns(
            pl.Series(c, df[c].to_numpy() + is_copy * rng.normal(0, scale * real.tables[name][c].std(), df.height))
            for c in cols)
    return ds.replace(tables)


def swap_children(ds: Dataset, seed: int) -> Dataset:
    """Fault: each patient's visits (the whole sequence, in order) given to a random other patient."""
    p, v = ds.tables["patients"], ds.tables["visits"]
    ids = p["patient_id"].to_numpy()
    mapping = pl.DataFrame({"patient_id": ids, "__new": np.random.default_rng(seed).permutation(ids)})
    moved = v.join(mapping, on="patient_id", how="left", maintain_order="left")
    return ds.replace({**ds.tables, "visits": moved.drop("patient_id").rename({"__new": "patient_id"})
                       .select(v.columns)})
