"""The collapse report: every generation's scores per study, as one table, curves and a markdown page.

The noise band of an indicator is what fresh *real* data of the batch's size scores on it: the
scorecard's own `<indicator>.noise_low/.noise_high/.noise_floor` scores (aggregated for the summaries
over columns), or, for a scorecard without them, bootstrap draws of real_holdout scored like a batch
(`noise_band`). A curve leaving its band is drift the real data's own sampling noise does not explain.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ouroboros.provenance import label

# Indicators drawn as curves, when present; a reader looks at these before the full table.
HEADLINE = ("fidelity.column_shapes", "fidelity.column_shapes.min", "collapse.spread_ratio.mean",
            "collapse.spread_ratio.min", "collapse.category_survival.mean", "privacy.exact_copy_rate")
# gate bookkeeping (rule counts), not indicators: never reported as the indicator that moved first
NOT_INDICATORS = ("contract.",)
FAMILY_COLOURS = {"copula": "tab:blue", "gan": "tab:red", "vae": "tab:purple", "diffusion": "tab:green",
                  "gaussian": "tab:grey"}
POLICY_STYLES = {"replace": "-", "accumulate": "--", "anchor": ":"}
NOISE_SUFFIXES = (".noise_low", ".noise_high", ".noise_floor")
# an indicator with no band counts as moved once it is this far (relative) from generation 0's value
FALLBACK_TOLERANCE = 0.05


@dataclass(frozen=True)
class GenerationRecord:
    study: str
    generation: int
    passed: bool | None  # None: the gate has not judged this batch
    scores: dict[str, float]
    failures: list[dict]
    family: str = ""
    policy: str = ""
    pool: dict[str, int] = field(default_factory=dict)
    origins: list[dict] = field(default_factory=list)  # the pool's composition by origin (ouroboros.provenance)
    mitigation: str = ""  # what made this generation pass when its first fit was refused (ouroboros.chain.mitigation)
    gate_mode: str = "block"  # observe: the gate scored this batch but did not guard the chain


def summarise(scores: dict[str, float]) -> dict[str, float]:
    """Add summaries over columns to a flat score dict: the mean and the worst column of the per-column
    variance ratios, category survivals and column shapes (the worst column is where collapse shows first),
    with noise bands aggregated from the per-column ones where the scorecard gives them."""
    out = dict(scores)
    for family, prefix in (("collapse.spread_ratio", "collapse.spread_ratio."),
                           ("collapse.category_survival", "collapse.category_survival."),
                           ("fidelity.column_shapes", "shape.")):
        columns = [k for k, v in scores.items() if k.startswith(prefix) and v is not None
                   and not k.endswith((".mean", ".min", *NOISE_SUFFIXES))]
        if not columns:
            continue
        values = [scores[k] for k in columns]
        if family != "fidelity.column_shapes":
            out[f"{family}.mean"] = sum(values) / len(values)
        # a variance ratio is worst furthest from 1 either way; the others are worst at their lowest
        out[f"{family}.min"] = (min(values) if family != "collapse.spread_ratio"
                                else min(values, key=lambda v: -abs(np.log(max(v, 1e-12)))))
        lows = [scores.get(f"{k}.noise_low", scores.get(f"{k}.noise_floor")) for k in columns]
        highs = [scores.get(f"{k}.noise_high", scores.get(f"{k}.noise_floor")) for k in columns]
        if all(v is not None for v in lows + highs):
            if family != "fidelity.column_shapes":
                out.setdefault(f"{family}.mean.noise_low", sum(lows) / len(lows))
                out.setdefault(f"{family}.mean.noise_high", sum(highs) / len(highs))
            out.setdefault(f"{family}.min.noise_low", min(lows))
            out.setdefault(f"{family}.min.noise_high", max(highs))
    return out


def _is_noise_key(key: str) -> bool:
    return key.endswith(NOISE_SUFFIXES)


def report_table(records: list[GenerationRecord]) -> pl.DataFrame:
    """Long table: study x generation x indicator -> value (plus the verdict, family and policy)."""
    rows = [
        {"study": r.study, "family": r.family, "policy": r.policy, "generation": r.generation, "passed": r.passed,
         "indicator": k, "value": float(v)}
        for r in records
        for k, v in summarise(r.scores).items() if not _is_noise_key(k) and v is not None
    ]
    schema = {"study": pl.String, "family": pl.String, "policy": pl.String, "generation": pl.Int64,
              "passed": pl.Boolean, "indicator": pl.String, "value": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort("study", "generation", "indicator")


# -- noise -------------------------------------------------------------------------------------------

Bands = dict[str, tuple[float, float]]


def noise_band(real_train: pl.DataFrame, real_holdout: pl.DataFrame, score: Callable[[pl.DataFrame], dict],
               rows: int | None = None, draws: int = 8, seed: int = 0, quantiles=(0.0, 1.0)) -> Bands:
    """Range of each indicator over `draws` bootstrap samples of real_holdout scored by `score` (a scorecard)."""
    if real_holdout.height == 0:
        return {}
    n = rows or real_holdout.height
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    for _ in range(draws):
        sample = real_holdout[rng.integers(0, real_holdout.height, size=n).tolist()]
        for k, v in summarise(score(sample)).items():
            values.setdefault(k, []).append(float(v))
    return {k: (float(np.quantile(v, quantiles[0])), float(np.quantile(v, quantiles[1])))
            for k, v in values.items() if len(v) == draws}


def scorecard_bands(records: list[GenerationRecord]) -> Bands:
    """Noise bands the scorecard itself reports, as `<indicator>.noise_low/high` or `<indicator>.noise_floor`."""
    lows: dict[str, list[float]] = {}
    highs: dict[str, list[float]] = {}
    for r in records:
        for k, v in summarise(r.scores).items():
            for suffix, target in ((".noise_low", lows), (".noise_high", highs), (".noise_floor", lows),
                                   (".noise_floor", highs)):
                if k.endswith(suffix) and v is not None:
                    target.setdefault(k[: -len(suffix)], []).append(float(v))
    return {k: (min(lows[k]), max(highs.get(k, lows[k]))) for k in lows}


def merge_bands(*bands: Bands) -> Bands:
    out: Bands = {}
    for b in bands:
        for k, (lo, hi) in b.items():
            out[k] = (min(lo, out[k][0]), max(hi, out[k][1])) if k in out else (lo, hi)
    return out


# -- what the guard and the indicators say -----------------------------------------------------------

def guard_trips(records: list[GenerationRecord]) -> dict[str, tuple[int, str] | None]:
    """Per study: the first generation whose batch failed the gate, and the first failing indicator."""
    trips: dict[str, tuple[int, str] | None] = {}
    for r in sorted(records, key=lambda r: (r.study, r.generation)):
        trips.setdefault(r.study, None)
        if trips[r.study] is None and r.passed is False:
            first = r.failures[0]["indicator"] if r.failures else "contract"
            trips[r.study] = (r.generation, first)
    return trips


def first_movers(table: pl.DataFrame, bands: Bands) -> dict[str, tuple[int, str, float] | None]:
    """Per study: the first generation >= 1 and the indicator that moved away from generation 0's value by
    more than the real data's own sampling spread (the width of its noise band); ties: the largest move.

    Indicators without a band count once they move FALLBACK_TOLERANCE (relative) from generation 0.
    """
    out: dict[str, tuple[int, str, float] | None] = {}
    for study in table["study"].unique(maintain_order=True).to_list():
        part = table.filter(pl.col("study") == study)
        best: tuple[int, str, float] | None = None
        for indicator in part["indicator"].unique().sort().to_list():
            if indicator.startswith(NOT_INDICATORS):
                continue
            s = part.filter(pl.col("indicator") == indicator).sort("generation")
            gens, vals = s["generation"].to_list(), s["value"].to_list()
            if len(vals) < 2:
                continue
            ref = vals[0]
            if indicator in bands:
                lo, hi = bands[indicator]
                scale = max(hi - lo, 0.01 * max(abs(lo), abs(hi)), 1e-3)
            else:
                scale = max(FALLBACK_TOLERANCE * abs(ref), 1e-3)
            hit = next(((g, abs(v - ref) / scale) for g, v in zip(gens[1:], vals[1:]) if abs(v - ref) > scale),
                       None)
            if hit and (best is None or hit[0] < best[0] or (hit[0] == best[0] and hit[1] > best[2])):
                best = (hit[0], indicator, hit[1])
        out[study] = best
    return out


# -- drawing: ouroboros/report_plot.py ----------------------------------------------------------------

def data_uri(png: Path) -> str:
    """The PNG inline, so a markdown viewer without file access (the Dagster UI) still shows it."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()


