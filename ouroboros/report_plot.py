"""The collapse report's picture: why the guard stopped each chain, readable without the table.

Panels come in this order: the indicator that tripped each stopped chain, then the indicator that moved
first in each chain, then the headline indicators while room is left. Every panel draws all chains
against the indicator's real-data noise band (what fresh real rows of the batch's size score) and the
gate's limit, marks the batch the gate blocked, and uses a linear axis with a handful of labelled ticks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ouroboros.report import (
    FAMILY_COLOURS,
    HEADLINE,
    NOT_INDICATORS,
    POLICY_STYLES,
    Bands,
    GenerationRecord,
    first_movers,
    guard_trips,
)

MAX_PANELS = 6
# Great Expectations contract rules name a rule and a column; the scorecard indicator that measures the same
EXPECTATION_SCORES = {"expect_column_stdev_to_be_between": "collapse.spread_ratio.{}",
                      "expect_column_tail_quantiles_to_be_between": "collapse.tail_mass.{}"}
# the gate setting that bounds an indicator (prefix -> (setting, side)); a limit taken from an actual failure
# (already widened to the noise band) is preferred, this is the nominal one for chains that did not fail
NOMINAL_LIMITS = (
    ("collapse.spread_ratio", "min_variance_ratio", "low"), ("collapse.spread_ratio", "max_variance_ratio", "high"),
    ("fidelity.column_shapes", "min_column_shape", "low"), ("shape.", "min_column_shape", "low"),
    ("fidelity.association_retention", "min_association_retention", "low"),
    ("collapse.category_survival", "min_category_survival", "low"),
    ("collapse.rare_category_survival", "min_rare_category_survival", "low"),
    ("privacy.exact_copy_rate", "max_exact_copy_rate", "high"),
    ("privacy.closer_to_train_share", "max_closer_to_train_share", "high"),
    ("joint.detection_auc", "max_detection_auc", "high"),
)
PLAIN = {  # what an indicator means, in the panel's axis label
    "fidelity.association_retention": "share of real column associations kept",
    "fidelity.column_shapes": "mean column shape (1 = same distribution)",
    "collapse.spread_ratio": "variance on the real rank-normal scale / real",
    "collapse.tail_mass": "mass beyond the real 1%/99% quantiles",
    "collapse.wasserstein": "Wasserstein distance (real std units)",
    "collapse.category_survival": "share of real categories kept",
    "shape.": "column shape (1 = same distribution)",
    "joint.detection_auc": "real-vs-synthetic classifier AUC",
    "privacy.exact_copy_rate": "share of rows copying a real row",
}


@dataclass(frozen=True)
class Panel:
    indicator: str
    why: str  # the panel's subtitle: which chain it explains


def score_key(failure: dict, scores: dict[str, float]) -> str | None:
    """The scorecard indicator behind a gate failure (a scorecard key, a collapse key, or a contract rule)."""
    name = str(failure.get("indicator", ""))
    for key in (name, f"collapse.{name}"):
        if key in scores:
            return key
    rule, _, column = name.partition(":")
    if column:
        key = EXPECTATION_SCORES.get(rule, "shape.{}").format(column)
        if key in scores:
            return key
    return None


def choose_panels(records: list[GenerationRecord], table: pl.DataFrame, bands: Bands) -> list[Panel]:
    """Trip indicators first, then first movers, then headline indicators, without repeats."""
    panels: dict[str, str] = {}
    present = set(table["indicator"].to_list()) if table.height else set()
    by_key = {(r.study, r.generation): r for r in records}
    for study, trip in guard_trips(records).items():
        if trip is None:
            continue
        rec = by_key[(study, trip[0])]
        for failure in rec.failures:
            key = score_key(failure, rec.scores)
            if key in present and key not in panels:
                panels[key] = f"stopped {study} at generation {trip[0]}"
                break
    for study, mover in (first_movers(table, bands) if table.height else {}).items():
        if mover and mover[1] not in panels and not mover[1].startswith(NOT_INDICATORS):
            panels[mover[1]] = f"first to move in {study} (generation {mover[0]})"
    for key in HEADLINE:
        if key in present and key not in panels:
            panels[key] = "headline indicator"
    return [Panel(k, why) for k, why in list(panels.items())[:MAX_PANELS]]


def limits_for(indicator: str, records: list[GenerationRecord], gate=None) -> list[tuple[float, str]]:
    """Limits to draw: thresholds the gate applied to this indicator in a failure, else the nominal setting."""
    applied = {}
    for r in records:
        for f in r.failures:
            if score_key(f, r.scores) == indicator and isinstance(f.get("threshold"), (int, float)):
                applied.setdefault(round(float(f["threshold"]), 6), "gate limit (widened to noise)")
    if applied:
        return sorted(applied.items())
    out = []
    for prefix, setting, _side in NOMINAL_LIMITS:
        if indicator.startswith(prefix) and gate is not None and hasattr(gate, setting):
            out.append((float(getattr(gate, setting)), f"gate limit ({setting})"))
    return out


def tripped_on(record: GenerationRecord | None, indicator: str) -> bool:
    """Whether `indicator` is among the failures that blocked this batch."""
    return record is not None and any(score_key(f, record.scores) == indicator for f in record.failures)


def _describe(indicator: str) -> str:
    return next((text for prefix, text in PLAIN.items() if indicator.startswith(prefix)), "value")


def plot_report(records: list[GenerationRecord], table: pl.DataFrame, path: Path, bands: Bands | None = None,
                gate=None) -> Path | None:
    """Draw the report's panels to `path` (PNG); None when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    bands = bands or {}
    panels = choose_panels(records, table, bands)
    if not panels:
        return None
    cols = min(len(panels), 3)
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 4.0 * rows), squeeze=False)
    studies = table["study"].unique(maintain_order=True).to_list()
    meta = {s: (table.filter(pl.col("study") == s)["family"][0], table.filter(pl.col("study") == s)["policy"][0])
            for s in studies}
    last_generation = int(table["generation"].max())
    by_key = {(r.study, r.generation): r for r in records}
    legend: dict[str, object] = {}
    for ax, panel in zip(axes.flat, panels):
        part = table.filter(pl.col("indicator") == panel.indicator)
        values = part["value"].to_list()
        if panel.indicator in bands:
            lo, hi = bands[panel.indicator]
            values += [lo, hi]
            if hi > lo:
                legend["band"] = ax.axhspan(lo, hi, color="grey", alpha=0.25, zorder=0,
                                            label="fresh real rows (noise band)")
            else:
                legend["band"] = ax.axhline(lo, color="grey", linestyle="--", linewidth=1.2, zorder=0,
                                            label="fresh real rows (noise band)")
        for value, label in limits_for(panel.indicator, records, gate):
            values.append(value)
            legend["limit"] = ax.axhline(value, color="red", linestyle="--", linewidth=1.3, zorder=1,
                                         label="gate limit")
            text = f"limit {value:.3g}" if "widened" in label else f"nominal limit {value:.3g} (before widening)"
            ax.annotate(text, xy=(1, value), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                        textcoords="offset points", ha="right", fontsize=8, color="red")
        for study in studies:
            s = part.filter(pl.col("study") == study).sort("generation")
            if s.height == 0:
                continue
            family, policy = meta[study]
            legend[study] = ax.plot(s["generation"].to_list(), s["value"].to_list(), marker="o", ms=5, linewidth=2,
                                    color=FAMILY_COLOURS.get(family, "black"), linestyle=POLICY_STYLES.get(policy, "-"),
                                    label=f"{study}")[0]
            failed = s.filter(pl.col("passed") == False)  # noqa: E712 - polars expression
            for generation, value in zip(failed["generation"].to_list(), failed["value"].to_list()):
                # a big red cross where this indicator is what blocked the batch; a small one where another did
                here = tripped_on(by_key.get((study, generation)), panel.indicator)
                key = "failed_here" if here else "failed_elsewhere"
                legend[key] = ax.scatter([generation], [value], marker="X", s=150 if here else 60,
                                         color="red" if here else "white", edgecolor="red" if not here else "black",
                                         linewidths=1.2, zorder=4,
                                         label="blocked on this indicator" if here else "blocked on another indicator")
        if values:
            low, high = min(values), max(values)
            pad = (high - low) * 0.12 or max(abs(high) * 0.05, 0.01)
            ax.set_ylim(low - pad, high + pad)
        ax.set_title(f"{panel.indicator}\n{panel.why}", fontsize=10)
        ax.set_ylabel(_describe(panel.indicator), fontsize=9)
        ax.set_xlabel("generation")
        ax.set_xlim(-0.3, last_generation + 0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    order = [*studies, "band", "limit", "failed_here", "failed_elsewhere"]
    handles = [legend[k] for k in order if k in legend]
    fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=min(4, len(handles)), fontsize=9,
               frameon=False)
    fig.suptitle("Why the guard stopped a chain: each chain against real-data noise (grey) and the gate's limit "
                 "(red)", fontsize=11)
    legend_rows = (len(handles) + 3) // 4
    fig.tight_layout(rect=(0, 0.035 * legend_rows + 0.01, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
