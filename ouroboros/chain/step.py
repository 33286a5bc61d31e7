"""One generation step of a study: choose the family (`auto`), fit within the budget, and repair on refusal.

What it does, in order:

1. `family: auto` at generation 0: the bake-off (`ouroboros.chain.bakeoff`) ranks the candidates on a
   validation split of real_train. It reads neither real_holdout nor anything derived from it, so the final
   judge stays untouched by the choice.
2. An attempt loop. Each attempt fits one proposal (family, epochs, training rows, seed) on the pool within its
   share of the budget, then samples the batch exactly as the batch asset will (`batch_rows` rows, seed
   `seed + 7919`, `assets.generations.build_batch_asset`). When the step is asked to gate (generation 0 of an
   `auto` study, with real_holdout given), the batch is scored by `ouroboros.quality.evaluate` against
   real_holdout. A refusal moves the loop to the next strategy: the next candidate of the bake-off, then more
   epochs for the best attempt so far. The loop stops at the first pass, or when attempts or budget run out; the
   best attempt is kept (passing first, then the bake-off's order of fidelity, detection, utility).
3. When nothing passes, `advice` names the indicators (and the columns they name) that no attempt met and what
   the user can do.

Strategies are a list (`Strategy` objects proposing the next fit from what was tried so far). At generation
k >= 1 of a study with `mitigation` (and real_holdout given), the step gates every attempt too, and the study's
mitigations (`ouroboros.chain.mitigation`: refit, anchor, verify) are the strategies after the first fit; a
study without mitigation fits once and leaves the verdict to the gate asset, as before.

Multiple testing. Every gated attempt is one more look at real_holdout. The gate holds its false-refusal rate
for one look; for a bad generator, the chance that at least one of m attempts is approved by luck grows
up to m times the single-look rate (a union bound). So attempts are capped (`MAX_ATTEMPTS`, 3), and the
number of looks is recorded in the result (`holdout_looks`) and in the generator's record, where a reader can
see how many times the judge was asked before it said yes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from ouroboros.chain.bakeoff import (
    BAKEOFF_SHARE,
    BakeOff,
    _score,
    family_params,
    indicator_name,
    refused_by,
    run_bakeoff,
    subsample_index,
)
from ouroboros.chain.budget import DEFAULT_COLUMNS, FitPlan, plan_fit
from ouroboros.config import AUTO, GateConfig, StudyConfig
from ouroboros.generators import GeneratorError, create
from ouroboros.quality import Scorecard, evaluate
from ouroboros.rebalance import draw_batch

MAX_ATTEMPTS = 3  # looks at real_holdout per step: each one raises the final judge's false-approval rate
# The step's budget, in thirds: the bake-off (generation 0 of `auto`), the first fit, and repair or mitigation.
# Every generation of an auto chain (and every step that may repair) gives its first fit the same third, so the
# generations of a chain are trained alike and what changes between them is the data, not the compute. A step
# that fits once and nothing else (a named family, no gate in the step) gives its one fit the whole budget.
FIRST_SHARE = 1 / 3
BATCH_SEED_OFFSET = 7919  # the batch asset samples with the generator's seed + this


def step_seed(study: StudyConfig, generation: int) -> int:
    """The seed of generation k's generator (its batch is sampled with this + BATCH_SEED_OFFSET)."""
    return study.seed * 1000 + generation


@dataclass(frozen=True)
class Proposal:
    strategy: str  # which strategy proposed it, in words
    family: str
    params: dict
    plan: FitPlan
    seed: int
    lam: float | None = None  # anchor: the pool rebuilt with this real share (None: the policy's pool)
    reuse: int | None = None  # verify: the attempt whose generator is re-drawn (None: a fit of its own)
    verify: bool = False  # the batch is the verifier's selection of a larger draw (ouroboros.chain.verify)


@dataclass
class Attempt:
    number: int
    strategy: str
    family: str
    epochs: int | None
    train_rows: int
    seed: int
    planned_seconds: float
    fit_seconds: float
    gated: bool
    passed: bool | None  # None: not gated in the step (the gate asset judges the batch)
    quality: float
    detection_auc: float
    utility: float
    refused_by: str
    failures: list[dict] = field(default_factory=list)  # {indicator, value, threshold}
    cut: str = ""
    real_share: float | None = None  # real share of the pool it learnt from (anchor raises it)
    verified: bool = False  # its batch is a verifier's selection (no fit of its own)

    def sort_key(self) -> tuple:
        return (self.passed is False, -self.quality, self.detection_auc, -self.utility, len(self.failures))


