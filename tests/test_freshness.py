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

# (asset, the builder of its module's assets, the config section and setting of its maximum age)
ASSETS = [("downstream_champion", build_registry_assets, "training", "champion_max_age_hours"),
          ("real_data", build_real_assets, "landing", "real_max_age_hours")]


def config_with(section: str | None = None, setting: str | None = None, value=None) -> PipelineConfig:
    raw = {"data": {"source": "x.parquet", "target": "y"}}
    if section:
        raw[section] = {setting: value}
    return PipelineConfig.model_validate(raw)


def spec(name: str, build, config: PipelineConfig) -> dg.AssetSpec:
    asset = next(a for a in build(config) if dg.AssetKey(name) in a.keys)
    return next(s for s in asset.specs if s.key == dg.AssetKey(name))


@pytest.mark.parametrize("name,build,section,setting", ASSETS)
def test_overdue_after_the_configured_age(name, build, section, setting):
    policy = spec(name, build, config_with(section, setting, 30)).freshness_policy
    assert policy.fail_window.to_timedelta() == timedelta(hours=30)


@pytest.mark.parametrize("name,build,section,setting", ASSETS)
def test_the_default_is_the_weekly_schedule_plus_a_day_and_null_switches_it_off(name, build, section, setting):
    assert spec(name, build, config_with()).freshness_policy.fail_window.to_timedelta() == timedelta(days=8)
    assert spec(name, build, config_with(section, setting, None)).freshness_policy is None


@pytest.mark.parametrize("name,build,section,setting", ASSETS)
def test_a_max_age_must_be_positive(name, build, section, setting):
    with pytest.raises(ValidationError):
        config_with(section, setting, 0)


def test_only_real_data_carries_one_in_the_real_group():
    # the ingest and the split carry none
    others = [s for a in build_real_assets(config_with()) for s in a.specs if s.key != dg.AssetKey("real_data")]
    assert others and all(s.freshness_policy is None for s in others)
