"""The time budget of a generation step, decided from a fixed cost model so the same data and config always
make the same choices (epochs, training rows, how many attempts), whatever the machine's load.

The cost model is seconds per epoch per 1,000 training rows, measured on this project's reference machine
(2 CPU threads, shared) and doubled for headroom: `estimate` is what a fit is planned to cost, the fit's
measured seconds are reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

# family -> (fixed seconds, seconds per epoch per 1,000 rows, fewest rows an epoch costs as if it had)
COST: dict[str, tuple[float, float, int]] = {
    "vae": (1.0, 0.02, 2000),
    "diffusion": (1.0, 0.015, 2000),  # at least min_steps_per_epoch steps per epoch: small tables cost as 2k rows
    "gan": (1.0, 0.045, 2000),
    "copula": (0.5, 0.0, 0),  # one pass, no epochs: ~0.1 s per 10k rows
    "gaussian": (0.1, 0.0, 0),
}
UNKNOWN_COST = (2.0, 0.05, 2000)  # a registered family this model has not measured
DEFAULT_EPOCHS = {"vae": 100, "gan": 100, "diffusion": 300}  # the families' own defaults (ouroboros/generators)
MIN_EPOCHS = 10  # below this no torch family learns the table; the rows are cut instead
MIN_ROWS = 500  # training rows never cut below this (or the table's size)


def has_epochs(family: str) -> bool:
    """Whether the family trains for epochs: it takes an `epochs` hyperparameter (a registered family the cost
    model has not measured is asked, not guessed)."""
    if family in COST:
        return COST[family][1] > 0
    from ouroboros.generators import FAMILIES, _class_for  # lazily: the cost model itself needs no generator

    return family in FAMILIES and "epochs" in _class_for(family).PARAMS


def estimate(family: str, epochs: int | None, rows: int) -> float:
    """Planned seconds of one fit of `family` for `epochs` on `rows` training rows."""
    fixed, per_epoch, floor = COST.get(family, UNKNOWN_COST)
    if not per_epoch or not has_epochs(family):
        return fixed + rows / 100_000
    return fixed + (epochs or DEFAULT_EPOCHS.get(family, 100)) * per_epoch * max(rows, floor) / 1000


@dataclass(frozen=True)
class FitPlan:
    family: str
    epochs: int | None  # None: a family without epochs
    rows: int  # training rows (the pool is subsampled to this many when it is larger)
    seconds: float  # planned (cost model)
    cut: str  # what the budget cut, in words ("" when nothing)

    def apply(self, params: dict) -> dict:
        """`params` with this plan's epochs (the family's own params otherwise untouched)."""
        return {**params, "epochs": self.epochs} if self.epochs is not None else dict(params)


def plan_fit(family: str, seconds: float, rows: int, max_epochs: int | None = None) -> FitPlan:
    """The most epochs (up to the family's default, or `max_epochs`) that fit `seconds` on `rows`; when even
    MIN_EPOCHS do not fit, the rows are cut to what does (never below MIN_ROWS)."""
    if not has_epochs(family):
        return FitPlan(family, None, rows, estimate(family, None, rows), "")
    top = max_epochs or DEFAULT_EPOCHS.get(family, 100)
    fixed, per_epoch, floor = COST.get(family, UNKNOWN_COST)
    per = per_epoch * max(rows, floor) / 1000
    epochs = int(max(0.0, seconds - fixed) // per) if per else top
    cuts = []
    if epochs < MIN_EPOCHS:
        fit_rows = int(max(0.0, seconds - fixed) / (MIN_EPOCHS * per_epoch) * 1000)
        fit_rows = max(min(rows, MIN_ROWS), min(rows, fit_rows))
        if fit_rows < rows:
            cuts.append(f"training rows {rows} -> {fit_rows}")
        rows, epochs = fit_rows, MIN_EPOCHS
    if epochs < top:
        cuts.append(f"epochs {top} -> {epochs}")
    epochs = min(epochs, top)
    return FitPlan(family, epochs, rows, estimate(family, epochs, rows), "; ".join(cuts))
