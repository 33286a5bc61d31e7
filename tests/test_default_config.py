"""The default ouroboros.yaml is the first run a new user sees: a small comparison that shows the guard at work."""

from __future__ import annotations

from ouroboros.config import load_config
from pipelines.definitions import check_studies
from pipelines.settings import PROJECT_ROOT

TORCH_FAMILIES = {"gan", "vae", "diffusion"}


def test_default_config_compares_families_and_policies():
    config = load_config(PROJECT_ROOT / "ouroboros.yaml")
    check_studies(config)  # every family and hyperparameter is valid
    families = {s.family for s in config.studies}
    policies = {s.policy for s in config.studies}
    assert len(families) >= 2 and families & TORCH_FAMILIES
    assert "replace" in policies and policies & {"accumulate", "anchor"}
    assert all(3 <= s.generations <= 5 for s in config.studies)
    # the downstream model learns from a chain that can hold: not a replace chain
    assert config.study(config.training.study).policy != "replace"


def test_full_study_is_kept():
    config = load_config(PROJECT_ROOT / "studies" / "collapse_study.yaml")
    assert len(config.studies) == 12
