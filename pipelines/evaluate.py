"""`ouroboros evaluate SYNTHETIC REAL`: the gate's scorecard for any synthetic file, without Dagster."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from ouroboros.config import GateConfig, load_config
from ouroboros.quality import Scorecard, evaluate
from ouroboros.quality.report_card import scorecard_markdown
from ouroboros.split import train_holdout_split
from ouroboros.tables import read_table

# what the compact printout shows first, when the scorecard has it
KEY_SCORES = ("fidelity.column_shapes", "fidelity.association_retention", "joint.detection_auc",
              "joint.precision", "joint.coverage", "privacy.exact_copy_rate", "privacy.closer_to_train_share",
              "utility.skill_gap")


class EvaluateError(ValueError):
    """The two files cannot be compared; the message names the file and column and what to do."""


def align(synthetic: pl.DataFrame, real: pl.DataFrame, synthetic_path: Path) -> pl.DataFrame:
    """The synthetic table with the real table's columns, in its order and types (CSV may infer other types)."""
    missing = [c for c in real.columns if c not in synthetic.columns]
    extra = [c for c in synthetic.columns if c not in real.columns]
    if missing or extra:
        raise EvaluateError(f"{synthetic_path}: columns differ from the real table: missing {missing}, "
                            f"unexpected {extra}; a synthetic table must have exactly the real columns")
    out = []
    for name, dtype in real.schema.items():
        column = synthetic[name]
        if column.dtype == dtype:
            out.append(column)
            continue
        try:
            out.append(column.cast(dtype, strict=True))
        except Exception as exc:
            raise EvaluateError(f"{synthetic_path}: column {name!r} is {column.dtype} and cannot be read as the real "
                                f"type {dtype}: {exc}") from exc
    return pl.DataFrame(out)


def compact(card: Scorecard) -> str:
    lines = [f"Verdict: {'APPROVED' if card.passed else 'BLOCKED'}  "
             f"({len(card.failures)} blocking failure(s), {len(card.warnings)} warning(s))"]
    for title, items in (("Blocking failures", card.failures), ("Warnings (do not block)", card.warnings)):
        if items:
            lines += ["", f"{title}:", f"  {'check':<9} {'indicator':<40} {'value':>9} {'limit':>9}  reason"]
            lines += [f"  {f.check:<9} {f.indicator[:40]:<40} {f.value:>9.4g} {f.threshold:>9.4g}  {f.reason}"
                      for f in items]
    shown = [(k, card.scores[k]) for k in KEY_SCORES if k in card.scores]
    if shown:
        lines += ["", "Key scores (the full scorecard: --markdown):"]
        for k, v in shown:
            band = [card.scores.get(f"{k}.{s}") for s in ("noise_low", "noise_high")]
            floor = card.scores.get(f"{k}.noise_floor")
            noise = (f"   fresh real rows: {band[0]:.3f} to {band[1]:.3f}" if None not in band
                     else f"   fresh real rows: {floor:.3f}" if floor is not None else "")
            lines.append(f"  {k:<40} {v:>8.3f}{noise}")
    return "\n".join(lines)


def evaluate_files(synthetic_path: Path, real_path: Path, target: str | None = None, config_path: Path | None = None,
                   holdout_fraction: float = 0.2, seed: int = 0, markdown: bool = False) -> int:
    try:
        real = read_table(real_path)
        synthetic = align(read_table(synthetic_path), real, synthetic_path)
        if target is not None and target not in real.columns:
            raise EvaluateError(f"{real_path}: --target {target!r} is not a column; columns are {real.columns}")
        gate = load_config(config_path).gate if config_path else GateConfig(seed=seed)
        train, holdout = train_holdout_split(real, holdout_fraction, seed=seed)
    except ValueError as exc:  # TableReadError, ConfigError, EvaluateError, a bad holdout fraction
        print(f"error: {exc}", file=sys.stderr)
        return 2
    card = evaluate(synthetic, train, holdout, gate, target=target)
    print(f"{synthetic_path} ({synthetic.height} rows) against {real_path} "
          f"({train.height} training rows, {holdout.height} holdout rows)\n")
    thresholds = gate.model_dump()
    print(scorecard_markdown(synthetic_path.name, card, thresholds) if markdown else compact(card))
    return 0 if card.passed else 1
