"""ε of a chain of generations: what the real rows have spent by the time generation k's batch is published.

Generation k spends its own ε on the real rows only if its pool holds real rows (a DP generator's synthetic
rows are post-processing and free); a generator that saw real rows without DP spends an unbounded ε.
Generation k's batch also carries whatever its ancestors spent (the generations whose batches are in its
pool, and theirs), each counted once: by basic sequential composition the chain is (Σε, Σδ)-DP over that
set, so δ is summed too (a DP generator's δ counts where its ε does; one without DP on real rows leaves both
unbounded, stored as null).
"""

from __future__ import annotations

import math


def own_epsilon(privacy: dict | None, pool: dict[str, int]) -> float:
    """ε this generator spends on the real rows: its DP ε if real rows were in its pool, 0 if none, inf without DP."""
    if not pool.get("real", 0):
        return 0.0
    return float(privacy["epsilon_spent"]) if privacy else math.inf


def own_delta(privacy: dict | None, pool: dict[str, int]) -> float:
    """δ this generator spends on the real rows: its DP δ if real rows were in its pool, 0 if none, unbounded
    (inf) when it saw them without DP."""
    if not pool.get("real", 0):
        return 0.0
    return float(privacy.get("delta", math.inf)) if privacy else math.inf


def parents_in_pool(pool: dict[str, int]) -> list[int]:
    """Generations whose batch rows are in the pool (source names "gen_<k>")."""
    return sorted(int(k.split("_", 1)[1]) for k, n in pool.items() if k.startswith("gen_") and n)


def chain_entry(generation: int, privacy: dict | None, pool: dict[str, int], parent_records: dict[int, dict]) -> dict:
    """Privacy fields of generation `generation`'s record, from its parents' records (which carry theirs)."""
    own = {generation: own_epsilon(privacy, pool)}
    deltas = {generation: own_delta(privacy, pool)}
    for j in parents_in_pool(pool):
        rec = parent_records.get(j, {})
        own.update({int(k): math.inf if v is None else float(v) for k, v in rec.get("epsilon_by_generation", {}).items()})
        own.setdefault(j, math.inf)  # an ancestor without a record is assumed to have seen real rows without DP
        if "delta_by_generation" in rec:
            deltas.update({int(k): math.inf if v is None else float(v) for k, v in rec["delta_by_generation"].items()})
        # a record from before δ was composed: its generations' δ is unknown, so unbounded where ε is spent
        for k, e in own.items():
            deltas.setdefault(k, 0.0 if e == 0.0 else math.inf)
    total = sum(own.values())
    delta = min(1.0, sum(deltas.values()))  # δ is a probability: a sum past 1 says nothing more
    # unbounded ε is stored as null: records are JSON read by other tools, and JSON has no infinity
    return {"dp": privacy is not None, "epsilon_own": _finite(own[generation]), "chain_epsilon": _finite(total),
            "epsilon_by_generation": {str(k): _finite(v) for k, v in sorted(own.items())},
            "chain_delta": _finite(delta) if math.isfinite(sum(deltas.values())) else None,
            "delta_by_generation": {str(k): _finite(v) for k, v in sorted(deltas.items())}}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _fmt(v) -> str:
    return "∞ (no DP)" if v is None or (isinstance(v, float) and math.isinf(v)) else f"{v:.2f}"


def _delta(g: dict) -> str:
    d = g.get("chain_delta")
    return "∞ (no DP)" if d is None else f"{d:.1e}"


def privacy_section(generators: dict[str, list[dict]]) -> str:
    """Markdown section of the collapse report: per study and generation, ε spent and the chain's total."""
    rows = [(study, g) for study, gens in generators.items() for g in gens if "chain_epsilon" in g]
    if not rows:
        return ""
    lines = ["", "## Privacy budget (ε)", "",
             "ε each generator spent on the real rows (its DP ε when its pool held real rows, 0 when it learnt "
             "from DP synthetic rows only) and the chain's total up to that generation (sequential composition: "
             "ε and δ both add up).",
             "", "| study | generation | DP | ε requested | ε spent by its fit | ε on real rows | chain ε | δ | chain δ |",
             "|---|---|---|---|---|---|---|---|---|"]
    for study, g in rows:
        p = g.get("privacy") or {}
        lines.append(f"| {study} | {g['generation']} | {'yes' if p else 'no'} | "
                     f"{_fmt(p['epsilon_requested']) if p else '–'} | {_fmt(p['epsilon_spent']) if p else '–'} | "
                     f"{_fmt(g['epsilon_own'])} | {_fmt(g['chain_epsilon'])} | {p['delta']:.1e} | {_delta(g)} |"
                     if p else
                     f"| {study} | {g['generation']} | no | – | – | {_fmt(g['epsilon_own'])} | "
                     f"{_fmt(g['chain_epsilon'])} | – | {_delta(g)} |")
    return "\n".join(lines) + "\n"
