"""Privacy family of the scorecard, against every row of real_train: exact copies (the whole batch), and for
a sample of batch rows the distance to the closest record (DCR), near copies, the closer-to-train share and
NNDR. Distances are exact, in chunks of real_train, so memory stays bounded whatever its size.

Honest baseline: real_holdout rows are fresh real rows no generator saw, so the same scores for them (against
real_train; for the closer-to-train share against the rest of the holdout) are what an honest batch shows."""

from __future__ import annotations

import numpy as np
import polars as pl

from ouroboros.config import GateConfig
from ouroboros.quality.encoding import Encoder
from ouroboros.quality.gate_fidelity import sample
from ouroboros.quality.judge import Judge
from ouroboros.quality.membership import membership_attack
from ouroboros.quality.stats import rate_excess_p, share_excess_p

TRAIN_CHUNK = 20_000  # real_train rows encoded and compared at once
CELLS = 4_000_000  # distances held at once (16 MB of float32)
SNAP = 1e-5  # squared distances below this are float32 rounding of 0


def exact_copy_rate(rows: pl.DataFrame, reference: pl.DataFrame) -> float:
    """Share of `rows` that equal some row of `reference` in every column."""
    return copies(rows, reference) / rows.height if rows.height else 0.0


def copies(rows: pl.DataFrame, reference: pl.DataFrame) -> int:
    if rows.height == 0 or reference.height == 0:
        return 0
    return rows.join(reference.unique(), on=rows.columns, how="semi", nulls_equal=True).height


