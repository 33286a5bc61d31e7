"""downstream_champion carries a freshness policy from training.champion_max_age_hours (issue 22's idioms)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from assets.registry import build_registry_assets
from ouroboros.config import PipelineConfig


def champion_spec(config: PipelineConfig) -> dg.AssetSpec:
    champion = next(a for a in build_registry_assets(config) if dg.AssetKey("downstream_champion") in a.keys)
    return next(iter(champion.specs))


def test_the_champion_is_overdue_after_the_configured_age():
    config = PipelineConfig.model_validate({"data": {"source": "x.parquet", "target": "y"},
                                            "training": {"champion_max_age_hours": 36}})
    policy = champion_spec(config).freshness_policy
    assert policy.fail_window.to_timedelta() == timedelta(hours=36)


def test_the_default_is_the_weekly_schedule_plus_a_day_and_null_switches_it_off():
    default = PipelineConfig.model_validate({"data": {"source": "x.parquet", "target": "y"}})
    assert champion_spec(default).freshness_policy.fail_window.to_timedelta() == timedelta(days=8)
    off = PipelineConfig.model_validate({"data": {"source": "x.parquet", "target": "y"},
                                         "training": {"champion_max_age_hours": None}})
    assert champion_spec(off).freshness_policy is None
