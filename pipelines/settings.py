"""Where everything lives: one place, environment variables over project-local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    config_path: Path
    lake: Path
    mlflow_tracking_uri: str
    mlflow_artifacts: Path
    gx_root: Path
    landing: Path
    alert_webhook: str | None = None  # optional: alerts are also POSTed here (OUROBOROS_ALERT_WEBHOOK)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        lake = Path(env.get("OUROBOROS_LAKE", PROJECT_ROOT / "lake")).resolve()
        return cls(
            config_path=Path(env.get("OUROBOROS_CONFIG", PROJECT_ROOT / "ouroboros.yaml")).resolve(),
            lake=lake,
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", f"sqlite:///{lake / 'mlflow.db'}"),
            mlflow_artifacts=Path(env.get("OUROBOROS_MLFLOW_ARTIFACTS", lake / "mlartifacts")).resolve(),
            gx_root=Path(env.get("OUROBOROS_GX_ROOT", lake / "gx")).resolve(),
            landing=Path(env.get("OUROBOROS_LANDING", lake / "landing")).resolve(),
            alert_webhook=env.get("OUROBOROS_ALERT_WEBHOOK") or None,
        )
