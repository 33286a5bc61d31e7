"""`family: auto`: a bake-off of candidate families on a validation split carved from real_train.

The validation rows are chosen by the project's hash rule (`ouroboros.split.row_unit`) under a salt of their
own, so the same real_train always gives the same split and it is independent of the train/holdout split.
Each candidate is fitted on the rest of real_train within its share of the budget, samples as many rows as the
validation split holds, and is scored by the gate's own scorecard (`ouroboros.quality.evaluate`) with the
validation rows in the holdout's place. real_holdout is never read here: it stays the final judge.

Ranking: candidates that pass first, then (among the passing, and among the rest) higher fidelity quality
score, lower detection AUC, higher utility retention, fewer blocking failures, faster fit. Quality scores
within QUALITY_TIE of the group's best rank as equal, so detection decides between them (`rank`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from ouroboros.chain.budget import FitPlan, plan_fit
from ouroboros.config import GateConfig
from ouroboros.generators import GeneratorError, available, create
from ouroboros.generators import _class_for as family_class
from ouroboros.quality import Scorecard, evaluate
from ouroboros.split import row_unit

VALIDATION_FRACTION = 0.2
VALIDATION_SALT = 0x0B0E0FF  # added to data.seed: a salt no train/holdout split uses
BAKEOFF_SHARE = 1 / 3  # of the step's budget; the rest goes to the chosen candidate's fits on the whole pool
MAX_VALIDATION_ROWS = 5000


def validation_split(real_train: pl.DataFrame, seed: int = 0, key=None,
                     fraction: float = VALIDATION_FRACTION) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(fit rows, validation rows) of real_train by the hash rule on the bake-off's own salt."""
    u = row_unit(real_train, VALIDATION_SALT + seed, key)
    cut = min(fraction, MAX_VALIDATION_ROWS / max(1, real_train.height))
    mask = pl.Series(u < cut)
    return real_train.filter(~mask), real_train.filter(mask)


def subsample_index(n: int, rows: int, seed: int) -> np.ndarray | None:
    """Sorted row positions of a seeded subsample of `rows` out of `n` (None: keep all)."""
    if n <= rows:
        return None
    return np.sort(np.random.default_rng([seed, 0x5EB]).choice(n, size=rows, replace=False))


def subsample(df: pl.DataFrame, rows: int, seed: int) -> pl.DataFrame:
    """`rows` rows of `df` in their order, chosen with a seeded generator (all rows when it has no more)."""
    idx = subsample_index(df.height, rows, seed)
    return df if idx is None else df[idx.tolist()]


@dataclass
class Candidate:
    family: str
    epochs: int | None
    train_rows: int
    planned_seconds: float
    fit_seconds: float
    passed: bool
    quality: float
    detection_auc: float
    utility: float
    failures: int
    refused_by: str  # the first blocking indicator ("" when it passed)
    cut: str  # what the budget cut

    def params(self, base: dict) -> dict:
        return {**base, **({"epochs": self.epochs} if self.epochs is not None else {})}

    def sort_key(self, best_quality: float) -> tuple:
        """Its place among candidates whose best quality score (in its passed/refused group) is `best_quality`."""
        tier = int(np.floor((best_quality - self.quality) / QUALITY_TIE + 1e-9))
        return (not self.passed, tier, self.detection_auc, -self.utility, self.failures, self.fit_seconds)


# The quality score is the mean per-column shape (1 - KS or 1 - TVD): marginals only. Fresh real batches scored
# against one validation split spread over up to 0.006 (range of 8 draws; sd 0.0004 to 0.0016 on rwm5yr,
# k401k, fair and doctor_contacts, 1,273 to 4,037 rows), so a smaller difference does not say which candidate
# is more faithful, and a strict order on it made the marginals alone choose: rwm5yr's copula (0.990,
# detection AUC 0.630) beat a diffusion model (0.988, 0.571). Within the tie, detection (the joint) decides.
QUALITY_TIE = 0.005


