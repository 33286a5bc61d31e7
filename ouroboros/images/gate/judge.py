"""The image gate: every score of a batch against the null of fresh real images of its size.

A test refuses when its score is beyond the noise limit (mean +- z sd of the null draws, never inside their
most extreme draw; z at the false-refusal rate over the number of tests, Bonferroni) AND beyond the effect
size of `ImageGateConfig`. Tests belong to three blocking checks, as for tables: fidelity (Fréchet distance,
precision/recall/density/coverage, class shares, label agreement, utility), privacy (near copies of real_train
in pixel and feature space, against real_holdout's share) and collapse (one repeated image, within-class
diversity, pixel-intensity variance on both sides).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import norm

from ouroboros.images.config import ImageGateConfig
from ouroboros.images.data import ImageSet
from ouroboros.images.gate import metrics as M
from ouroboros.images.gate.features import FeatureSpace
from ouroboros.images.gate.null import draw_fresh, summary

IMAGE_CHECKS = ("fidelity", "privacy", "collapse")

# name -> (check, side the score fails on)
TESTS = {
    "fidelity.frechet_distance": ("fidelity", "upper"),
    "fidelity.precision": ("fidelity", "lower"),
    "fidelity.recall": ("fidelity", "lower"),
    "fidelity.density": ("fidelity", "lower"),
    "fidelity.coverage": ("fidelity", "lower"),
    "fidelity.class_tvd": ("fidelity", "upper"),
    "fidelity.rarest_class": ("fidelity", "exact"),
    "fidelity.label_agreement": ("fidelity", "lower"),
    "fidelity.utility_accuracy": ("fidelity", "lower"),
    "privacy.copy_share_pixel": ("privacy", "upper"),
    "privacy.copy_share_feature": ("privacy", "upper"),
    "collapse.mode_share": ("collapse", "upper"),
    "collapse.min_class_diversity": ("collapse", "lower"),
    "collapse.intensity_variance_low": ("collapse", "lower"),
    "collapse.intensity_variance_high": ("collapse", "upper"),
}


@dataclass
class TestResult:
    name: str
    check: str
    value: float
    null_mean: float
    null_sd: float
    noise_limit: float
    effect_limit: float
    passed: bool
    reason: str = ""


@dataclass
class ImageVerdict:
    n: int
    tests: list[TestResult]
    passed: bool
    null_size: int
    scores: dict[str, float] = field(default_factory=dict)

    def check(self, name: str) -> tuple[bool, list[dict], dict[str, float]]:
        """(passed, failures, scores) of one blocking check, in the shape of the table gate's records."""
        mine = [t for t in self.tests if t.check == name]
        failures = [{"indicator": t.name, "value": t.value, "threshold": t.effect_limit, "reason": t.reason}
                    for t in mine if not t.passed]
        scores = {t.name: t.value for t in mine}
        scores.update({f"{t.name}.noise_limit": t.noise_limit for t in mine})
        return not failures, failures, scores

    def failed(self) -> list[str]:
        return [t.name for t in self.tests if not t.passed]

    def to_dict(self) -> dict:
        return asdict(self)


