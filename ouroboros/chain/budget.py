"""The time budget of a generation step, decided from a fixed cost model so the same data and config always
make the same choices (epochs, training rows, how many attempts), whatever the machine's load.

The cost model counts optimizer steps: an epoch of a PyTorch family is `ceil(rows / batch)` steps, with the
family's own batch rule (its defaults in ouroboros/generators), and one step costs a fixed part plus a part per
row of the batch, both growing with the table's width. The constants are single-thread CPU seconds measured on
this project's reference machine (2 shared cores; `benchmarks/fit_timing.py` times fits the same way) over
tables of 9 to 87 columns and 500 to 60,000 rows, times HEADROOM. `estimate` is what a fit is planned to cost;
the fit's measured seconds are reported beside it, so a reader sees how far the plan was off on their machine.

Why steps and not rows: the diffusion model takes at least 20 steps an epoch (small tables train in small
batches), and a step's cost is mostly fixed below a few hundred rows, so a cost per row underestimated small
tables about 2x and overestimated large ones about 1.6x.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADROOM = 1.3  # measured CPU seconds -> planned seconds: noise of a shared machine

# family -> fixed seconds (+ per column), ms per step (+ per column), ms per batch row (+ per column)
STEP_COST: dict[str, tuple[float, float, float, float, float, float]] = {
    "vae": (0.05, 0.002, 4.3, 0.075, 0.0, 0.0),  # batches of 500: the per-row part is folded into the step
    "diffusion": (0.05, 0.002, 2.5, 0.025, 0.006, 0.00012),
    "gan": (0.15, 0.015, 5.0, 0.35, 0.0, 0.0),  # batches of 300 (pac 10)
}
UNKNOWN_STEP = (1.0, 0.02, 10.0, 0.4, 0.01, 0.0002)  # a registered family this model has not measured
BATCH = {"vae": 500, "gan": 300, "diffusion": 1024}
ONE_PASS = {"copula": (0.5, 1e-5), "gaussian": (0.1, 1e-6)}  # no epochs: fixed + per row x column
DEFAULT_EPOCHS = {"vae": 100, "gan": 100, "diffusion": 300}  # the families' own defaults (ouroboros/generators)
MIN_EPOCHS = 10  # below this no torch family learns the table; the rows are cut instead
MIN_ROWS = 500  # training rows never cut below this (or the table's size)
DEFAULT_COLUMNS = 12


def has_epochs(family: str) -> bool:
    """Whether the family trains for epochs: it takes an `epochs` hyperparameter (a registered family the cost
    model has not measured is asked, not guessed)."""
    if family in STEP_COST:
        return True
    if family in ONE_PASS:
        return False
    from ouroboros.generators import _class_for, is_family  # lazily: the cost model itself needs no generator

    return is_family(family) and "epochs" in _class_for(family).PARAMS


def batch_rows(family: str, rows: int) -> int:
    """Rows per optimizer step under the family's default batch rule."""
    if family == "diffusion":  # ouroboros/generators/diffusion.py: at least min_steps_per_epoch (20) steps
        return max(2, min(BATCH["diffusion"], rows // 20))
    return max(1, min(BATCH.get(family, 500), rows))


def epoch_seconds(family: str, rows: int, columns: int = DEFAULT_COLUMNS) -> float:
    """Planned seconds of one epoch over `rows` training rows of a table `columns` wide."""
    _, _, step, step_col, per_row, per_row_col = STEP_COST.get(family, UNKNOWN_STEP)
    batch = batch_rows(family, max(rows, 1))
    steps = -(-max(rows, 1) // batch)
    ms = step + step_col * columns + batch * (per_row + per_row_col * columns)
    return HEADROOM * steps * ms / 1000


def fixed_seconds(family: str, columns: int = DEFAULT_COLUMNS) -> float:
    fixed, fixed_col = STEP_COST.get(family, UNKNOWN_STEP)[:2]
    return HEADROOM * (fixed + fixed_col * columns)


def estimate(family: str, epochs: int | None, rows: int, columns: int = DEFAULT_COLUMNS) -> float:
    """Planned seconds of one fit of `family` for `epochs` on `rows` training rows `columns` wide."""
    if not has_epochs(family):
        fixed, per_cell = ONE_PASS.get(family, (1.0, 1e-5))
        return fixed + per_cell * rows * columns
    return fixed_seconds(family, columns) + (epochs or DEFAULT_EPOCHS.get(family, 100)) * \
        epoch_seconds(family, rows, columns)


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


def plan_fit(family: str, seconds: float, rows: int, max_epochs: int | None = None,
             columns: int = DEFAULT_COLUMNS) -> FitPlan:
    """The most epochs (up to the family's default, or `max_epochs`) that fit `seconds` on `rows`; when even
    MIN_EPOCHS do not fit, the rows are cut to what does (never below MIN_ROWS)."""
    if not has_epochs(family):
        return FitPlan(family, None, rows, estimate(family, None, rows, columns), "")
    top = max_epochs or DEFAULT_EPOCHS.get(family, 100)
    left = max(0.0, seconds - fixed_seconds(family, columns))
    epochs = int(left // epoch_seconds(family, rows, columns))
    cuts = []
    if epochs < MIN_EPOCHS:
        # the most rows whose MIN_EPOCHS fit the time (an epoch costs more with more rows: a binary search)
        lo, hi = min(rows, MIN_ROWS), rows
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if MIN_EPOCHS * epoch_seconds(family, mid, columns) <= left:
                lo = mid
            else:
                hi = mid - 1
        fit_rows = lo
        if fit_rows < rows:
            cuts.append(f"training rows {rows} -> {fit_rows}")
        rows, epochs = fit_rows, MIN_EPOCHS
    if epochs < top:
        cuts.append(f"epochs {top} -> {epochs}")
    epochs = min(epochs, top)
    return FitPlan(family, epochs, rows, estimate(family, epochs, rows, columns), "; ".join(cuts))