@dataclass
class StepResult:
    generator: object  # the fitted generator kept (ouroboros.identifiers.WithIdentifiers)
    family: str  # the family fitted (the chosen one under auto)
    requested_family: str  # the study's family as configured ("auto" or a family)
    params: dict  # the hyperparameters the kept generator was made with
    seed: int
    plan: FitPlan
    pool_index: np.ndarray | None  # rows of the pool the kept generator learned from (None: all of them)
    fit_seconds: float
    total_seconds: float
    bakeoff: BakeOff | None
    attempts: list[Attempt]
    holdout_looks: int
    passed: bool | None  # the kept attempt's verdict on real_holdout; None when the step did not gate
    advice: str  # when nothing passed: what no attempt met and what to do ("" otherwise)
    real_share: float | None = None  # the kept attempt's pool real share when anchor raised it (None: policy's)
    selection: dict | None = None  # the kept batch's verifier selection (`Selection.to_dict`; None: no selection)
    mitigation: str = ""  # the mitigation whose attempt passed ("" when the first fit passed or none did)

    @property
    def cut(self) -> str:
        return self.plan.cut

    def summary(self) -> dict:
        """Plain data for the generator's record, MLflow and the run summary."""
        return {"family": self.family, "requested_family": self.requested_family, "seed": self.seed,
                "epochs": self.plan.epochs, "train_rows": self.plan.rows, "budget_cut": self.plan.cut,
                "fit_seconds": round(self.fit_seconds, 3), "total_seconds": round(self.total_seconds, 3),
                "holdout_looks": self.holdout_looks, "passed": self.passed, "advice": self.advice,
                "mitigation": self.mitigation, "real_share": self.real_share,
                "selection": {k: v for k, v in self.selection.items() if k != "index"} if self.selection else None,
                "bakeoff": self.bakeoff.to_dicts() if self.bakeoff else None,
                "bakeoff_validation_rows": self.bakeoff.validation_rows if self.bakeoff else None,
                "attempts": [asdict(a) for a in self.attempts]}

    def markdown(self) -> str:
        parts = []
        if self.bakeoff:
            parts += ["**Bake-off** (validation split of real_train; real_holdout not read):", "",
                      self.bakeoff.markdown(), ""]
        parts.append(f"**Chosen:** {self.family}" + (f" (requested {self.requested_family})"
                                                     if self.requested_family != self.family else ""))
        if self.plan.cut:
            parts.append(f"**Budget cut:** {self.plan.cut}")
        if self.mitigation:
            parts.append(f"**Passed by mitigation:** {self.mitigation}")
        if self.attempts:
            parts += ["", "**Attempts** (each gated one is one look at real_holdout; "
                      f"{self.holdout_looks} taken):", "", attempts_markdown(self.attempts)]
        if self.advice:
            parts += ["", f"**No attempt passed.** {self.advice}"]
        return "\n".join(parts)