def rank(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Best first: passed before refused; within each, quality tiers of QUALITY_TIE below the group's best,
    then detection AUC, utility retention, failures and fit time."""
    best = {p: max(c.quality for c in candidates if c.passed == p) for p in {c.passed for c in candidates}}
    return sorted(candidates, key=lambda c: c.sort_key(best[c.passed]))


@dataclass
class BakeOff:
    candidates: list[Candidate]  # ranked, best first
    validation_rows: int
    fit_rows: int
    budget_seconds: float
    skipped: list[str]  # candidates the budget left out, with why

    @property
    def chosen(self) -> Candidate:
        return self.candidates[0]

    def to_dicts(self) -> list[dict]:
        return [{"rank": i + 1, **asdict(c)} for i, c in enumerate(self.candidates)]

    def markdown(self) -> str:
        head = ("| rank | family | epochs | train rows | fit s (planned) | passed | quality | detection AUC | "
                "utility | refused by |\n|---|---|---|---|---|---|---|---|---|---|\n")
        rows = "\n".join(
            f"| {i + 1} | {c.family} | {c.epochs if c.epochs is not None else '-'} | {c.train_rows} | "
            f"{c.fit_seconds:.1f} ({c.planned_seconds:.1f}) | {'yes' if c.passed else 'no'} | {c.quality:.3f} | "
            f"{c.detection_auc:.3f} | {_num(c.utility)} | {c.refused_by or '-'} |" for i, c in enumerate(self.candidates))
        notes = [f"Validation: {self.validation_rows} rows of real_train (hash rule, own salt); fit side "
                 f"{self.fit_rows} rows; bake-off budget {self.budget_seconds:.0f} s."]
        cuts = [f"{c.family}: {c.cut}" for c in self.candidates if c.cut]
        if cuts:
            notes.append("Budget cuts: " + "; ".join(cuts) + ".")
        if self.skipped:
            notes.append("Left out: " + "; ".join(self.skipped) + ".")
        return head + rows + "\n\n" + " ".join(notes)


def family_params(family: str, params: dict | None) -> dict:
    """The hyperparameters of `family` in a study's `params`. Under `family: auto` a key named after a family
    holds that family's own settings (`params: {vae: {epochs: 50}}`); a flat key (`device`, `epochs`) applies to
    every candidate that takes it and is left out for those that do not. A flat key no candidate family knows is
    an error of the config, not something to drop silently: `check_params` raises it at load time."""
    params = dict(params or {})
    own = params.pop(family, None) or {}
    accepted = set(family_class(family).PARAMS) | {"device"}
    families = available()
    flat = {k: v for k, v in params.items() if k not in families and k in accepted}
    return {**flat, **own}


def check_params(candidates: Sequence[str], params: dict | None) -> None:
    """Raise GeneratorError naming a `params` key that no candidate family takes (a typo, under family auto)."""
    known = set(available()) | {"device"}
    for family in candidates:
        known |= set(family_class(family).PARAMS)
    unknown = sorted(set(params or {}) - known)
    if unknown:
        raise GeneratorError(f"params {unknown}: no candidate family {list(candidates)} takes them; put a "
                             "family's own settings under its name, e.g. params: {vae: {epochs: 50}}")
    for family in candidates:
        create(family, **family_params(family, params))


def refused_by(card: Scorecard) -> str:
    """The first blocking failure in words: indicator, column where it names one, value against its limit."""
    if card.passed or not card.failures:
        return ""
    f = card.failures[0]
    return f"{indicator_name(f.check, f.indicator)} {f.value:.3g} (limit {f.threshold:.3g})"


def _num(v: float) -> str:
    """A score for a table; -1 marks one the gate skipped (too few rows, or no learnable target)."""
    return "-" if v == -1.0 else f"{v:.3f}"


def _score(card: Scorecard, key: str, default: float) -> float:
    v = card.scores.get(key)
    return float(v) if v is not None and np.isfinite(v) else default


def run_bakeoff(real_train: pl.DataFrame, candidates: Sequence[str], budget_seconds: float, gate: GateConfig,
                target: str | None = None, seed: int = 0, params: dict | None = None,
                id_columns: Sequence[str] = (), key=None, data_seed: int = 0) -> BakeOff:
    """Fit every candidate family on real_train minus a validation split and rank them by the gate's scorecard
    against the validation rows. Each gets an equal share of the bake-off budget (BAKEOFF_SHARE of the step's)."""
    fit_side, validation = validation_split(real_train, data_seed, key)
    if validation.height < 2 or fit_side.height < 2:
        raise ValueError(f"family 'auto' needs at least a few rows on each side of the validation split; "
                         f"real_train has {real_train.height}: set a family explicitly")
    share = budget_seconds * BAKEOFF_SHARE / len(candidates)
    width = fit_side.width - sum(c in fit_side.columns for c in id_columns)
    out: list[Candidate] = []
    for family in candidates:
        own = family_params(family, params)
        plan: FitPlan = plan_fit(family, share, fit_side.height, own.get("epochs"), columns=width)
        rows = subsample(fit_side, plan.rows, seed)
        started = time.perf_counter()
        try:
            gen = create(family, seed=seed, id_columns=id_columns, **plan.apply(own))
            gen.fit(rows)
        except (GeneratorError, ValueError, RuntimeError) as exc:  # a family that cannot model this table
            out.append(Candidate(family, plan.epochs, rows.height, plan.seconds, time.perf_counter() - started,
                                 False, 0.0, 1.0, -1.0, 1, f"fit error: {str(exc)[:160]}", plan.cut))
            continue
        fit_seconds = time.perf_counter() - started
        batch = gen.sample(validation.height, seed=seed + 7919)
        card = evaluate(batch, rows, validation, gate, target=target, id_columns=id_columns)
        out.append(Candidate(family, plan.epochs, rows.height, plan.seconds, fit_seconds, card.passed,
                             _score(card, "fidelity.quality_score", 0.0), _score(card, "joint.detection_auc", 1.0),
                             _score(card, "utility.skill_retention", -1.0), len(card.failures),
                             refused_by(card), plan.cut))
    return BakeOff(rank(out), validation.height, fit_side.height, budget_seconds * BAKEOFF_SHARE, [])


def indicator_name(check: str, indicator: str) -> str:
    """`check.indicator`, once: some indicators already carry their check's name (fidelity.association_retention)."""
    return indicator if indicator.startswith(f"{check}.") else f"{check}.{indicator}"
