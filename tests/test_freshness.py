"""downstream_champion carries a freshness policy from training.champion_max_age_hours, real_data one from
landing.real_max_age_hours (issue 22's idioms)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
from pydantic import ValidationError

from assets.real import build_real_assets
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


def real_data_spec(config: PipelineConfig) -> dg.AssetSpec:
    real = next(a for a in build_real_assets(config) if dg.AssetKey("real_data") in a.keys)
    return next(iter(real.specs))


def test_the_real_table_is_overdue_after_the_configured_age():
    config = PipelineConfig.model_validate({"data": {"source": "x.parquet", "target": "y"},
                                            "landing": {"real_max_age_hours": 30}})
    policy = real_data_spec(config).freshness_policy
    assert policy.fail_window.to_timedelta() == timedelta(hours=30)


def test_the_real_table_defaults_to_the_weekly_schedule_plus_a_day_and_null_switches_it_off():
    default = PipelineConfig.model_validate({"data": {"source": "x.parquet", "target": "y"}})
    assert real_data_spec(default).freshness_policy.fail_window.to_timedelta() == timedelta(days=8)
    off = PipelineConfig.model_validate({"data": {"source": "x.parquet", "target": "y"},
                                         "landing": {"real_max_age_hours": None}})
    assert real_data_spec(off).freshness_policy is None
    # only real_data: the ingest and the split carry none
    others = [s for a in build_real_assets(default) for s in a.specs if s.key != dg.AssetKey("real_data")]
    assert others and all(s.freshness_policy is None for s in others)


def test_a_real_max_age_must_be_positive():
    with pytest.raises(ValidationError):
        PipelineConfig.model_validate({"data": {"source": "x.parquet", "target": "y"},
                                       "landing": {"real_max_age_hours": 0}})
