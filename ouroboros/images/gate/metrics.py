"""The image gate's scores, each a plain function of arrays (the nulls and the judge live elsewhere)."""

from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.stats import binom
from sklearn.svm import SVC


def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b))."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
    return np.sqrt(np.maximum(d, 0))


def frechet(mu1, cov1, mu2, cov2) -> float:
    """Fréchet distance of two Gaussians (Heusel et al. 2017): |mu1-mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^1/2)."""
    # tr (C1 C2)^1/2 = sum of sqrt eigenvalues of C1^1/2 C2 C1^1/2, a symmetric matrix: stable where the
    # covariances are singular (dead ReLU features, batches smaller than the feature dimension)
    w, v = linalg.eigh(cov1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_covmean = np.sqrt(np.clip(linalg.eigvalsh(root1 @ cov2 @ root1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * tr_covmean)


def moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)


def kth_radius(real: np.ndarray, k: int) -> np.ndarray:
    """Distance of each real point to its k-th nearest other real point."""
    d = pairwise(real, real)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def prdc(real: np.ndarray, fake: np.ndarray, real_radius: np.ndarray, k: int,
         real_fake: np.ndarray | None = None) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) with k-NN balls."""
    d = pairwise(real, fake) if real_fake is None else real_fake  # (real, fake)
    inside = d <= real_radius[:, None]
    fake_radius = np.sort(pairwise(fake, fake), axis=1)[:, min(k, len(fake) - 1)]
    return {"precision": float(inside.any(0).mean()),
            "recall": float((d <= fake_radius[None]).any(1).mean()),
            "density": float(inside.sum(0).mean() / k),
            "coverage": float((d.min(1) <= real_radius).mean())}


def class_tvd(labels: np.ndarray, classes: np.ndarray, share: np.ndarray) -> float:
    """Total variation distance of the batch's class shares from the reference shares."""
    counts = np.array([(labels == c).sum() for c in classes], float)
    return float(0.5 * np.abs(counts / max(len(labels), 1) - share).sum() + 0.5 * (~np.isin(labels, classes)).mean())


def rarest_class(labels: np.ndarray, classes: np.ndarray, share: np.ndarray) -> tuple[float, float]:
    """(count / expected count of the class furthest below its share, the exact binomial p-value of a count that
    low in a fresh real batch of this size, times the number of classes: Bonferroni over them)."""
    n = len(labels)
    counts = np.array([(labels == c).sum() for c in classes])
    p = binom.cdf(counts, n, share)
    worst = int(np.argmin(p))
    return float(counts[worst] / (n * share[worst])), float(min(1.0, p[worst] * len(classes)))


def mode_share(flat: np.ndarray, eps: float) -> float:
    """Largest share of the batch lying within eps (pixel space) of one of its images: one repeated image."""
    counts = (pairwise(flat, flat) <= eps).sum(1)
    return float(counts.max() / len(flat))


def class_diversity(features: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Mean pairwise feature distance within each class (0 where the class has under 2 images)."""
    out = np.zeros(len(classes))
    for i, c in enumerate(classes):
        f = features[labels == c]
        if len(f) >= 2:
            out[i] = pairwise(f, f).sum() / (len(f) * (len(f) - 1))
    return out


def intensity_variance(flat: np.ndarray) -> float:
    """Per-pixel variance across the batch, averaged over pixels: blur and collapse shrink it."""
    return float(flat.var(0).mean())


def utility(train_flat: np.ndarray, train_labels: np.ndarray, test_flat: np.ndarray, test_labels: np.ndarray) -> float:
    """Accuracy on real test images of an RBF SVM trained on the given images (fast and strong on digits)."""
    if len(np.unique(train_labels)) < 2:
        return float((test_labels == train_labels[0]).mean())
    return float((SVC(gamma="scale").fit(train_flat, train_labels).predict(test_flat) == test_labels).mean())
