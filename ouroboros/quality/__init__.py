"""Gate scores and the univariate contract; `evaluate` is the one entry point the asset checks call."""

from ouroboros.quality.contract import Contract, Rule, derive_contract
from ouroboros.quality.scorecard import Failure, Scorecard, evaluate

__all__ = ["Contract", "Failure", "Rule", "Scorecard", "derive_contract", "evaluate"]
