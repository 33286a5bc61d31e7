"""Joint family of the scorecard: detection (gradient-boosted trees telling synthetic from real, scored on rows
they never saw, real ones from real_holdout), mode collapse (the batch's most repeated row), and
precision/recall/density/coverage (warnings)."""

from __future__ import annotations

import numpy as np
import polars as pl

from ouroboros.canonical import row_digests
from ouroboros.config import GateConfig
from ouroboros.quality.encoding import Encoder
from ouroboros.quality.gate_fidelity import sample
from ouroboros.quality.judge import Judge
from ouroboros.quality.learners import boosted_detection_auc
from ouroboros.quality.neighbours import prdc
from ouroboros.quality.stats import auc_p, rate_excess_p

MIN_DETECTION_ROWS = 20  # rows per side and part below which the classifier cannot learn anything


def score_joint(j: Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None, encoder: Encoder,
                config: GateConfig) -> None:
    _mode(j, syn, train, config)
    seed = config.seed + 10
    m = min(config.knn_rows, train.height, syn.height)
    k = min(config.knn_k, m - 1)
    if m < 10 or k < 1:
        j.skip("joint.prdc", f"fewer than 10 rows per side ({m}): no precision/recall/density/coverage")
    else:
        real = encoder.matrix(sample(train, m, seed))
        fake = encoder.matrix(sample(syn, m, seed + 1))
        j.scores["joint.rows"] = float(m)
        j.scores["joint.k"] = float(k)
        for name, v in prdc(real, fake, k).items():
            j.scores[f"joint.{name}"] = v
        if holdout is not None and holdout.height >= 10:
            h = encoder.matrix(sample(holdout, m, seed + 2))
            for name, v in prdc(real, h, min(k, len(h) - 1)).items():
                j.scores[f"joint.{name}.noise_floor"] = v
            for name in ("precision", "coverage"):
                floor = j.scores[f"joint.{name}.noise_floor"]
                j.warn_below("fidelity", f"joint.{name}", config.warn_prdc_ratio * floor,
                             f"{name} {j.scores[f'joint.{name}']:.2f} against {floor:.2f} for fresh real rows "
                             f"({'realism' if name == 'precision' else 'diversity'} lost)")
    _detection(j, syn, train, holdout, encoder, config)


def _mode(j: Judge, syn: pl.DataFrame, train: pl.DataFrame, config: GateConfig) -> None:
    """Share of the batch taken by its most repeated row, against that row's share in real_train (exact
    conditional test, times the number of rows the batch repeats: any of them could have been the top one)."""
    # row identity by the project's canonical encoding, not polars' hash_rows (documented as unstable across
    # versions): the same batch scores the same mode share under any polars
    hashes = pl.Series("h", row_digests(syn)).value_counts(sort=True, name="count")
    top, x = hashes["h"][0], int(hashes["count"][0])
    repeated = int((hashes["count"] >= 2).sum())
    c = int((row_digests(train, syn.columns) == top).sum())
    share, real_share = x / syn.height, c / max(train.height, 1)
    j.scores.update({"joint.mode_share": share, "joint.mode_share.real": real_share,
                     "joint.repeated_rows": float(repeated)})
    p = min(1.0, max(repeated, 1) * rate_excess_p(x, syn.height, c, train.height)) if x >= 2 else 1.0
    j.test("fidelity", "joint.mode_share_excess", share - real_share, config.max_mode_share, "above", p,
           f"one row makes up {share:.1%} of the batch (real_train: {real_share:.2%}): mode collapse",
           "exact conditional binomial test against that row's real_train share")


def _detection(j: Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None, encoder: Encoder,
               config: GateConfig) -> None:
    if holdout is None:
        j.skip("joint.detection_auc", "real_holdout has fewer than 2 rows: no unseen real rows to score on")
        return
    seed = config.seed + 20
    m = min(config.detection_rows, holdout.height, syn.height // 2, train.height)
    if m < MIN_DETECTION_ROWS:
        j.skip("joint.detection_auc", f"{m} rows per side (batch {syn.height}, holdout {holdout.height}); the "
                                      f"classifier needs {MIN_DETECTION_ROWS} to fit and {MIN_DETECTION_ROWS} to score")
        return
    # a seeded permutation always: `sample` keeps a batch no larger than 2m as it is, and halves taken by position
    # would then follow the batch's row order (a generator writing its good rows first fits on those alone)
    fake = syn.sample(n=2 * m, seed=seed, shuffle=True)
    fake_fit, fake_test = encoder.matrix(fake[:m]), encoder.matrix(fake[m:2 * m])
    real_fit = encoder.matrix(sample(train, m, seed + 1))
    real_test = encoder.matrix(sample(holdout, m, seed + 2))
    value = boosted_detection_auc(real_fit, fake_fit, real_test, fake_test, seed=config.seed)
    sd = np.sqrt((2 * m + 1) / (12 * m * m))
    j.scores.update({"joint.detection_auc.noise_high": 0.5 + 3 * sd, "joint.detection_rows": float(m)})
    j.test("fidelity", "joint.detection_auc", value, config.max_detection_auc, "above", auc_p(value, m, m),
           f"gradient-boosted trees tell synthetic from real rows with AUC {value:.2f} (0.5: indistinguishable)",
           f"on {m} unseen rows per side an honest batch scores 0.5 (sd {sd:.3f}, Mann-Whitney)")
    j.warn_above("fidelity", "joint.detection_auc", max(config.warn_detection_auc, 0.5 + 3 * sd),
                 f"a classifier tells synthetic from real rows with AUC {value:.2f} (0.5: indistinguishable)")
