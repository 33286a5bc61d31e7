"""The collapse report: every generation's scores per study, as one table, curves and a markdown page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

# Indicators drawn as curves, when present; a reader looks at these before the full table.
HEADLINE = ("fidelity.column_shapes", "collapse.variance_ratio.mean", "collapse.category_survival.mean",
            "privacy.exact_copy_rate")


@dataclass(frozen=True)
class GenerationRecord:
    study: str
    generation: int
    passed: bool | None  # None: the gate has not judged this batch
    scores: dict[str, float]
    failures: list[dict]


def summarise(scores: dict[str, float]) -> dict[str, float]:
    """Add per-family means (e.g. the mean variance ratio over columns) to a flat score dict."""
    out = dict(scores)
    for family in ("collapse.variance_ratio", "collapse.category_survival"):
        values = [v for k, v in scores.items() if k.startswith(family + ".") and not k.endswith(".mean")]
        if values:
            out[f"{family}.mean"] = sum(values) / len(values)
    return out


def report_table(records: list[GenerationRecord]) -> pl.DataFrame:
    """Long table: study x generation x indicator -> value (plus the verdict)."""
    rows = [
        {"study": r.study, "generation": r.generation, "passed": r.passed, "indicator": k, "value": float(v)}
        for r in records
        for k, v in summarise(r.scores).items()
    ]
    schema = {"study": pl.String, "generation": pl.Int64, "passed": pl.Boolean, "indicator": pl.String,
              "value": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort("study", "generation", "indicator")


def guard_trips(records: list[GenerationRecord]) -> dict[str, tuple[int, str] | None]:
    """Per study: the first generation whose batch failed the gate, and the first failing indicator."""
    trips: dict[str, tuple[int, str] | None] = {}
    for r in sorted(records, key=lambda r: (r.study, r.generation)):
        trips.setdefault(r.study, None)
        if trips[r.study] is None and r.passed is False:
            first = r.failures[0]["indicator"] if r.failures else "contract"
            trips[r.study] = (r.generation, first)
    return trips


def plot_curves(table: pl.DataFrame, path: Path) -> Path | None:
    """One panel per headline indicator: value by generation, one line per study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [i for i in HEADLINE if i in set(table["indicator"].to_list())]
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.4), squeeze=False)
    for ax, indicator in zip(axes[0], shown):
        part = table.filter(pl.col("indicator") == indicator)
        for study in part["study"].unique(maintain_order=True).to_list():
            s = part.filter(pl.col("study") == study).sort("generation")
            ax.plot(s["generation"].to_list(), s["value"].to_list(), marker="o", label=study)
            failed = s.filter(pl.col("passed") == False)  # noqa: E712 - polars expression
            ax.scatter(failed["generation"].to_list(), failed["value"].to_list(), marker="x", s=80, color="red",
                       zorder=3)
        ax.set_title(indicator, fontsize=9)
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report_markdown(records: list[GenerationRecord], plot_name: str | None = None) -> str:
    """A page a reviewer reads: verdicts per generation, where the guard tripped, headline indicators."""
    table = report_table(records)
    lines = ["# Collapse report", ""]
    for study, trip in guard_trips(records).items():
        lines.append(f"- **{study}**: " + ("no gate failure" if trip is None
                                           else f"guard tripped at generation {trip[0]} on `{trip[1]}`"))
    lines += ["", "| study | generation | verdict | " + " | ".join(HEADLINE) + " |",
              "|---|---|---|" + "---|" * len(HEADLINE)]
    for r in sorted(records, key=lambda r: (r.study, r.generation)):
        s = summarise(r.scores)
        verdict = {True: "pass", False: "FAIL", None: "not judged"}[r.passed]
        cells = [f"{s[k]:.3f}" if k in s else "" for k in HEADLINE]
        lines.append(f"| {r.study} | {r.generation} | {verdict} | " + " | ".join(cells) + " |")
    if plot_name:
        lines += ["", f"![collapse curves]({plot_name})"]
    lines += ["", f"{table.height} indicator values in the full table."]
    return "\n".join(lines) + "\n"