# -- the page ----------------------------------------------------------------------------------------

def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def pool_origin_markdown(records: list[GenerationRecord]) -> list[str]:
    """The section "Pool composition by origin": per generation, the rows its generator learnt from, by origin."""
    rows = [(r, part) for r in sorted(records, key=lambda r: (r.study, r.generation)) for part in r.origins]
    if not rows:
        return []
    lines = ["", "## Pool composition by origin", "",
             "What each generator learnt from: real_train, or a batch (study/generation), each named by its "
             "content fingerprint.", "", "| study | generation | origin | fingerprint | rows | share |",
             "|---|---|---|---|---|---|"]
    for r, p in rows:
        lines.append(f"| {r.study} | {r.generation} | {label(p, fingerprint=False)} | `{(p.get('fingerprint') or '')[:12]}` "
                     f"| {p['rows']} | {p['share']:.1%} |")
    return lines


def downstream_cell(scores: dict[str, float]) -> str:
    """`tstr (trtr)` from the gate's utility test, or '-' when it did not run."""
    tstr, trtr = scores.get("utility.tstr.skill"), scores.get("utility.trtr.skill")
    return "-" if tstr is None or trtr is None else f"{tstr:.3f} ({trtr:.3f})"


def report_markdown(records: list[GenerationRecord], plot_name: str | None = None, bands: Bands | None = None,
                    approved: dict[str, str] | None = None, notes: dict[str, str] | None = None) -> str:
    """A page a reviewer reads: where each guard tripped, what moved first, verdicts and headline indicators."""
    bands = merge_bands(scorecard_bands(records), bands or {})
    table = report_table(records)
    trips = guard_trips(records)
    movers = first_movers(table, bands) if table.height else {}
    meta = {r.study: (r.family, r.policy) for r in records}
    lines = ["# Collapse report", ""]
    for study, trip in trips.items():
        family, policy = meta[study]
        what = f" ({family}, {policy})" if family else ""
        line = f"- **{study}**: " + ("no gate failure" if trip is None
                                     else f"guard tripped at generation {trip[0]} on `{trip[1]}`")
        mover = movers.get(study)
        line += what + (f"; first to move beyond real-data noise: `{mover[1]}` at generation {mover[0]}"
                        if mover else "; no indicator moved beyond real-data noise")
        if approved and study in approved:
            line += f"; approved generator: {approved[study]}"
        if notes and study in notes:
            line += f"; {notes[study]}"
        lines.append(line)
    for study in sorted(set(notes or {}) - set(trips)):  # a study with no current generation at all
        lines.append(f"- **{study}**: {notes[study]}")
    if plot_name:
        lines += ["", f"![collapse curves]({plot_name})"]
    # downstream: the gate's utility test, a model trained on the batch against the same model trained on as many
    # real_train rows (mean of bootstrap draws), both scored on real_holdout
    head = ["study", "generation", "pool", "verdict", "mitigation", "downstream skill (real baseline)", *HEADLINE]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(records, key=lambda r: (r.study, r.generation)):
        s = summarise(r.scores)
        verdict = {True: "pass", False: "FAIL", None: "not judged"}[r.passed]
        if r.passed is False and r.failures:
            verdict += " (" + ", ".join(f"`{f['indicator']}`" for f in r.failures[:3]) + ")"
        if r.gate_mode == "observe":
            verdict += ", observed only"
        pool = ", ".join(f"{k} {v}" for k, v in r.pool.items())
        cells = [_fmt(s.get(k)) for k in HEADLINE]
        lines.append(f"| {r.study} | {r.generation} | {pool} | {verdict} | {r.mitigation or '-'} | "
                     f"{downstream_cell(r.scores)} | " + " | ".join(cells) + " |")
    shown_bands = [k for k in HEADLINE if k in bands]
    if shown_bands:
        lines += ["", "Real-data noise band (fresh real rows scored like a batch): "
                  + "; ".join(f"`{k}` {bands[k][0]:.3f} to {bands[k][1]:.3f}" for k in shown_bands) + "."]
    lines += pool_origin_markdown(records)
    lines += ["", f"{table.height} indicator values in the full table (collapse_report.parquet)."]
    return "\n".join(lines) + "\n"
