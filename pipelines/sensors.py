"""Sensors: ingest each landed real-data file (ingest_job), retrain once per new version of the real table
(production_job), and record an alert when a run fails or the gate refuses a batch."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from ouroboros.config import PipelineConfig
from ouroboros.landing import is_landing_candidate
from resources import LakeResource

LANDING_KEY_TAG = "ouroboros/landing_key"  # file identity (name:size:mtime) a run was started for
ATTEMPT_TAG = "ouroboros/landing_attempt"
REQUEST_AGAIN_TAG = "ouroboros/landing_again"  # why a waiting file was asked for again: tables_changed | wait_over
WAITING_STATUS = "waiting"  # the dataset ingest's status of a child file waiting for its parent rows
TERMINAL = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dataclass
class LandingCursor:
    """The sensor's memory between ticks, stored as the Dagster cursor.

    `pending`: files seen once, with the size and mtime they had (a file is taken only when a later tick sees
    the same size and mtime, so a file still being written is not); `requested`: file key -> the run key and
    attempt of its last run request; `seq`: a counter in every run key, so a file re-delivered later under the
    same name, size and mtime still gets a run of its own (its content hash then says it is a duplicate).
    """

    seq: int = 0
    pending: dict[str, list[int]] = field(default_factory=dict)
    requested: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> LandingCursor:
        if not text:
            return cls()
        raw = json.loads(text)
        if isinstance(raw, list):  # the cursor of the first sensor version: a list of seen keys
            return cls(requested={k: {"run_key": k, "attempt": 1} for k in raw})
        return cls(seq=raw.get("seq", 0), pending=raw.get("pending", {}), requested=raw.get("requested", {}))

    def dump(self) -> str:
        return json.dumps({"seq": self.seq, "pending": self.pending, "requested": self.requested}, sort_keys=True)


def scan_landing(landing: Path) -> dict[str, tuple[Path, int, int]]:
    """Candidate files in the landing folder: name -> (path, size, mtime_ns)."""
    if not landing.exists():
        return {}
    out = {}
    for p in sorted(landing.iterdir()):
        if p.is_file() and is_landing_candidate(p.name):
            st = p.stat()
            out[p.name] = (p, st.st_size, st.st_mtime_ns)
    return out


def scan_dataset_landing(landing: Path) -> dict[str, tuple[Path, int, int]]:
    """Candidate files of a dataset's landing folder (`landing/<table>/<file>`): `<folder>/<name>` -> (path, size,
    mtime_ns) for the files in each folder under landing (a table's, or a misnamed one: its files are then
    quarantined as unknown_table rather than left unseen), and `<name>` for files directly in landing (quarantined
    as unknown_table too). Hidden folders and folder links are not entered."""
    out = scan_landing(landing)
    if not landing.exists():
        return out
    for folder in sorted(landing.iterdir()):
        if folder.is_dir() and not folder.is_symlink() and is_landing_candidate(folder.name):
            for name, entry in scan_landing(folder).items():
                out[f"{folder.name}/{name}"] = entry
    return out


def _waits_until(instance: dg.DagsterInstance, run: dg.DagsterRun, ingest_op: str) -> datetime | None:
    """When the wait of the file a finished ingest run left `waiting` (for its parent rows) ends; None when the
    run did not leave it waiting (crashed, or never got to the file)."""
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.event_specific_data.materialization
        if materialization.asset_key.path[-1] != ingest_op:
            continue
        status, until = materialization.metadata.get("status"), materialization.metadata.get("wait_until")
        if getattr(status, "value", status) == WAITING_STATUS and until is not None:
            return datetime.fromisoformat(getattr(until, "value", until))
    return None


def _last_run(instance: dg.DagsterInstance, run_key: str):
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1)
    if not runs:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={LANDING_KEY_TAG: run_key}), limit=1)
    return runs[0] if runs else None


LANDING_TICK_SECONDS = 10  # a file is taken on its second look, so it is triaged within about two ticks


def build_landing_sensor(job: dg.JobDefinition, landing: Path, settle_seconds: float = 5.0,
                         max_attempts: int = 3, ingest_op: str = "real_ingest", tables: list[str] | None = None,
                         lake: LakeResource | None = None) -> dg.SensorDefinition:
    """One run of `job` (ingest_job: real_ingest alone, seconds) per settled landed file. Training is not in
    that run: retrain_on_new_data starts it once per new table version, so a file never waits behind a
    training run, and ten files give ten short ingest runs (serialised by their run tag) and one retrain.

    `tables` (a dataset's, `data.tables`; needs `lake`): files land in `landing/<table>/` and are keyed
    `<table>/<name>` (`scan_dataset_landing`). A file whose last run left it `waiting` for its parent rows is
    asked for again, without counting against `max_attempts`, when any table's head version has changed since
    that request (its parents may have landed) or once its wait is over (to be quarantined as orphan); never
    otherwise, and never twice in a tick."""
    if tables is not None and lake is None:
        raise ValueError("build_landing_sensor(tables=...) needs lake= to read the tables' head versions")
    if tables is None:
        what = f"each new file in {landing}"
    else:
        what = (f"each new file in {landing}/<table>/ (tables {sorted(tables)}; a file elsewhere is quarantined as "
                "unknown_table), again for a file waiting for its parent rows once a table changes or its wait ends,")

    @dg.sensor(job=job, minimum_interval_seconds=LANDING_TICK_SECONDS,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"Starts {job.name} once for {what} (CSV, gzip or zstd CSV, parquet; "
                           "any other format is quarantined as unsupported_format; dot files and .part files wait) "
                           f"after it has been unchanged for {settle_seconds:g} s and across two ticks. "
                           "Retraining is retrain_on_new_data's, once per new real table version.")
    def landing_sensor(context: dg.SensorEvaluationContext):
        cursor = LandingCursor.parse(context.cursor)
        now_ns = time.time_ns()
        files = scan_landing(landing) if tables is None else scan_dataset_landing(landing)
        heads = None if tables is None or not files else {t: lake.real_table_head(t) for t in sorted(tables)}
        requests, waiting, gave_up, parked = [], [], [], []
        for name, (path, size, mtime_ns) in files.items():
            key = f"{name}:{size}:{mtime_ns}"
            sent = cursor.requested.get(key)
            again = None  # why a file left waiting for its parents is asked for again (not a new attempt)
            if sent is not None:
                # sent before and still in landing: re-send only once its run ended without moving the file
                run = _last_run(context.instance, sent["run_key"])
                if run is None or run.status not in TERMINAL:
                    continue  # queued or running (or not launched yet): wait for it
                until = None
                if tables is not None:
                    if "waits_until" not in sent:  # read from the run's events once, then kept in the cursor
                        found = _waits_until(context.instance, run, ingest_op)
                        sent["waits_until"] = found.isoformat() if found else None
                    until = datetime.fromisoformat(sent["waits_until"]) if sent["waits_until"] else None
                if until is not None:
                    if sent.get("heads") != heads:
                        again = "tables_changed"
                    elif datetime.now(timezone.utc) >= until:
                        again = "wait_over"
                    else:
                        parked.append(f"{name} (until {until.isoformat()})")
                        continue
                    attempt = sent["attempt"]
                elif sent["attempt"] >= max_attempts:
                    gave_up.append(name)
                    continue
                else:
                    attempt = sent["attempt"] + 1
            else:
                seen = cursor.pending.get(name)
                settled = (now_ns - mtime_ns) / 1e9 >= settle_seconds
                cursor.pending[name] = [size, mtime_ns]
                if seen != [size, mtime_ns] or not settled:
                    waiting.append(name)  # new, or still growing: look again next tick
                    continue
                attempt = 1
            cursor.pending.pop(name, None)
            cursor.seq += 1
            run_key = f"{key}#{cursor.seq}"
            cursor.requested[key] = {"run_key": run_key, "attempt": attempt}
            tags = {"landed_file": name, LANDING_KEY_TAG: run_key, ATTEMPT_TAG: str(attempt)}
            if heads is not None:
                cursor.requested[key]["heads"] = heads  # the tables as they were when this run was asked for
                if again is not None:
                    tags[REQUEST_AGAIN_TAG] = again
            requests.append(dg.RunRequest(
                run_key=run_key,  # Dagster drops a second request with this key, so a sensor restart never doubles
                run_config={"ops": {ingest_op: {"config": {"landed_file": str(path)}}}},
                tags=tags,
            ))
        # forget files that left landing (ingested or quarantined): the cursor stays small
        present = {f"{n}:{s}:{m}" for n, (_, s, m) in files.items()}
        cursor.requested = {k: v for k, v in cursor.requested.items() if k in present}
        cursor.pending = {n: v for n, v in cursor.pending.items() if n in files}
        context.update_cursor(cursor.dump())
        for name in gave_up:
            context.log.warning(f"{name}: {max_attempts} runs ended with the file still in landing; "
                                "left for an operator (see the runs tagged landed_file)")
        if not requests:
            return dg.SkipReason(f"no settled new files in {landing}"
                                 + (f"; waiting on {waiting}" if waiting else "")
                                 + (f"; waiting for their parent rows: {parked}" if parked else ""))
        return requests

    return landing_sensor


def landing_sensor_for(job: dg.JobDefinition, landing: Path, pipeline: PipelineConfig,
                       lake: LakeResource) -> dg.SensorDefinition:
    """The landing sensor the config calls for: per table (`data.tables`) or flat (`data.source`)."""
    tables = sorted(pipeline.data.tables) if pipeline.data.tables else None
    return build_landing_sensor(job, landing, pipeline.landing.settle_seconds, pipeline.landing.max_attempts,
                                tables=tables, lake=lake if tables else None)


# --- retraining ---------------------------------------------------------------------------------------------

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
TABLE_VERSION_TAG = "ouroboros/real_table_version"


def _latest_version(instance: dg.DagsterInstance, key: str, field: str = "real_table_version") -> int | None:
    """The `field` metadata (the real table's version) of an asset's latest materialisation (None if never, or
    unrecorded); `key` in the UI's form, `real_data` or `real_data/<table>`."""
    event = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get(field)
    return None if value is None else int(getattr(value, "value", value))


def build_retrain_sensor(job: dg.JobDefinition, watch: tuple[str, ...] = (),
                         ingest_asset: str = "real_ingest", real_asset: str = "real_data",
                         version_field: str = "real_table_version") -> dg.SensorDefinition:
    """One run of `job` (production_job) per new version of the real table.

    A dataset of several tables (`version_field="dataset_version"`, `real_asset="real_data/<root table>"`) is
    watched the same way through one number for all its tables (`assets.dataset_ingest.dataset_version`).

    A new version is one that `ingest_asset` last recorded (each accepted file is one Delta commit) and that no
    `real_asset` materialisation has read yet: training on it has not started. While a run of `job` or of any
    job in `watch` (the full study) is queued or running, the sensor waits; the next tick after it ends asks
    for the newest version only, so a burst of files gives one retrain on the last version, not one per file.
    The run key is the table version: a restarted sensor or a repeated tick never retrains a version twice.

    Why a sensor and not AutomationCondition.eager() on the chain: eager requests a run on every upstream
    update (each ingest), and a run requested while another is in flight queues behind it rather than being
    merged with the next update; it has no "skip while training runs, then take only the newest" rule.
    """
    watched = (job.name, *watch)

    @dg.sensor(name="retrain_on_new_data", job=job, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Starts {job.name} once per new real table version (an accepted landed file), after "
                           f"any {'/'.join(watched)} run in flight has ended; a burst of files gives one retrain "
                           "on the newest version. Reacts only to ingests, so it is on by default.")
    def retrain_on_new_data(context: dg.SensorEvaluationContext):
        table = _latest_version(context.instance, ingest_asset, version_field)
        if table is None:
            return dg.SkipReason(f"{ingest_asset} has no recorded real table version yet")
        trained = _latest_version(context.instance, real_asset, version_field)
        requested = int(context.cursor) if context.cursor else None
        if trained is not None and trained >= table:
            return dg.SkipReason(f"real table version {table} is already read by {real_asset}")
        if requested is not None and requested >= table:
            return dg.SkipReason(f"a retrain on real table version {table} was already requested")
        busy = context.instance.get_runs(filters=dg.RunsFilter(job_name=None, statuses=IN_FLIGHT), limit=50)
        busy = [r for r in busy if r.job_name in watched]
        if busy:
            return dg.SkipReason(f"real table version {table} waits: {busy[0].job_name} run {busy[0].run_id} is "
                                 f"{busy[0].status.value}; the next tick after it ends retrains on the newest version")
        context.update_cursor(str(table))
        return dg.RunRequest(run_key=f"real_table_v{table}", tags={TABLE_VERSION_TAG: str(table)})

    return retrain_on_new_data


# --- alerts -----------------------------------------------------------------------------------------------------

def alert_record(run: dg.DagsterRun, instance: dg.DagsterInstance, error: str | None) -> dict:
    """What went wrong in a failed run: its failed asset checks (gate or landing contract) and the error."""
    failed_checks = []
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if not evaluation.passed:
            failed_checks.append({"asset": evaluation.asset_key.to_user_string(), "check": evaluation.check_name,
                                  "description": evaluation.description})
    if any(c["check"] == "landing_contract" for c in failed_checks):
        kind = "landing_quarantined"
    elif failed_checks:
        kind = "gate_failed"
    else:
        kind = "run_failed"
    return {"time": datetime.now(timezone.utc).isoformat(), "kind": kind, "job": run.job_name, "run_id": run.run_id,
            "landed_file": run.tags.get("landed_file"), "failed_checks": failed_checks, "error": error}


def post_webhook(url: str, record: dict, timeout: float = 5.0) -> None:
    request = urllib.request.Request(url, data=json.dumps(record, default=str).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - operator-configured URL
        response.read()


def build_alert_sensor(webhook_url: str | None = None) -> dg.SensorDefinition:
    """A run-failure sensor writing one JSON line per failed run to the lake's alerts file (and an optional webhook).
    A gate refusal fails no run (assets/checks.py), so this fires on crashes (and quarantined files) only."""

    @dg.run_failure_sensor(name="alert_on_failure", default_status=dg.DefaultSensorStatus.RUNNING,
                           monitor_all_code_locations=False,
                           description="Records an alert (Dagster log + alerts.jsonl in the lake, optional webhook) "
                                       "when any run fails: a quarantined landed file or an error. A gate refusal "
                                       "fails no run: notify_on_refusal reports those.")
    def alert_on_failure(context: dg.RunFailureSensorContext, lake: LakeResource):
        error = context.failure_event.message if context.failure_event else None
        record = alert_record(context.dagster_run, context.instance, error)
        lake.append_alert(record)
        context.log.error(f"ALERT {record['kind']}: run {record['run_id']} of {record['job']}"
                          + (f" ({len(record['failed_checks'])} failed check(s))" if record["failed_checks"] else ""))
        url = webhook_url  # from Settings (OUROBOROS_ALERT_WEBHOOK) or landing.alert_webhook
        if url:
            try:
                post_webhook(url, record)
            except Exception as exc:  # an alert channel being down must not lose the alert already on disk
                context.log.warning(f"alert webhook {url} failed: {exc}")

    return alert_on_failure


def refusal_records(run: dg.DagsterRun, instance: dg.DagsterInstance) -> list[dict]:
    """The gate's refusals in a run: failed check evaluations marked `verdict: refused` (assets/checks.py)."""
    out = []
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        verdict = evaluation.metadata.get("verdict")
        if not evaluation.passed and getattr(verdict, "value", verdict) == "refused":
            out.append({"asset": evaluation.asset_key.to_user_string(), "check": evaluation.check_name,
                        "description": evaluation.description})
    return out


def build_refusal_sensor(webhook_url: str | None = None) -> dg.SensorDefinition:
    """A notification per run in which the gate refused a batch: an outcome, not a crash, so it is not
    alert_on_failure's; kind `gate_refused` in alerts.jsonl (and the webhook). Switched off with
    OUROBOROS_REFUSAL_ALERTS=off (the sensor is then not defined) or in the UI."""

    @dg.run_status_sensor(name="notify_on_refusal", run_status=dg.DagsterRunStatus.SUCCESS,
                          default_status=dg.DefaultSensorStatus.RUNNING, monitor_all_code_locations=False,
                          description="Records a notification (Dagster log + alerts.jsonl in the lake, optional "
                                      "webhook) when the gate refused a batch in a run that succeeded. Crashes go "
                                      "to alert_on_failure. Off: OUROBOROS_REFUSAL_ALERTS=off.")
    def notify_on_refusal(context: dg.RunStatusSensorContext, lake: LakeResource):
        refused = refusal_records(context.dagster_run, context.instance)
        if not refused:
            return dg.SkipReason(f"run {context.dagster_run.run_id}: no refusal")
        record = {"time": datetime.now(timezone.utc).isoformat(), "kind": "gate_refused",
                  "job": context.dagster_run.job_name, "run_id": context.dagster_run.run_id,
                  "refused": refused, "failed_checks": refused, "error": None}
        lake.append_alert(record)
        context.log.info(f"REFUSAL: run {record['run_id']} of {record['job']}: "
                         + "; ".join(f"{r['asset']} by {r['check']}" for r in refused))
        if webhook_url:
            try:
                post_webhook(webhook_url, record)
            except Exception as exc:  # the channel being down must not lose the record already on disk
                context.log.warning(f"alert webhook {webhook_url} failed: {exc}")
        return None

    return notify_on_refusal