def nearest_two(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Squared distances from each query row to its two nearest reference rows ((len, 2); inf when missing)."""
    out = np.full((len(queries), 2), np.inf, dtype=np.float64)
    if len(reference) == 0:
        return out
    step = max(1, CELLS // len(reference))
    ref_norms = (reference * reference).sum(1)[None, :]
    for start in range(0, len(queries), step):
        q = queries[start:start + step]
        d = q @ reference.T
        d *= -2.0
        d += ref_norms
        d += (q * q).sum(1)[:, None]
        d[d < SNAP] = 0.0  # float32 rounding of equal rows: equal rows are at distance 0, ties stay ties
        if d.shape[1] > 2:
            d = np.partition(d, 1, axis=1)[:, :2]
        both = np.concatenate([out[start:start + step], d], axis=1)
        both.sort(axis=1)
        out[start:start + step] = both[:, :2]
    return out


def nearest_in_frame(queries: np.ndarray, frame: pl.DataFrame, encoder: Encoder) -> np.ndarray:
    """`nearest_two` against every row of `frame`, encoding it a chunk at a time."""
    out = np.full((len(queries), 2), np.inf, dtype=np.float64)
    for start in range(0, frame.height, TRAIN_CHUNK):
        d = nearest_two(queries, encoder.matrix(frame[start:start + TRAIN_CHUNK]))
        both = np.concatenate([out, d], axis=1)
        both.sort(axis=1)
        out = both[:, :2]
    return out


def closer_flags(to_train: np.ndarray, to_holdout: np.ndarray, tie: float) -> np.ndarray:
    """1 where a row is nearer to real_train, 0 where nearer to real_holdout; a tie counts `tie`, the chance
    that the nearest of the tied rows is a train row."""
    return np.where(to_train < to_holdout, 1.0, np.where(to_train > to_holdout, 0.0, tie))


def score_privacy(j: Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame, encoder: Encoder,
                  config: GateConfig) -> None:
    n_s, n_t, n_h = syn.height, train.height, holdout.height
    x, y = copies(syn, train), copies(holdout, train)
    rate, baseline = x / n_s, (y / n_h if n_h else 0.0)
    j.scores.update({"privacy.exact_copy_rate": rate, "privacy.exact_copy_rate.noise_floor": baseline})
    if n_h == 0:
        j.skip("privacy.exact_copy_rate", "real_holdout is empty: no fresh real rows to compare copies with")
    else:
        j.test("privacy", "privacy.exact_copy_excess", rate - baseline, config.max_exact_copy_rate, "above",
               rate_excess_p(x, n_s, y, n_h),
               f"{rate:.2%} of synthetic rows copy a real_train row (fresh real rows: {baseline:.2%})",
               "exact conditional binomial test against real_holdout's copy rate")
    if min(n_s, n_h, n_t) < 10:
        j.skip("privacy.distances", f"batch, real_train or real_holdout has fewer than 10 rows "
                                    f"({n_s}, {n_t}, {n_h}): no distance scores")
        return
    f_frame = sample(syn, config.privacy_rows, config.seed + 2)
    h_frame = sample(holdout, config.privacy_rows, config.seed + 3)
    f, h_q, h_all = encoder.matrix(f_frame), encoder.matrix(h_frame), encoder.matrix(holdout)
    f_train = nearest_in_frame(f, train, encoder)
    h_train = nearest_in_frame(h_q, train, encoder)
    f_hold = nearest_two(f, h_all)[:, 0]
    h_hold = nearest_two(h_q, h_all)[:, 1]  # the nearest other holdout row (the first is the row itself)
    dcr, dcr_h = np.sqrt(f_train[:, 0]), np.sqrt(h_train[:, 0])
    j.scores.update({
        "privacy.rows": float(len(f)), "privacy.reference_rows": float(n_t), "privacy.holdout_rows": float(len(h_q)),
        "privacy.dcr.median": float(np.median(dcr)), "privacy.dcr.p05": float(np.quantile(dcr, 0.05)),
        "privacy.dcr.median.noise_floor": float(np.median(dcr_h)),
        "privacy.dcr.p05.noise_floor": float(np.quantile(dcr_h, 0.05)),
    })
    with np.errstate(invalid="ignore", divide="ignore"):
        nndr = np.where(f_train[:, 1] > 0, np.sqrt(f_train[:, 0] / f_train[:, 1]), 1.0)
        nndr_h = np.where(h_train[:, 1] > 0, np.sqrt(h_train[:, 0] / h_train[:, 1]), 1.0)
    j.scores["privacy.nndr.mean"] = float(np.nanmean(nndr))
    j.scores["privacy.nndr.mean.noise_floor"] = float(np.nanmean(nndr_h))
    real_median = j.scores["privacy.dcr.median.noise_floor"]
    # membership inference: real_train rows (members) against as many real_holdout rows (non-members)
    j.scores.update(membership_attack(f, encoder.matrix(sample(train, len(h_q), config.seed + 4)), h_q))
    j.scores["privacy.dcr_ratio"] = float(np.median(dcr) / real_median) if real_median > 0 else 1.0

    # near copies: within near_copy_distance real std per numeric column (RMS), every category equal
    width = max(1, len(encoder.numeric))
    radius2 = config.near_copy_distance ** 2 * width
    near_x, near_y = int((f_train[:, 0] <= radius2).sum()), int((h_train[:, 0] <= radius2).sum())
    near, near_base = near_x / len(f), near_y / len(h_q)
    j.scores.update({"privacy.near_copy_rate": near, "privacy.near_copy_rate.noise_floor": near_base,
                     "privacy.near_copy_radius": float(np.sqrt(radius2))})
    j.test("privacy", "privacy.near_copy_excess", near - near_base, config.max_exact_copy_rate, "above",
           rate_excess_p(near_x, len(f), near_y, len(h_q)),
           f"{near:.2%} of synthetic rows lie within {config.near_copy_distance} real std per column of a real_train "
           f"row (fresh real rows: {near_base:.2%}): near copies",
           "exact conditional binomial test against real_holdout rows")

    # closer to train than to holdout: honest rows are, with chance about n_train / (n_train + n_holdout)
    tie = n_t / (n_t + n_h)
    share = float(closer_flags(f_train[:, 0], f_hold, tie).mean())
    expected = float(closer_flags(h_train[:, 0], h_hold, tie).mean())
    j.scores.update({"privacy.closer_to_train_share": share, "privacy.closer_to_train_share.noise_floor": expected,
                     "privacy.closer_to_train_share.expected": tie})
    j.test("privacy", "privacy.closer_to_train_excess", share - expected, config.max_closer_to_train_excess, "above",
           share_excess_p(share, len(f), expected, len(h_q)),
           f"{share:.0%} of synthetic rows are nearer to real_train than to real_holdout (fresh real rows: "
           f"{expected:.0%}; {n_t} train rows against {n_h} holdout rows make {tie:.0%} the honest share): the "
           "generator reproduces its training rows",
           "two-sample test against real_holdout rows judged the same way")
    if real_median > 0:
        j.warn_below("privacy", "privacy.dcr_ratio", config.warn_dcr_ratio,
                     f"synthetic rows sit closer to real_train rows than fresh real rows do "
                     f"(median DCR {j.scores['privacy.dcr.median']:.3g} vs {real_median:.3g})")
