"""The image gate: a feature space from real digits, scores, nulls of fresh real images, and the judge."""

from ouroboros.images.gate.judge import IMAGE_CHECKS, TESTS, ImageGate, ImageVerdict

__all__ = ["IMAGE_CHECKS", "TESTS", "ImageGate", "ImageVerdict"]
