"""Sensors: start the pipeline when a new real-data file lands."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg

from ouroboros.tables import SUPPORTED_SUFFIXES

SETTLE_SECONDS = 5.0  # a file modified more recently than this may still be being written


def landed_files(landing: Path, now: float) -> list[Path]:
    if not landing.exists():
        return []
    files = [p for p in landing.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
             and not p.name.startswith(".")]
    return sorted(p for p in files if now - p.stat().st_mtime >= SETTLE_SECONDS)


def file_run_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def build_landing_sensor(job: dg.JobDefinition, landing: Path) -> dg.SensorDefinition:
    @dg.sensor(job=job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"Starts {job.name} once for each new CSV or parquet file in {landing}.")
    def landing_sensor(context: dg.SensorEvaluationContext):
        seen = set(json.loads(context.cursor)) if context.cursor else set()
        requests = []
        for path in landed_files(landing, time.time()):
            key = file_run_key(path)
            if key in seen:
                continue
            seen.add(key)
            requests.append(dg.RunRequest(
                run_key=key,  # Dagster also de-duplicates on run keys, so a restart never ingests twice
                run_config={"ops": {"real_data": {"config": {"landed_file": str(path)}}}},
                tags={"landed_file": path.name},
            ))
        context.update_cursor(json.dumps(sorted(seen)))
        if not requests:
            return dg.SkipReason(f"no new files in {landing}")
        return requests

    return landing_sensor
