"""Settings of image studies (`images:` in the config file): the image gate's thresholds and its feature net.

Each blocking limit refuses a batch only when it is beyond what fresh real images of the batch's size score
(a test at the false-refusal rate `gate.false_refusal_rate`, shared over every test by Bonferroni) AND beyond
the effect size set here. docs/images.md lists every test and its null.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ImageGateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_fd_ratio: float = Field(1.5, ge=1, description="Fréchet distance beyond this many times fresh real images'")
    min_prdc_ratio: float = Field(0.85, ge=0, le=1, description="precision, recall, density or coverage below this "
                                  "share of fresh real images'")
    max_class_tvd: float = Field(0.05, ge=0, le=1, description="total variation distance of the class shares from "
                                 "real_train's beyond this (beyond fresh real images' too)")
    min_class_ratio: float = Field(0.5, ge=0, le=1, description="a class holding under this share of its real_train "
                                   "share (and fewer than fresh real images plausibly do: exact binomial) is lost")
    max_label_disagreement: float = Field(0.10, ge=0, le=1, description="share of images the real-trained feature "
                                          "classifier labels otherwise, beyond fresh real images' share by this")
    max_utility_gap: float = Field(0.05, ge=0, le=1, description="accuracy on real_holdout of a classifier trained on "
                                   "the batch, below one trained on as many real images by this")
    max_copy_excess: float = Field(0.02, ge=0, le=1, description="share of near copies of real_train images (pixel "
                                   "or feature space) beyond real_holdout's share by this")
    max_mode_excess: float = Field(0.05, ge=0, le=1, description="share of the batch taken by one repeated image "
                                   "beyond fresh real images' share by this")
    min_diversity_ratio: float = Field(0.8, ge=0, le=1, description="within-class diversity of the least diverse "
                                       "class below this share of fresh real images'")
    variance_band: tuple[float, float] = Field((0.8, 1.25), description="pixel-intensity variance outside this band "
                                               "of fresh real images'")
    copy_quantile: float = Field(0.01, gt=0, lt=0.5, description="a batch image nearer to a real_train image than "
                                 "this quantile of real_holdout's nearest distances is a near copy")
    null_draws: int = Field(200, ge=20, description="fresh real batches drawn per batch size for the nulls")
    utility_draws: int = Field(30, ge=5, description="real-trained classifiers per batch size for the utility null")
    knn_k: int = Field(5, ge=1, description="k of precision/recall/density/coverage")
    feature_epochs: int = Field(30, ge=1, description="epochs of the feature classifier on real_train")
    seed: int = 0


class ImageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gate: ImageGateConfig = Field(default_factory=ImageGateConfig)
    grid_per_class: int = Field(8, ge=1, le=32, description="sample images per class in each generation's grid")
