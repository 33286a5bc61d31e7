"""Where everything lives: one place, environment variables over project-local defaults.

Each process (the run worker, every step process of the multiprocess executor, a Kubernetes step pod)
builds its own Settings from its own environment when it loads the code location, so a location is
never baked into a run. `bin/stack up` writes the production profile's variables to `.stack/env`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXECUTORS = ("in_process", "multiprocess", "k8s")


class SettingsError(ValueError):
    pass


def artifact_uri(location: str | Path) -> str:
    """A folder path becomes a file:// URI; a URI (file:, mlflow-artifacts:, s3:, gs:, ...) is kept as is,
    so an object-storage bucket is only a different value."""
    text = str(location)
    if "://" in text or text.startswith("mlflow-artifacts:"):
        return text
    return Path(text).resolve().as_uri()


@dataclass(frozen=True)
class Settings:
    config_path: Path
    lake: Path
    mlflow_tracking_uri: str
    mlflow_artifacts: Path | str  # a folder, or a URI such as mlflow-artifacts:/ouroboros or s3://bucket/path
    gx_root: Path
    landing: Path
    alert_webhook: str | None = None  # optional: alerts are also POSTed here (OUROBOROS_ALERT_WEBHOOK)
    executor: str = "in_process"  # in_process (default), multiprocess (the stack), k8s (the Helm deployment)
    max_concurrent: int = 2  # step processes at once under the multiprocess executor
    mlflow_ui: str = "http://127.0.0.1:5000"
    refusal_alerts: bool = True  # notify_on_refusal defined (OUROBOROS_REFUSAL_ALERTS=on|off)

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise SettingsError(f"OUROBOROS_EXECUTOR={self.executor!r}: use one of {', '.join(EXECUTORS)}")
        if self.max_concurrent < 1:
            raise SettingsError(f"OUROBOROS_MAX_CONCURRENT={self.max_concurrent}: must be at least 1")

    @property
    def mlflow_artifact_uri(self) -> str:
        return artifact_uri(self.mlflow_artifacts)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        lake = Path(env.get("OUROBOROS_LAKE", PROJECT_ROOT / "lake")).resolve()
        artifacts = env.get("OUROBOROS_MLFLOW_ARTIFACTS", str(lake / "mlartifacts"))
        try:
            max_concurrent = int(env.get("OUROBOROS_MAX_CONCURRENT", "2"))
        except ValueError as exc:
            raise SettingsError(f"OUROBOROS_MAX_CONCURRENT={env['OUROBOROS_MAX_CONCURRENT']!r} is not a whole "
                                "number") from exc
        switch = env.get("OUROBOROS_REFUSAL_ALERTS", "on").strip().lower()
        if switch not in ("on", "off"):
            raise SettingsError(f"OUROBOROS_REFUSAL_ALERTS={switch!r}: use on or off")
        return cls(
            refusal_alerts=switch == "on",
            config_path=Path(env.get("OUROBOROS_CONFIG", PROJECT_ROOT / "ouroboros.yaml")).resolve(),
            lake=lake,
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", f"sqlite:///{lake / 'mlflow.db'}"),
            mlflow_artifacts=artifact_uri(artifacts),
            gx_root=Path(env.get("OUROBOROS_GX_ROOT", lake / "gx")).resolve(),
            landing=Path(env.get("OUROBOROS_LANDING", lake / "landing")).resolve(),
            alert_webhook=env.get("OUROBOROS_ALERT_WEBHOOK") or None,
            executor=env.get("OUROBOROS_EXECUTOR", "in_process"),
            max_concurrent=max_concurrent,
            mlflow_ui=env.get("OUROBOROS_MLFLOW_UI", "http://127.0.0.1:5000"),
        )
