"""The pipeline's one config file (`ouroboros.yaml`), typed and validated at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Policy = Literal["replace", "accumulate", "anchor"]


class ConfigError(ValueError):
    """The config file is missing or wrong; the message names the file and the setting."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    source: str = Field(description="CSV or parquet file with the real table; relative paths are from the config file")
    target: str = Field(description="column the downstream model predicts")
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 0


class StudyConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="asset group and key prefix")
    family: str = "copula"
    policy: Policy = "replace"
    generations: int = Field(3, ge=1, le=100)
    rows: int | None = Field(None, ge=1, description="rows per synthetic batch; default: as many as real_train")
    lam: float = Field(0.2, ge=0.0, le=1.0, description="anchor policy: fraction of fresh real rows in each pool")
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict, description="generator hyperparameters")


class DownstreamConfig(_Strict):
    epochs: int = Field(10, ge=1)
    hidden: int = Field(64, ge=4)
    batch_size: int = Field(512, ge=8)
    learning_rate: float = Field(1e-3, gt=0)
    seed: int = 0


class GateConfig(_Strict):
    """Thresholds of the gate; each number is the bound a batch must meet."""

    spread_tolerance: float = Field(0.15, ge=0, description="allowed relative gap of a column's std beyond noise")
    range_mostly: float = Field(0.999, gt=0, le=1, description="share of values that must lie in the real range")
    null_tolerance: float = Field(0.02, ge=0, le=1, description="allowed absolute excess of null share")
    min_column_shape: float = Field(0.80, ge=0, le=1, description="lowest per-column shape score allowed")
    max_exact_copy_rate: float = Field(0.0, ge=0, le=1, description="share of rows that copy a real_train row")
    min_category_survival: float = Field(0.9, ge=0, le=1, description="share of real categories a batch must keep")


class TrainingConfig(_Strict):
    study: str | None = Field(None, description="study whose approved batches feed training; default: the first")
    generations: Literal["all", "latest"] = "all"


class LandingConfig(_Strict):
    """How landed real-data files are checked before they may join the real table."""

    settle_seconds: float = Field(5.0, ge=0, description="a file must be this old, and unchanged across two "
                                                           "sensor ticks, before it is taken")
    null_tolerance: float = Field(0.05, ge=0, le=1, description="allowed absolute excess of a column's null share "
                                                                "over the first accepted data")
    range_slack: float = Field(0.5, ge=0, description="numeric values may exceed the first accepted range by this "
                                                      "share of its span on either side")
    extra_categories: dict[str, list[str]] = Field(default_factory=dict, description="categories declared valid "
                                                   "beyond those seen in the first accepted data, per column")
    max_attempts: int = Field(3, ge=1, description="times the sensor re-requests a file whose run ended with the "
                                                   "file still in landing (an interrupted ingest)")
    alert_webhook: str | None = Field(None, description="optional URL alerts are POSTed to as JSON; "
                                                        "OUROBOROS_ALERT_WEBHOOK overrides it")


class PipelineConfig(_Strict):
    data: DataConfig
    studies: list[StudyConfig] = Field(default_factory=lambda: [StudyConfig(name="copula_replace")])
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    downstream: DownstreamConfig = Field(default_factory=DownstreamConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    landing: LandingConfig = Field(default_factory=LandingConfig)

    @field_validator("studies")
    @classmethod
    def _unique_names(cls, studies: list[StudyConfig]) -> list[StudyConfig]:
        names = [s.name for s in studies]
        if len(set(names)) != len(names):
            raise ValueError(f"study names must be unique, got {names}")
        if not studies:
            raise ValueError("at least one study is needed")
        return studies

    @model_validator(mode="after")
    def _training_study_exists(self) -> PipelineConfig:
        names = [s.name for s in self.studies]
        if self.training.study is None:
            self.training.study = names[0]
        elif self.training.study not in names:
            raise ValueError(f"training.study {self.training.study!r} is not one of the studies {names}")
        return self

    def study(self, name: str) -> StudyConfig:
        return next(s for s in self.studies if s.name == name)


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate the YAML config; `data.source` is resolved relative to the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found (set OUROBOROS_CONFIG or create it)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{path}: invalid config:\n  " + "\n  ".join(lines)) from exc
    source = Path(config.data.source)
    if not source.is_absolute():
        config.data.source = str((path.parent / source).resolve())
    return config
