"""The tests behind every blocking limit of the gate. Each returns a one-sided p-value: the chance that a batch
of fresh real rows of the same size scores at least as badly. Small p-values mean the batch shows an effect
that sampling noise does not explain; `judge.py` spreads the false-refusal rate over all of them."""

from __future__ import annotations

import numpy as np
from scipy import special, stats


def rate_excess_p(x: int, n_x: int, y: int, n_y: int) -> float:
    """Exact conditional test that the rate x/n_x is higher than y/n_y (two binomial samples, conditioned on
    x + y: under equal rates x ~ Binomial(x + y, n_x / (n_x + n_y))). Handles a zero baseline (y = 0)."""
    if n_x <= 0 or n_y <= 0 or x <= 0:
        return 1.0
    return float(stats.binomtest(int(x), int(x + y), n_x / (n_x + n_y), alternative="greater").pvalue)


def binomial_excess_p(x: int, n: int, rate: float) -> float:
    """P(Binomial(n, rate) >= x)."""
    if x <= 0:
        return 1.0
    if x > n:
        return 0.0
    return float(stats.binomtest(int(x), int(n), min(max(rate, 0.0), 1.0), alternative="greater").pvalue)


def upper_rate(k: int, n: int, alpha: float) -> float:
    """Clopper-Pearson upper bound of a rate seen k times in n (one-sided, level alpha); 1 - alpha**(1/n) for
    k = 0, the exact form of the rule of three."""
    if n <= 0:
        return 1.0
    if k >= n:
        return 1.0
    return float(stats.beta.ppf(1.0 - alpha, k + 1, n - k))


def ks_p(d: float, n: int, m: int) -> float:
    """Asymptotic p-value of the two-sample KS statistic d for sizes n, m (Stephens' small-sample correction;
    conservative for columns with ties).

    Not `scipy.stats.ks_2samp`: the caller has d from its own sorted arrays (the shape score), and ks_2samp's
    default exact method costs O(n m) at the sizes the gate judges (10,000 batch rows against 40,000). The two
    agree to a few percent wherever both are computed (tests/test_stats.py)."""
    if n == 0 or m == 0:
        return 1.0
    en = np.sqrt(n * m / (n + m))
    return float(min(1.0, special.kolmogorov((en + 0.12 + 0.11 / en) * d)))


def ks_critical(alpha: float, n: int, m: int) -> float:
    """KS distance two real samples of sizes n, m exceed with chance alpha."""
    en = np.sqrt(n * m / (n + m))
    return float(special.kolmogi(alpha) / (en + 0.12 + 0.11 / en))


def homogeneity_p(counts_real: np.ndarray, counts_batch: np.ndarray, min_expected: float = 5.0) -> tuple[float, int]:
    """Chi-square test that two level-count vectors come from one distribution. Levels the batch is expected
    to show fewer than `min_expected` times are pooled (rarest first) so the chi-square approximation holds
    however many levels the column has. Returns the p-value and the number of pooled cells."""
    n_r, n_b = counts_real.sum(), counts_batch.sum()
    if n_r == 0 or n_b == 0:
        return 1.0, 0
    order = np.argsort(counts_real)[::-1]
    r, b = counts_real[order].astype(np.float64), counts_batch[order].astype(np.float64)
    expected_b = r / n_r * n_b
    keep = expected_b >= min_expected
    # the pooled remainder is one more cell (kept only if it is itself large enough; else merged into the last)
    cells_r, cells_b = list(r[keep]), list(b[keep])
    rest_r, rest_b = r[~keep].sum(), b[~keep].sum()
    if rest_r + rest_b > 0:
        if rest_r / n_r * n_b >= min_expected or not cells_r:
            cells_r.append(rest_r)
            cells_b.append(rest_b)
        else:
            cells_r[-1] += rest_r
            cells_b[-1] += rest_b
    if len(cells_r) < 2:
        return 1.0, len(cells_r)
    table = np.array([cells_r, cells_b])
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2:
        return 1.0, table.shape[1]
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    return float(p), table.shape[1]


def scale_p(batch: np.ndarray, real: np.ndarray, alternative: str) -> float:
    """Mood's rank test of scale (distribution-free under equal distributions, ties handled): 'less' tests that
    the batch's spread is smaller than real, 'greater' that it is larger."""
    if len(batch) < 3 or len(real) < 3:
        return 1.0
    with np.errstate(all="ignore"):
        p = stats.mood(batch, real, alternative=alternative).pvalue
    return float(p) if np.isfinite(p) else 1.0


def tail_loss_p(x: int, n: int, k_real: int, n_real: int) -> float:
    """P(a real sample of n rows has at most x rows beyond the real quantiles), where k_real of n_real real rows
    lie beyond them: beta-binomial, since the true mass beyond sample quantiles is itself Beta distributed."""
    return float(stats.betabinom.cdf(x, n, k_real + 1, n_real - k_real + 1))


def count_shortfall_p(kept: int, seen_probs: np.ndarray) -> float:
    """P(fewer than or as many as `kept` of independent events happen), event i with chance seen_probs[i]:
    the exact Poisson-binomial lower tail (`scipy.stats.poisson_binom`)."""
    if len(seen_probs) == 0:
        return 1.0
    p = np.clip(np.asarray(seen_probs, dtype=np.float64), 0.0, 1.0)
    return float(min(1.0, stats.poisson_binom.cdf(kept, p)))


def auc_p(value: float, n_pos: int, n_neg: int) -> float:
    """One-sided p-value of a rank AUC on rows the classifier never saw (Mann-Whitney null: 0.5).

    The normal approximation of `scipy.stats.mannwhitneyu` (method 'asymptotic', no continuity correction), from
    the AUC alone: the caller keeps only the AUC, not the classifier's scores, and at the 20+ rows per side the
    test needs the approximation is what mannwhitneyu itself uses. Without the tie correction it is
    conservative when scores tie (tests/test_stats.py)."""
    if n_pos == 0 or n_neg == 0:
        return 1.0
    sd = np.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))
    return float(stats.norm.sf((value - 0.5) / sd))


def shortfall_t_p(value: float, null_draws: np.ndarray) -> float:
    """P(an honest batch scores `value` or lower), the honest scores being `null_draws` (fresh real rows of the
    batch's size): a prediction-interval t test, so few draws widen the limit instead of narrowing it."""
    b = len(null_draws)
    if b < 3:
        return 1.0
    sd = float(np.std(null_draws, ddof=1))
    if sd <= 0:
        sd = 1e-9
    t = (value - float(np.mean(null_draws))) / (sd * np.sqrt(1 + 1 / b))
    return float(stats.t.cdf(t, b - 1))


def share_excess_p(x: float, n: int, y: float, m: int) -> float:
    """One-sided two-sample z test that share x (of n) exceeds share y (of m), with the pooled variance."""
    if n == 0 or m == 0:
        return 1.0
    p = (x * n + y * m) / (n + m)
    sd = np.sqrt(max(p * (1 - p), 1e-12) * (1 / n + 1 / m))
    return float(stats.norm.sf((x - y) / sd))
