"""The per-batch scorecard as a markdown page: verdict, what failed and why, what warned, every score."""

from __future__ import annotations

from ouroboros.quality.scorecard import CHECKS, Scorecard

SECTIONS = (("Fidelity", ("fidelity.", "shape.")), ("Joint fidelity and diversity", ("joint.",)),
            ("Privacy", ("privacy.",)), ("Utility", ("utility.",)), ("Collapse indicators", ("collapse.",)),
            ("Contract", ("contract.",)))


def scorecard_markdown(batch: str, card: Scorecard, thresholds: dict, fingerprint: str = "", rules: str = "") -> str:
    """A page a reviewer reads to see why a batch was approved or blocked."""
    lines = [f"# Gate scorecard: {batch}", "",
             f"**Verdict: {'APPROVED' if card.passed else 'BLOCKED'}**"
             + (f" ({len(card.warnings)} warning(s))" if card.warnings else ""), ""]
    if fingerprint:
        lines += [f"Batch fingerprint: `{fingerprint}`", ""]
    if rules:
        lines += [f"Judged under rules key `{rules}` (gate settings, target, real_train and real_holdout).", ""]
    if "gate.tests" in card.scores:
        lines += [f"{card.scores['gate.tests']:.0f} blocking tests, each at level {card.scores['gate.level_per_test']:.2g} "
                  f"(the false-refusal rate shared over them).", ""]
    for title, items in (("Blocking failures", card.failures), ("Warnings (soft limits, not blocking)", card.warnings)):
        if items:
            lines += [f"## {title}", "", "| check | indicator | value | threshold | reason |", "|---|---|---|---|---|"]
            lines += [f"| {f.check} | `{f.indicator}` | {f.value:.4g} | {f.threshold:.4g} | {f.reason} |" for f in items]
            lines.append("")
    tests = sorted((v, k[len("gate.p."):]) for k, v in card.scores.items() if k.startswith("gate.p."))
    if tests:
        lines += ["## Blocking tests (p: chance fresh real rows of this size score this badly)", "",
                  "| indicator | value | p |", "|---|---|---|"]
        lines += [f"| `{k}` | {card.scores.get(k, float('nan')):.4g} | {p:.2g} |" for p, k in tests]
        lines.append("")
    if card.skipped:
        lines += ["## Skipped (not judged, and why)", "", "| sub-check | reason |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in sorted(card.skipped.items())]
        lines.append("")
    for title, prefixes in SECTIONS:
        rows = sorted((k, v) for k, v in card.scores.items() if k.startswith(prefixes) and ".pair." not in k)
        if rows:
            lines += [f"## {title}", "", "| score | value |", "|---|---|"]
            lines += [f"| `{k}` | {v:.4g} |" for k, v in rows]
            lines.append("")
    pairs = sorted((v, k) for k, v in card.scores.items() if ".pair." in k and not k.endswith("noise_floor"))
    if pairs:
        lines += ["## Weakest column pairs (pair trends)", "", "| pair | score | fresh real rows |", "|---|---|---|"]
        lines += [f"| `{k.split('.pair.', 1)[1]}` | {v:.4g} | {card.scores.get(k + '.noise_floor', float('nan')):.4g} |"
                  for v, k in pairs[:10]]
        lines.append("")
    lines += ["## Thresholds", "", "| setting | value |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in thresholds.items()]
    lines += ["", f"Checks: {', '.join(CHECKS)}. Noise floors (`.noise_floor`, `.noise_low`, `.noise_high`) are what "
              "fresh real rows of the same size score. A blocking limit refuses a batch only when it is beyond the "
              "threshold and its test's p-value is below the level per test (docs/gate.md)."]
    return "\n".join(lines) + "\n"
