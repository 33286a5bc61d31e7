"""The default ouroboros.yaml is the first run a new user sees: `family: auto` chains under two policies."""

from __future__ import annotations

from ouroboros.config import load_config
from pipelines.definitions import check_studies
from pipelines.settings import PROJECT_ROOT

TORCH_FAMILIES = {"gan", "vae", "diffusion"}


def test_default_config_chooses_the_family_for_the_table():
    config = load_config(PROJECT_ROOT / "ouroboros.yaml")
    check_studies(config)  # every candidate family and hyperparameter is valid
    # issue 18.7: a user's table gets a family chosen for it, not a 10-epoch diffusion tuned for speed on the demo
    assert all(s.family == "auto" for s in config.studies)
    assert all(set(s.candidates) & TORCH_FAMILIES and "copula" in s.candidates for s in config.studies)
    policies = {s.policy for s in config.studies}
    assert "replace" in policies and policies & {"accumulate", "anchor"}
    assert len(config.studies) == 2 and all(3 <= s.generations <= 5 for s in config.studies)
    # the run stays short: each generation step is budgeted, and no study pins epochs the budget cannot cut
    assert all(s.budget_seconds <= 120 for s in config.studies)
    # the downstream model learns from a chain that can hold: not a replace chain
    assert config.study(config.training.study).policy != "replace"


def test_full_study_is_kept():
    config = load_config(PROJECT_ROOT / "studies" / "collapse_study.yaml")
    assert len(config.studies) == 12
