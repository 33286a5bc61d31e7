"""Markdown tables and plots of bench_collapse.py's records (`bench_collapse.py --report`).

The downstream gap of a generation is TRTR - TSTR: how much skill a model trained on the batch lacks against the
same model trained on as many real_train rows (positive: worse than real). The real data's own noise is the sd of
TRTR over seeded real subsamples of that size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

CHAIN_LABEL = {"replace_observe": "replace (observing)", "accumulate_observe": "accumulate (observing)",
               "anchor_observe": "anchor 0.2 (observing)", "replace_mitigated": "replace + mitigation (enforcing)"}
MITIGATION_CODE = {"": "·", "verify": "v", "anchor": "a", "refit": "r"}


def load(out: Path) -> tuple[pl.DataFrame, dict[str, dict]]:
    rows = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines() if line.strip()]
    df = pl.DataFrame(rows, infer_schema_length=None).with_columns(gap=pl.col("trtr") - pl.col("tstr"))
    real = {p.name.split(".")[0]: json.loads(p.read_text()) for p in out.glob("*.real.json")}
    return df, real


def _f(v, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def chain_summary(df: pl.DataFrame, spec: dict) -> pl.DataFrame:
    """One row per chain: its verdicts, where an enforcing gate would stop it, gaps at g0 and at the end."""
    out = []
    last = int(spec["generations"]) - 1
    for (table, family, chain), g in df.sort("generation").group_by(["table", "family", "chain"], maintain_order=True):
        g = g.sort("generation")
        refused = g.filter(~pl.col("passed"))["generation"].to_list()
        end = g.row(-1, named=True)
        first = g.row(0, named=True)
        out.append({
            "table": table, "family": family, "chain": chain, "generations": g.height,
            "reached_last": int(end["generation"]) == last,
            "first_refused": refused[0] if refused else None, "refused": len(refused),
            "gap_g0": first["gap"], "gap_end": end["gap"], "gap_max": float(g["gap"].max()),
            "survival_end": end["category_survival"], "spread_min_end": end["spread_min"],
            "detection_end": end["detection_auc"],
            "mitigations": "".join(MITIGATION_CODE.get(m or "", "?") for m in g["mitigation"].to_list()),
            "seconds": float(g["seconds"].sum()), "cpu_seconds": float(g["cpu_seconds"].sum())})
    return pl.DataFrame(out)


def main_table(summary: pl.DataFrame, real: dict[str, dict], spec: dict) -> str:
    last = int(spec["generations"]) - 1
    lines = ["| table | family | chain | g0 verdict | the enforcing gate stops it at | generations made | "
             "gap g0 | gap at the end | worst gap | category survival at the end | min spread ratio at the end |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary.sort(["table", "family", "chain"]).iter_rows(named=True):
        if r["chain"] not in CHAIN_LABEL:
            continue
        g0 = "refused" if r["first_refused"] == 0 else "pass"
        stop = "-" if r["first_refused"] is None else f"g{r['first_refused']}"
        if r["chain"] == "replace_mitigated":
            stop = "-" if r["reached_last"] else f"g{r['generations'] - 1} (no mitigation passed)"
        lines.append(f"| {r['table']} | {r['family']} | {CHAIN_LABEL[r['chain']]} | {g0} | {stop} | "
                     f"{r['generations']} of {last + 1} | {_f(r['gap_g0'])} | {_f(r['gap_end'])} | "
                     f"{_f(r['gap_max'])} | {_f(r['survival_end'], 2)} | {_f(r['spread_min_end'], 2)} |")
    return "\n".join(lines)


def mitigation_table(summary: pl.DataFrame) -> str:
    lines = ["| table | family | generations | mitigation per generation (· first fit passed, v verify, a anchor, "
             "r refit; the last one refused when the chain ends early) | worst gap | gap at the end |",
             "|---|---|---|---|---|---|"]
    for r in summary.filter(pl.col("chain") == "replace_mitigated").sort(["table", "family"]).iter_rows(named=True):
        lines.append(f"| {r['table']} | {r['family']} | {r['generations']} | `{r['mitigations']}` | "
                     f"{_f(r['gap_max'])} | {_f(r['gap_end'])} |")
    return "\n".join(lines)


def sweep_table(df: pl.DataFrame, spec: dict) -> str:
    family = spec.get("sweep_family")
    sub = df.filter(pl.col("family") == family)
    lams = sorted({0.2, *[float(x) for x in spec.get("sweep_lams", [])]})
    chains = [("replace_observe", "0 (replace)")] + \
        [("anchor_observe" if abs(x - 0.2) < 1e-9 else f"anchor{round(x * 100)}_observe", f"{x:g}") for x in lams] + \
        [("accumulate_observe", "accumulate")]
    lines = ["| table | real share λ | gap g0 | gap mean g10-g19 | gap at the end | refused of 20 | survival at the end |",
             "|---|---|---|---|---|---|---|"]
    for table in sorted(set(sub["table"].to_list())):
        for chain, label in chains:
            g = sub.filter((pl.col("table") == table) & (pl.col("chain") == chain)).sort("generation")
            if not g.height:
                continue
            late = g.filter(pl.col("generation") >= 10)["gap"]
            lines.append(f"| {table} | {label} | {_f(g['gap'][0])} | {_f(late.mean() if late.len() else None)} | "
                         f"{_f(g['gap'][-1])} | {int((~g['passed']).sum())} | {_f(g['category_survival'][-1], 2)} |")
    return "\n".join(lines)


def real_table(real: dict[str, dict]) -> str:
    lines = ["| table | train rows | holdout rows | columns | TRTR at batch size (sd over 5 subsamples) | "
             "TRTR on all of real_train |", "|---|---|---|---|---|---|"]
    for name, r in sorted(real.items()):
        lines.append(f"| {name} | {r['train_rows']:,} | {r['holdout_rows']:,} | {r['columns']} | "
                     f"{r['trtr']:.3f} ({r['trtr_sd']:.3f}) | {r['trtr_full']:.3f} |")
    return "\n".join(lines)


def timing_table(summary: pl.DataFrame) -> str:
    t = summary.group_by("table").agg(pl.col("seconds").sum(), pl.col("cpu_seconds").sum(),
                                      pl.col("generations").sum()).sort("table")
    lines = ["| table | generations fitted and scored | wall s | CPU s |", "|---|---|---|---|"]
    for r in t.iter_rows(named=True):
        lines.append(f"| {r['table']} | {r['generations']} | {r['seconds']:.0f} | {r['cpu_seconds']:.0f} |")
    lines.append(f"| all | {int(t['generations'].sum())} | {t['seconds'].sum():.0f} | {t['cpu_seconds'].sum():.0f} |")
    return "\n".join(lines)


def plot(df: pl.DataFrame, real: dict[str, dict], spec: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = sorted(set(df["table"].to_list()))
    families = [f for f in spec["families"] if f in set(df["family"].to_list())]
    fig, axes = plt.subplots(len(tables), len(families), figsize=(3.6 * len(families), 2.8 * len(tables)),
                             sharex=True, squeeze=False)
    styles = {"replace_observe": ("tab:red", "-"), "accumulate_observe": ("tab:blue", "--"),
              "anchor_observe": ("tab:orange", ":"), "replace_mitigated": ("black", "-")}
    for i, table in enumerate(tables):
        sd = real[table]["trtr_sd"]
        for j, family in enumerate(families):
            ax = axes[i][j]
            ax.axhspan(-2 * sd, 2 * sd, color="0.85", label="real noise (±2 sd)")
            for chain, (colour, style) in styles.items():
                g = df.filter((pl.col("table") == table) & (pl.col("family") == family)
                              & (pl.col("chain") == chain)).sort("generation")
                if not g.height:
                    continue
                ax.plot(g["generation"], g["gap"], style, color=colour, lw=2 if chain == "replace_mitigated" else 1.2,
                        label=CHAIN_LABEL[chain])
                bad = g.filter(~pl.col("passed"))
                ax.plot(bad["generation"], bad["gap"], "x", color=colour, ms=4)
            ax.set_title(f"{table} · {family}", fontsize=9)
            if j == 0:
                ax.set_ylabel("TRTR - TSTR")
            if i == len(tables) - 1:
                ax.set_xlabel("generation")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sweep(df: pl.DataFrame, spec: dict, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    family = spec.get("sweep_family")
    sub = df.filter(pl.col("family") == family)
    if not sub.height:
        return None
    tables = sorted(set(sub["table"].to_list()))
    fig, axes = plt.subplots(1, len(tables), figsize=(4.2 * len(tables), 3.0), squeeze=False)
    lams = sorted({0.2, *[float(x) for x in spec.get("sweep_lams", [])]})
    chains = [("replace_observe", "λ = 0 (replace)")] + \
        [("anchor_observe" if abs(x - 0.2) < 1e-9 else f"anchor{round(x * 100)}_observe", f"λ = {x:g}") for x in lams] + \
        [("accumulate_observe", "accumulate")]
    cmap = plt.get_cmap("viridis")
    for ax, table in zip(axes[0], tables):
        for n, (chain, label) in enumerate(chains):
            g = sub.filter((pl.col("table") == table) & (pl.col("chain") == chain)).sort("generation")
            if g.height:
                ax.plot(g["generation"], g["gap"], color=cmap(n / max(1, len(chains) - 1)), label=label,
                        ls="--" if chain == "accumulate_observe" else "-")
        ax.set_title(f"{table} · {family}: anchor real share", fontsize=9)
        ax.set_xlabel("generation")
        ax.set_ylabel("TRTR - TSTR")
    axes[0][-1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(out: Path, spec: dict, docs: Path) -> str:
    df, real = load(out)
    summary = chain_summary(df, spec)
    curves = plot(df, real, spec, docs / "collapse-study.png")
    sweep = plot_sweep(df, spec, docs / "collapse-study-sweep.png")
    parts = ["## Real baselines", "", real_table(real), "",
             "## Every chain", "", f"![downstream gap per generation]({curves.name})", "", main_table(summary, real, spec),
             "", "## Mitigation per generation (replace, enforcing)", "", mitigation_table(summary), "",
             f"## The real share λ ({spec.get('sweep_family')}, observing)", ""]
    if sweep:
        parts += [f"![anchor sweep]({sweep.name})", ""]
    parts += [sweep_table(df, spec), "", "## Time", "", timing_table(summary), ""]
    return "\n".join(parts)
