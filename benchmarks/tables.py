"""Seeded benchmark tables of shapes the demo does not have, made here so nothing is downloaded at run time.

Each table has realistic structure, not independent noise: columns depend on each other through a few
latent causes, numbers are skewed or heavy-tailed where real ones are, some columns have nulls, and
every table has a binary target so TSTR can be compared with TRTR.

- `loans`: 10,000 x 13, a job title with about 1,500 levels (seniority x role x field, Zipf-distributed)
  that drives income and sector; lognormal income and loan amount; grades from a credit score; nulls.
- `survey`: 6,000 x 61, 60 numeric columns from six latent factors: Gaussian scores, lognormal amounts,
  Poisson counts and bounded percentages, five with nulls; a rare binary target.
- `insurance`: 8,000 x 11, mostly categorical (region, age band, sex, smoker, plan, a 30-level
  occupation, marital status, children, vehicle), one skewed BMI, and a claim target.
"""

from __future__ import annotations

import numpy as np
import polars as pl

TARGETS = {"crashes": "outcome", "loans": "default", "survey": "purchase", "insurance": "claim"}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def loans(n: int = 10_000, seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    seniority = ["Junior", "Associate", "Senior", "Lead", "Principal", "Chief", "Assistant", "Deputy", "Head",
                 "Staff", "Trainee", "Regional"]
    roles = ["Nurse", "Engineer", "Teacher", "Driver", "Accountant", "Analyst", "Technician", "Manager", "Clerk",
             "Consultant", "Designer", "Electrician", "Mechanic", "Pharmacist", "Officer", "Developer", "Chef",
             "Scientist", "Sales Rep", "Lawyer", "Paramedic", "Planner", "Auditor", "Librarian", "Surveyor"]
    fields = ["Health", "Finance", "Education", "Transport", "Retail", "Public Sector"]
    sectors = ["care", "tech", "education", "logistics", "finance", "trades", "services", "public"]
    role_sector = rng.integers(0, len(sectors), len(roles))
    titles = [(s, r, f) for s in range(len(seniority)) for r in range(len(roles)) for f in range(len(fields))]
    order = rng.permutation(len(titles))
    # Zipf-like popularity over a random order of the 1,800 titles: a few common, a long tail of rare ones
    weights = 1.0 / (np.arange(1, len(titles) + 1) ** 1.05)
    pick = order[rng.choice(len(titles), n, p=weights / weights.sum())]
    s_idx = np.array([titles[i][0] for i in pick])
    r_idx = np.array([titles[i][1] for i in pick])
    f_idx = np.array([titles[i][2] for i in pick])
    title = [f"{seniority[s]} {roles[r]} ({fields[f]})" for s, r, f in zip(s_idx, r_idx, f_idx)]
    role_pay = rng.normal(0, 0.25, len(roles))
    senior_pay = np.linspace(-0.3, 0.5, len(seniority))[rng.permutation(len(seniority))]
    income = np.exp(10.9 + role_pay[r_idx] + senior_pay[s_idx] + rng.normal(0, 0.35, n))
    credit = np.clip(np.round(rng.normal(690, 55, n) + 40 * (np.log(income) - 10.9)), 300, 850).astype(int)
    grade_idx = np.clip(((800 - credit) / 35 + rng.normal(0, 0.7, n)).astype(int), 0, 6)
    grade = np.array(list("ABCDEFG"))[grade_idx]
    rate = np.round(5.5 + 3.4 * grade_idx + rng.gamma(2.0, 0.6, n), 2)
    amount = np.round(np.exp(np.log(income) - 1.3 + rng.normal(0, 0.45, n)) / 25) * 25
    term = np.where(rng.random(n) < _sigmoid((np.log(amount) - 9.6) * 2), 60, 36)
    dti = np.round(np.clip(rng.gamma(3.0, 6.0, n) * np.exp(-0.3 * (np.log(income) - 10.9)), 0, 60), 2)
    emp_length = np.minimum(rng.poisson(2 + 3 * (s_idx / len(seniority)) * 2), 10).astype(float)
    emp_length[rng.random(n) < 0.08] = np.nan
    dti[rng.random(n) < 0.04] = np.nan
    state_w = rng.dirichlet(np.full(50, 0.6))
    state = np.array([f"S{i:02d}" for i in range(50)])[rng.choice(50, n, p=state_w)]
    logit = -3.0 + 0.45 * grade_idx + 0.03 * np.nan_to_num(dti, nan=18) - 0.4 * (np.log(income) - 10.9) \
        + 0.3 * (term == 60)
    default = rng.random(n) < _sigmoid(logit)
    return pl.DataFrame({
        "job_title": title,
        "sector": np.array(sectors)[role_sector[r_idx]],
        "state": state,
        "annual_income": np.round(income, -2),
        "emp_length": pl.Series(emp_length, nan_to_null=True).cast(pl.Int64),
        "credit_score": credit,
        "grade": grade,
        "interest_rate": rate,
        "loan_amount": amount,
        "term": term,
        "dti": pl.Series(dti, nan_to_null=True),
        "home": rng.choice(["RENT", "MORTGAGE", "OWN"], n, p=[0.42, 0.46, 0.12]),
        "default": default.astype(int),
    })


def survey(n: int = 6_000, seed: int = 12) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    k = 6
    f = rng.normal(0, 1, (n, k))
    f[:, 1] += 0.6 * f[:, 0]  # correlated factors, as socio-demographic ones are
    cols: dict[str, np.ndarray] = {}

    def load(i: int) -> np.ndarray:
        w = np.zeros(k)
        main = i % k
        w[main] = rng.uniform(0.6, 1.0)
        w[(main + 1 + i % 3) % k] = rng.uniform(-0.5, 0.5)
        return f @ w

    for i in range(20):
        cols[f"score_{i:02d}"] = np.round(load(i) + rng.normal(0, 0.6, n), 3)
    for i in range(15):
        cols[f"amount_{i:02d}"] = np.round(np.exp(6 + 0.7 * load(i + 20) + rng.normal(0, 0.5, n)), 2)
    for i in range(15):
        cols[f"count_{i:02d}"] = rng.poisson(np.exp(0.8 + 0.5 * load(i + 40))).astype(float)
    for i in range(10):
        cols[f"share_{i:02d}"] = np.round(100 * _sigmoid(load(i + 60) + rng.normal(0, 0.8, n)), 1)
    for name in ("amount_03", "amount_07", "score_05", "count_02", "share_04"):
        cols[name][rng.random(n) < 0.07] = np.nan
    purchase = rng.random(n) < _sigmoid(-2.6 + 0.9 * f[:, 0] - 0.7 * f[:, 3] + 0.5 * f[:, 4] * f[:, 5])
    frame = {name: pl.Series(v, nan_to_null=True) for name, v in cols.items()}
    for name in [c for c in frame if c.startswith("count_")]:
        frame[name] = frame[name].cast(pl.Int64)
    return pl.DataFrame({**frame, "purchase": purchase.astype(int)})


def insurance(n: int = 8_000, seed: int = 13) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.choice(8, n, p=[0.10, 0.16, 0.17, 0.16, 0.14, 0.12, 0.09, 0.06])
    age_band = np.array(["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+"])[age]
    region = rng.choice(["north", "south", "east", "west", "centre", "islands"], n,
                        p=[0.22, 0.25, 0.18, 0.17, 0.13, 0.05])
    sex = rng.choice(["F", "M"], n)
    smoker = rng.random(n) < np.where(age < 3, 0.28, 0.16)
    p_married = np.clip(0.1 + 0.12 * age, 0, 0.7)
    marital = np.where(rng.random(n) < p_married, "married",
                       rng.choice(["single", "divorced", "widowed", "partner"], n, p=[0.6, 0.15, 0.05, 0.2]))
    marital = np.where((age >= 6) & (rng.random(n) < 0.3), "widowed", marital)
    children = np.where(marital == "married", rng.poisson(1.6, n), rng.poisson(0.4, n)).clip(0, 5)
    children = np.where(age >= 5, np.minimum(children, 1), children)
    occ_w = rng.dirichlet(np.full(30, 0.8))
    occ = rng.choice(30, n, p=occ_w)
    occupation = np.array([f"occ_{i:02d}" for i in range(30)])[occ]
    occupation = np.where(age >= 5, np.where(rng.random(n) < 0.7, "retired", occupation), occupation)
    occ_rich = (occ % 4 == 0)
    plan_p = np.where(occ_rich[:, None], [0.1, 0.3, 0.35, 0.25], [0.35, 0.4, 0.2, 0.05])
    plan = np.array(["basic", "standard", "plus", "premium"])[(rng.random(n)[:, None] > plan_p.cumsum(1)).sum(1)]
    vehicle = np.where(rng.random(n) < 0.15, "none",
                       rng.choice(["compact", "sedan", "suv", "van", "pickup", "ev", "hybrid", "sports", "motorbike"],
                                  n, p=[0.2, 0.22, 0.2, 0.08, 0.07, 0.07, 0.08, 0.03, 0.05]))
    bmi = np.round(np.exp(np.log(26) + 0.03 * age + rng.normal(0, 0.16, n)), 1)
    logit = -2.4 + 0.25 * age + 0.9 * smoker + 0.06 * (bmi - 26) + 0.3 * (plan == "premium") \
        + 0.4 * (vehicle == "motorbike")
    claim = rng.random(n) < _sigmoid(logit)
    return pl.DataFrame({
        "region": region, "age_band": age_band, "sex": sex, "smoker": smoker, "marital": marital,
        "children": children.astype(int), "occupation": occupation, "plan": plan, "vehicle": vehicle, "bmi": bmi,
        "claim": np.where(claim, "yes", "no"),
    })


MAKERS = {"loans": loans, "survey": survey, "insurance": insurance}