class ImageGate:
    """Fit once on (real_train, real_holdout); `evaluate(batch)` judges any batch of the same image shape."""

    def __init__(self, train: ImageSet, holdout: ImageSet, config: ImageGateConfig | None = None,
                 false_refusal_rate: float = 0.01) -> None:
        self.config = config or ImageGateConfig()
        self.train, self.holdout = train, holdout
        self.alpha = false_refusal_rate
        self.z = float(norm.ppf(1 - false_refusal_rate / len(TESTS)))
        c = self.config
        self.space = FeatureSpace(train, epochs=c.feature_epochs, seed=c.seed)
        self.classes, counts = np.unique(train.labels, return_counts=True)
        self.share = counts / counts.sum()
        self.train_flat, self.holdout_flat = train.flat().astype(np.float64), holdout.flat().astype(np.float64)
        self.train_feat, self.holdout_feat = self.space.features(train.images), self.space.features(holdout.images)
        self.train_moments = M.moments(self.train_feat)
        self.radius = M.kth_radius(self.train_feat, c.knn_k)
        # a near copy: nearer to a real_train image than all but copy_quantile of real_holdout images are
        self.tau_pixel = float(np.quantile(M.pairwise(self.holdout_flat, self.train_flat).min(1), c.copy_quantile))
        self.tau_feature = float(np.quantile(M.pairwise(self.holdout_feat, self.train_feat).min(1), c.copy_quantile))
        # "the same image" for mode collapse: as near as the nearest copy_quantile of distinct real_train pairs
        d = M.pairwise(self.train_flat, self.train_flat)
        np.fill_diagonal(d, np.inf)
        self.eps_mode = float(np.quantile(d.min(1), c.copy_quantile))
        self.train_diversity = M.class_diversity(self.train_feat, train.labels, self.classes)
        self.train_variance = M.intensity_variance(self.train_flat)
        self._nulls: dict[int, dict[str, dict]] = {}
        self._centre: dict[str, dict] | None = None

    def scores(self, batch: ImageSet, utility: bool = True) -> dict[str, float]:
        flat = batch.flat().astype(np.float64)
        feat = self.space.features(batch.images)
        mu, cov = M.moments(feat)
        out = {"fidelity.frechet_distance": M.frechet(mu, cov, *self.train_moments)}
        out.update({f"fidelity.{k}": v for k, v in
                    M.prdc(self.train_feat, feat, self.radius, self.config.knn_k).items()})
        out["fidelity.class_tvd"] = M.class_tvd(batch.labels, self.classes, self.share)
        out["fidelity.rarest_class"], out["fidelity.rarest_class_p"] = M.rarest_class(batch.labels, self.classes,
                                                                                      self.share)
        out["fidelity.label_agreement"] = float((self.space.predict(batch.images) == batch.labels).mean())
        if utility:
            out["fidelity.utility_accuracy"] = M.utility(flat, batch.labels, self.holdout_flat, self.holdout.labels)
        out["privacy.copy_share_pixel"] = float((M.pairwise(flat, self.train_flat).min(1) <= self.tau_pixel).mean())
        out["privacy.copy_share_feature"] = float((M.pairwise(feat, self.train_feat).min(1) <= self.tau_feature).mean())
        out["collapse.mode_share"] = M.mode_share(flat, self.eps_mode)
        out["collapse.min_class_diversity"] = float(
            (M.class_diversity(feat, batch.labels, self.classes) / self.train_diversity).min())
        variance = M.intensity_variance(flat) / self.train_variance
        out["collapse.intensity_variance_low"] = out["collapse.intensity_variance_high"] = variance
        return out

    def _bootstrap(self, n: int, tag: int) -> dict[str, list[float]]:
        rng = np.random.default_rng([self.config.seed, n, tag])
        draws: dict[str, list[float]] = {}
        for _ in range(self.config.null_draws):
            batch = self.holdout.take(rng.integers(0, len(self.holdout), n))
            for k, v in self.scores(batch, utility=False).items():
                draws.setdefault(k, []).append(v)
        return draws

    def null(self, n: int) -> dict[str, dict]:
        """What fresh real images score at this batch size (cached; docs/images.md).

        Fresh batches of n are bootstrap draws from real_holdout (no generator and not the feature classifier
        saw it). Their spread is the batch's own noise; the null's centre is itself estimated from the holdout,
        so its uncertainty (the spread of holdout-sized draws) is added: sd = sqrt(sd_n^2 + sd_holdout^2), a
        prediction interval for a fresh batch. Utility: classifiers trained on n real_train images, scored on
        the same real_holdout as the batch's (the test set's noise is shared, so nothing is added)."""
        if n not in self._nulls:
            if self._centre is None:
                self._centre = {k: summary(v) for k, v in self._bootstrap(len(self.holdout), 1).items()}
            here = {k: summary(v) for k, v in self._bootstrap(n, 0).items()}
            for k, s in here.items():
                s["sd_batch"], s["sd_centre"] = s["sd"], self._centre[k]["sd"]
                s["sd"] = float(np.hypot(s["sd"], self._centre[k]["sd"]))
            rng = np.random.default_rng([self.config.seed, n, 2])
            util = []
            for _ in range(self.config.utility_draws):
                idx = draw_fresh(len(self.train), n, rng)
                util.append(M.utility(self.train_flat[idx], self.train.labels[idx], self.holdout_flat,
                                      self.holdout.labels))
            here["fidelity.utility_accuracy"] = summary(util)
            self._nulls[n] = here
        return self._nulls[n]

    def _effect_limit(self, name: str, mean: float) -> float:
        c = self.config
        return {
            "fidelity.frechet_distance": mean * c.max_fd_ratio,
            "fidelity.precision": mean * c.min_prdc_ratio, "fidelity.recall": mean * c.min_prdc_ratio,
            "fidelity.density": mean * c.min_prdc_ratio, "fidelity.coverage": mean * c.min_prdc_ratio,
            "fidelity.class_tvd": mean + c.max_class_tvd,
            "fidelity.label_agreement": mean - c.max_label_disagreement,
            "fidelity.utility_accuracy": mean - c.max_utility_gap,
            "privacy.copy_share_pixel": mean + c.max_copy_excess,
            "privacy.copy_share_feature": mean + c.max_copy_excess,
            "collapse.mode_share": mean + c.max_mode_excess,
            "collapse.min_class_diversity": mean * c.min_diversity_ratio,
            "collapse.intensity_variance_low": mean * c.variance_band[0],
            "collapse.intensity_variance_high": mean * c.variance_band[1],
        }[name]

    def evaluate(self, batch: ImageSet) -> ImageVerdict:
        if batch.shape != self.train.shape:
            raise ValueError(f"batch images are {batch.shape}, real_train's are {self.train.shape}")
        null, scores = self.null(len(batch)), self.scores(batch)
        results = []
        for name, (check, side) in TESTS.items():
            if side == "exact":  # an exact test, no draws needed: fresh real labels are multinomial
                value, p = scores[name], scores[f"{name}_p"]
                effect = self.config.min_class_ratio
                passed = not (p < self.alpha / len(TESTS) and value < effect)
                reason = "" if passed else (f"{name}: a class holds {value:.3g} of its real share (p = {p:.2g} for "
                                            f"fresh real images of this size; limit {self.alpha / len(TESTS):.2g})")
                results.append(TestResult(name, check, value, 1.0, 0.0, self.alpha / len(TESTS), effect, passed,
                                          reason))
                continue
            s, value = null[name], scores[name]
            effect = self._effect_limit(name, s["mean"])
            if side == "upper":
                noise = max(s["mean"] + self.z * s["sd"], s["max"])
                passed = not (value > noise and value > effect)
                word = "above"
            else:
                noise = min(s["mean"] - self.z * s["sd"], s["min"])
                passed = not (value < noise and value < effect)
                word = "below"
            reason = "" if passed else (f"{name} {value:.4g} {word} fresh real images' noise limit {noise:.4g} "
                                        f"and the effect limit {effect:.4g} (real mean {s['mean']:.4g})")
            results.append(TestResult(name, check, value, s["mean"], s["sd"], noise, effect, passed, reason))
        return ImageVerdict(len(batch), results, all(r.passed for r in results), len(self.holdout), scores)
