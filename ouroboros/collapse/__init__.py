"""Recursive generations and model collapse, framework-free: the chain, the reference generator, studies."""

from ouroboros.collapse.chain import (
    GenerationResult,
    ReferenceChains,
    StudyResult,
    chain,
    run_reference_chains,
    run_study,
    variance_ratio,
)
from ouroboros.collapse.gaussian import GaussianReference, fit_moments, sample_moments
from ouroboros.generators import register

# available as create("gaussian") wherever the collapse package has been imported
register(GaussianReference.family, "ouroboros.collapse.gaussian:GaussianReference")

__all__ = ["GaussianReference", "GenerationResult", "ReferenceChains", "StudyResult", "chain", "fit_moments",
           "run_reference_chains", "run_study", "sample_moments", "variance_ratio"]