def attempts_markdown(attempts: Sequence[Attempt]) -> str:
    head = ("| # | strategy | family | epochs | train rows | real share | seed | fit s (planned) | verdict | "
            "quality | detection AUC | refused by |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    verdict = {True: "passed", False: "refused", None: "not gated"}
    return head + "\n".join(
        f"| {a.number} | {a.strategy} | {a.family} | {a.epochs if a.epochs is not None else '-'} | {a.train_rows} | "
        f"{'-' if a.real_share is None else f'{a.real_share:.2f}'} | "
        f"{a.seed} | {a.fit_seconds:.1f} ({a.planned_seconds:.1f}) | {verdict[a.passed]} | {a.quality:.3f} | "
        f"{a.detection_auc:.3f} | {a.refused_by or '-'} |" for a in attempts)


@dataclass
class LoopState:
    """What the strategies see: the step's inputs, the bake-off, every attempt so far and the budget left."""
    study: StudyConfig
    pool_rows: int
    seed: int
    order: list[str]  # candidate families in the order to try (the bake-off's ranking, or the one family)
    remaining_seconds: float  # planned (cost model), so the same inputs always make the same choices
    attempts_left: int
    first_seconds: float = 0.0  # the first fit's share (FIRST_SHARE of the step's budget; 0: an equal share)
    pool_columns: int = DEFAULT_COLUMNS  # the pool's width, for the cost model
    attempts: list[Attempt] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    real_share: float | None = None  # real share of the policy's pool (generation k >= 1)
    anchor_pool: Callable[[float], pl.DataFrame] | None = None  # real share -> pool rows (mitigation anchor)

    def share(self) -> float:
        return self.remaining_seconds / max(1, self.attempts_left)

    def proposal(self, strategy: str, family: str, seconds: float, seed: int | None = None,
                 epochs: int | None = None) -> Proposal:
        own = family_params(family, self.study.params) if self.study.family == AUTO else dict(self.study.params)
        top = epochs or own.get("epochs")
        plan = plan_fit(family, seconds, self.pool_rows, top, columns=self.pool_columns)
        return Proposal(strategy, family, plan.apply(own), plan, self.seed if seed is None else seed)


class Strategy:
    """Proposes the next fit, or None when it has nothing (more) to offer. Subclasses: one way to repair."""
    name = "strategy"

    def propose(self, state: LoopState) -> Proposal | None:
        raise NotImplementedError


class First(Strategy):
    """The first fit: the chosen candidate (or the study's family) with its share of the budget."""
    name = "first"

    def propose(self, state: LoopState) -> Proposal | None:
        if state.proposals:
            return None
        return state.proposal(self.name, state.order[0], min(state.first_seconds or state.share(),
                                                              state.remaining_seconds))


class NextCandidate(Strategy):
    """Repair: the next family of the bake-off's ranking not yet tried."""
    name = "next candidate"

    def propose(self, state: LoopState) -> Proposal | None:
        tried = {p.family for p in state.proposals}
        rest = [f for f in state.order if f not in tried]
        return state.proposal(self.name, rest[0], state.share()) if rest else None


class MoreEpochs(Strategy):
    """Repair: the best attempt's family again with all the budget left, when that buys more epochs."""
    name = "more epochs"

    def propose(self, state: LoopState) -> Proposal | None:
        fitted = [a for a in state.attempts if a.epochs is not None and not a.refused_by.startswith("fit error")]
        if not fitted:
            return None
        best = min(fitted, key=Attempt.sort_key)
        p = state.proposal(self.name, best.family, state.remaining_seconds, seed=best.seed + 1)
        return p if p.plan.epochs is not None and p.plan.epochs > (best.epochs or 0) else None


def strategies_for(study: StudyConfig, generation: int, gated: bool) -> list[Strategy]:
    """The attempt loop's strategies, in order. Generation 0 of an auto study repairs a refusal with the next
    candidate, then more epochs; a gated generation k >= 1 tries the study's mitigations in its order
    (`ouroboros.chain.mitigation`); everything else fits once."""
    if not gated:
        return [First()]
    if generation >= 1:
        from ouroboros.chain.mitigation import strategies  # it builds on this module's Strategy

        return [First(), *strategies(study)]
    return [First(), NextCandidate(), MoreEpochs()]


def _failures(card: Scorecard) -> list[dict]:
    return [{"check": f.check, "indicator": f.indicator, "value": f.value, "threshold": f.threshold}
            for f in card.failures]


# a named column is offered as a possible identifier only when most of its values are distinct: telling a user to
# declare a 5-level rating an identifier is advice no one can use
IDENTIFIER_HINT_SHARE = 0.5


def advice_for(attempts: Sequence[Attempt], reference: pl.DataFrame, budget_seconds: float, cut: str) -> str:
    """The indicators every gated attempt failed, the columns they name, and what the user can do."""
    gated = [a for a in attempts if a.gated]
    if not gated:
        return ""
    sets = [{indicator_name(f['check'], f['indicator']) for f in a.failures} or {a.refused_by} for a in gated]
    common = sorted(set.intersection(*sets)) if sets else []
    named = sorted({c for ind in (common or sorted(set.union(*sets))) for c in reference.columns
                    if ind.endswith(f".{c}") or f".{c}." in ind or f":{c}" in ind})
    what = ", ".join(common) if common else "each attempt failed something different: " + "; ".join(
        f"{a.family}: {a.refused_by}" for a in gated)
    height = max(1, reference.height)
    id_like = [c for c in named if reference[c].n_unique() / height > IDENTIFIER_HINT_SHARE]
    tips = []
    if id_like:
        tips.append(f"if {', '.join(id_like)} is an identifier (mostly distinct values), declare it in "
                    "data.id_columns")
    if named:
        tips.append(f"check or drop the column(s) the failing indicators name ({', '.join(named)})")
    tips.append(f"raise study.budget_seconds (now {budget_seconds:.0f} s"
                + (f"; the budget cut {cut}" if cut else "") + ")")
    tips.append("or set the study's family and params explicitly")
    return f"No candidate met: {what}" + (f" (columns: {', '.join(named)})" if named else "") + ". " + \
        "What you can do: " + "; ".join(tips) + "."


def run_step(pool_rows: pl.DataFrame, study: StudyConfig, gate: GateConfig, generation: int = 0, *,
             batch_rows: int | None = None, real_train: pl.DataFrame | None = None,
             real_holdout: pl.DataFrame | None = None, chosen_family: str | None = None,
             target: str | None = None, id_columns: Sequence[str] = (), data_seed: int = 0, key=None,
             callback: Callable[[int, dict], None] | None = None, log: Callable[[str], None] | None = None,
             max_attempts: int = MAX_ATTEMPTS, anchor_pool: Callable[[float], pl.DataFrame] | None = None,
             real_share: float | None = None) -> StepResult:
    """Fit generation `generation` of `study` on `pool_rows` and return the generator to keep (see the module
    docstring). `real_train` is the real rows the gate compares with (generation 0: the pool itself);
    `real_holdout` is read only to gate attempts, after the family is chosen. `chosen_family`: under auto at
    k >= 1, the family generation 0 chose (no bake-off then). `callback(epoch, losses)` sees every attempt's fit.
    Mitigation (generation k >= 1 of a study with `mitigation`): `real_share` is the real share of `pool_rows`
    (the policy's pool) and `anchor_pool(lam)` builds the pool with real share `lam` (fresh real rows plus
    generation k-1's batch) for the `anchor` mitigation; `real_train` and `real_holdout` are then required.
    """
    from ouroboros.chain.mitigation import MAX_MITIGATION_ATTEMPTS, passed_by
    from ouroboros.chain.verify import select

    log = log or (lambda _msg: None)
    started = time.perf_counter()
    seed = step_seed(study, generation)
    requested = study.family
    bakeoff = None
    budget = float(study.budget_seconds)
    if requested == AUTO and chosen_family is None:
        # real_holdout is deliberately not passed: the choice is made on real_train alone
        bakeoff = run_bakeoff(pool_rows, study.candidates, budget, gate, target=target, seed=seed,
                              params=study.params, id_columns=id_columns, key=key, data_seed=data_seed)
        order = [c.family for c in bakeoff.candidates if not c.refused_by.startswith("fit error")] or \
            [c.family for c in bakeoff.candidates]
        budget *= 1 - BAKEOFF_SHARE
        log(f"bake-off: {' > '.join(c.family for c in bakeoff.candidates)} (chose {order[0]})")
    else:
        order = [chosen_family or requested]
    mitigating = generation >= 1 and bool(study.mitigation)
    if mitigating and (real_holdout is None or real_train is None):
        raise ValueError(f"study {study.name!r}, generation {generation}: mitigation {study.mitigation} gates every "
                         "attempt, so the step needs real_train and real_holdout (pass both, or set mitigation: [])")
    reference = real_train if real_train is not None else pool_rows
    gated = (requested == AUTO and generation == 0 or mitigating) and real_holdout is not None
    batch_rows = batch_rows or study.rows or reference.height
    first = study.budget_seconds * FIRST_SHARE if requested == AUTO or gated else budget
    width = pool_rows.width - sum(c in pool_rows.columns for c in id_columns)
    cap = MAX_MITIGATION_ATTEMPTS if mitigating else max_attempts
    state = LoopState(study, pool_rows.height, seed, order, budget, attempts_left=cap if gated else 1,
                      first_seconds=first, pool_columns=width,
                      real_share=real_share, anchor_pool=anchor_pool if mitigating else None)
    strategies = strategies_for(study, generation, gated)
    kept: tuple[Attempt, object, Proposal, np.ndarray | None, dict | None] | None = None
    fitted: dict[int, tuple[object, np.ndarray | None]] = {}  # attempt number -> its generator and pool rows
    looks = 0
    while state.attempts_left > 0:
        proposal = next((p for s in strategies if (p := s.propose(state)) is not None), None)
        if proposal is None:
            break
        state.proposals.append(proposal)
        state.attempts_left -= 1
        share = proposal.lam if proposal.lam is not None else state.real_share
        if proposal.reuse is not None:  # verify: the earlier attempt's generator, re-drawn; no fit, no budget
            gen, index = fitted[proposal.reuse]
            rows_seen = state.attempts[proposal.reuse - 1].train_rows
            fit_seconds = 0.0
        else:
            state.remaining_seconds = max(0.0, state.remaining_seconds - proposal.plan.seconds)
            source = pool_rows if proposal.lam is None else state.anchor_pool(proposal.lam)
            index = subsample_index(source.height, proposal.plan.rows, proposal.seed)
            rows = source if index is None else source[index.tolist()]
            rows_seen = rows.height
            fit_started = time.perf_counter()
            try:
                gen = create(proposal.family, seed=proposal.seed, id_columns=id_columns, **proposal.params)
                gen.fit(rows, callback=callback)
            except (GeneratorError, ValueError, RuntimeError) as exc:
                if not gated:
                    raise
                attempt = Attempt(len(state.attempts) + 1, proposal.strategy, proposal.family,
                                  proposal.plan.epochs, rows.height, proposal.seed, proposal.plan.seconds,
                                  time.perf_counter() - fit_started, False, False, 0.0, 1.0, -1.0,
                                  f"fit error: {str(exc)[:160]}", [], proposal.plan.cut, share)
                state.attempts.append(attempt)
                continue
            fit_seconds = time.perf_counter() - fit_started
        fitted[len(state.attempts) + 1] = (gen, index)
        card = None
        selection = None
        if gated:
            batch_seed = proposal.seed + BATCH_SEED_OFFSET  # what the batch asset samples
            if proposal.verify:
                batch, chosen = select(gen, batch_rows, batch_seed, reference, target=target, id_columns=id_columns)
                selection = chosen.to_dict()
            else:
                batch = draw_batch(gen, batch_rows, batch_seed, target, study.target_share,
                                   reference[target] if target in reference.columns else None)
            card = evaluate(batch, reference, real_holdout, gate, target=target, id_columns=id_columns,
                            target_share=study.target_share)
            looks += 1
        attempt = Attempt(
            len(state.attempts) + 1, proposal.strategy, proposal.family, proposal.plan.epochs, rows_seen,
            proposal.seed, 0.0 if proposal.reuse is not None else proposal.plan.seconds, fit_seconds,
            card is not None, card.passed if card is not None else None,
            _score(card, "fidelity.quality_score", 0.0) if card else 0.0,
            _score(card, "joint.detection_auc", 1.0) if card else 1.0,
            _score(card, "utility.skill_retention", -1.0) if card else -1.0,
            refused_by(card) if card else "", _failures(card) if card else [], proposal.plan.cut, share,
            proposal.verify)
        state.attempts.append(attempt)
        log(f"attempt {attempt.number} ({attempt.strategy}): {attempt.family}, "
            f"{'passed' if attempt.passed else 'refused: ' + attempt.refused_by if gated else 'fitted'}"
            f" in {fit_seconds:.1f} s")
        if kept is None or attempt.sort_key() < kept[0].sort_key():
            kept = (attempt, gen, proposal, index, selection)
        if attempt.passed is not False:
            break
    if kept is None:
        reasons = "; ".join(f"{a.family}: {a.refused_by}" for a in state.attempts)
        raise GeneratorError(f"study {study.name!r}, generation {generation}: no candidate could be fitted "
                             f"({reasons}); set a family that models this table, or check the table's columns")
    best, gen, proposal, index, selection = kept
    passed = best.passed
    advice = advice_for(state.attempts, reference, study.budget_seconds, proposal.plan.cut) \
        if passed is False else ""
    return StepResult(gen, proposal.family, requested, proposal.params, proposal.seed, proposal.plan, index,
                      best.fit_seconds, time.perf_counter() - started, bakeoff, state.attempts, looks, passed,
                      advice, proposal.lam, selection, passed_by(state.attempts) if generation >= 1 else "")
