"""MLflow tracking as a thin resource: explicit store, one experiment, runs that are always closed."""

from __future__ import annotations

import os
import socket
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
import polars as pl
import polars.selectors as cs
import requests
from mlflow import MlflowClient
from mlflow.models import infer_signature

from ouroboros.serving import DOWNSTREAM_CODE, GENERATOR_CODE, package_copy, requirements
from pipelines.settings import artifact_uri
from resources.file_lock import exclusive_lock


def quiet_signature(inputs: pd.DataFrame, outputs: pd.DataFrame):
    """infer_signature without its hint that integer columns cannot hold missing values: the columns come from
    the real table's schema, and a null in an integer column is sampled as a null there too."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
        return infer_signature(inputs, outputs)


# Error codes a racing writer produces: the store's unique key on an insert another process made first
# (BAD_REQUEST) and sqlite's write lock (TEMPORARILY_UNAVAILABLE).
_RACE_CODES = {"BAD_REQUEST", "TEMPORARILY_UNAVAILABLE"}


def log_dataset_input(dataset, context: str, tags: dict[str, str], attempts: int = 4) -> None:
    """mlflow.log_input for the active run, safe when several step processes log the same dataset at once.

    The stores (sqlite and the server's SQL store alike) look a dataset up by (experiment, name, digest) and
    insert it when missing, in one transaction: two studies' generation 0 logging the same real_train at the
    same moment both miss it, and the later insert fails on the unique key. Logging is idempotent (an existing
    dataset and an existing run input are reused), so the retry finds the winner's row and only adds this
    run's input."""
    for attempt in range(attempts):
        try:
            mlflow.log_input(dataset, context=context, tags=tags)
            return
        except mlflow.exceptions.MlflowException as error:
            if error.error_code not in _RACE_CODES or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def evaluate_downstream(model, holdout: pl.DataFrame, prefix: str, model_uri: str) -> dict[str, float]:
    """MLflow's default evaluator on `model`'s predictions of the real holdout rows, in the active run: its
    standard metrics (accuracy, precision, recall, F1 and the confusion counts; or MAE, RMSE, R2) under
    `prefix`, its confusion-matrix plot as an artifact, all linked to the LoggedModel at `model_uri`. Our own
    `ouroboros.downstream.score` stays the headline (ROC AUC and log-loss need probabilities, which a static
    evaluation does not take), so the two sides of TSTR/TRTR are also comparable in MLflow's own terms."""
    rows = holdout.filter(pl.col(model.target).is_not_null())
    truth = rows[model.target]
    if model.task == "classification":  # the model predicts the labels' text: compare text with text
        truth = truth.cast(pl.String) if truth.dtype != pl.Boolean else truth.replace_strict(
            {True: "true", False: "false"}, return_dtype=pl.String)
    if model.task == "classification" and truth.n_unique() < 2:
        # MLflow's classifier evaluator needs two labels; a holdout of one class (a rare target on a small table)
        # has no precision or recall to report. Say so on the run rather than fail the training step.
        mlflow.set_tag(f"{prefix}skipped", f"real_holdout has {truth.n_unique()} label(s) of {model.target!r}; "
                                           "MLflow's classifier evaluation needs at least two")
        return {}
    frame = pd.DataFrame({"target": truth.to_numpy(), "prediction": model.predict(rows)})
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its hint about the guessed model type: the type is given
        result = mlflow.models.evaluate(
            data=frame, predictions="prediction", targets="target", model_id=model_id,
            model_type="classifier" if model.task == "classification" else "regressor",
            evaluator_config={"log_model_explainability": False, "metric_prefix": prefix})
    return {k: float(v) for k, v in result.metrics.items()}


def unreachable(error: BaseException) -> str | None:
    """Why the tracking server could not be reached, when that is what `error` (or an error it came from) says.

    MLflow's REST client re-raises a refused or timed-out connection as an MlflowException whose text names the
    URL ("API request to http://... failed with exception ... Max retries exceeded"), chaining the requests
    error as its context; anything else (a bad parameter, a permission) is not an outage."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return str(error)
        text = str(error)
        if isinstance(error, mlflow.exceptions.MlflowException) and "API request to" in text and any(
                m in text for m in ("Max retries exceeded", "Connection refused", "timeout exception")):
            return text
        error = error.__cause__ or error.__context__
    return None


PROCESS_TAG = "ouroboros.process"  # host:pid:start of the process that opened a run
ORPHAN_TAG = "ouroboros.orphaned"  # why a RUNNING run was marked KILLED


def _start_time(pid: int) -> str | None:
    """The process's start (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it names one process
    even after the pid is reused. None when no such process runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:  # no /proc (not Linux): whether the pid exists is all we can know
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]


def process_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def orphaned(tag: str | None) -> str | None:
    """Why a RUNNING run whose opener is `tag` can never be closed by it, or None when it may still be running:
    only a process of this host is known to be gone (a pod elsewhere, or a run without the tag, is left alone)."""
    if not tag or tag.count(":") < 2:
        return None
    host, pid, start = tag.rsplit(":", 2)
    if host != socket.gethostname() or not pid.isdigit():
        return None
    now = _start_time(int(pid))
    if now is None:
        return f"process {pid} on {host} that opened it is gone"
    if start not in ("?", "None") and now not in ("?", start):
        return f"process {pid} on {host} that opened it is gone (the pid now belongs to another process)"
    return None


class MlflowUnreachable(RuntimeError):
    """The tracking server did not answer (within MLFLOW_HTTP_REQUEST_MAX_RETRIES / _TIMEOUT)."""


class MlflowResource(dg.ConfigurableResource):
    """Where runs go: `tracking_uri` (a sqlite file by default, `http://...` for a tracking server) and
    `artifact_root`, a folder or a URI (`mlflow-artifacts:/...` proxied by the server, `s3://...`)."""

    tracking_uri: str
    artifact_root: str
    experiment: str = "ouroboros"
    ui_url: str = "http://127.0.0.1:5000"

    def _connect(self) -> None:
        """Point the module-level API at the store; a sqlite store is opened under a file lock.

        Opening a sqlite store that has no tables yet creates them, and two step processes doing that at once
        (OUROBOROS_EXECUTOR=multiprocess on the embedded default) fail with "table ... already exists": the
        lock lets the first create them and the rest find them. A server (http://...) creates its own."""
        mlflow.set_tracking_uri(self.tracking_uri)
        # sqlite:///relative.db, sqlite:////absolute.db, either with ?driver options; sqlite:// is in memory
        path = self.tracking_uri.removeprefix("sqlite:///").split("?")[0] if self.tracking_uri.startswith(
            "sqlite:///") else None
        if not path:
            return
        with exclusive_lock(Path(f"{path}.lock")):
            client = MlflowClient(tracking_uri=self.tracking_uri)
            client.search_experiments(max_results=1)  # the tracking tables
            client.search_registered_models(max_results=1)  # the registry's

    def _experiment_id(self) -> str:
        self._connect()
        found = mlflow.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        uri = artifact_uri(self.artifact_root)
        if uri.startswith("file:"):
            Path(uri.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        try:
            return mlflow.create_experiment(self.experiment, artifact_location=uri)
        except mlflow.exceptions.MlflowException:
            # another step process created it between the lookup and here (multiprocess executor)
            found = mlflow.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return found.experiment_id

    def client(self) -> MlflowClient:
        """A client on this store; also points the module-level API (mlflow.register_model, ...) at it."""
        self._connect()
        return MlflowClient(tracking_uri=self.tracking_uri)

    def _unreachable_error(self, name: str, why: str) -> MlflowUnreachable:
        return MlflowUnreachable(
            f"MLflow tracking server {self.tracking_uri} did not answer during run {name!r} ({why[:300]}); the step "
            f"stopped. Start the server (on the local stack: bin/stack up) and rerun: the lake keeps the last "
            f"complete output of this step. Client retries are bounded by MLFLOW_HTTP_REQUEST_MAX_RETRIES and "
            f"MLFLOW_HTTP_REQUEST_TIMEOUT.")

    @contextmanager
    def run(self, name: str, tags: dict[str, str] | None = None):
        """Start a run in the pipeline's experiment and end it however the block exits.

        A tracking server that stops answering fails the step with MlflowUnreachable naming the URI; the run is
        then left RUNNING on the server (it cannot be told otherwise), and mlflow's active-run stack is cleared
        either way (end_run pops before it calls the server)."""
        try:
            experiment_id = self._experiment_id()
            self.close_orphans(experiment_id, name)
            run = mlflow.start_run(experiment_id=experiment_id, run_name=name,
                                   tags={**(tags or {}), PROCESS_TAG: process_tag()})
        except mlflow.exceptions.MlflowException as error:
            if (why := unreachable(error)) is not None:
                raise self._unreachable_error(name, why) from error
            raise
        try:
            yield run
        except BaseException as error:
            why = unreachable(error)
            try:
                mlflow.end_run(status="FAILED")
            except mlflow.exceptions.MlflowException as closing:
                if why is None and unreachable(closing) is None:
                    raise
            if why is not None:
                raise self._unreachable_error(name, why) from error
            raise
        try:
            mlflow.end_run(status="FINISHED")
        except mlflow.exceptions.MlflowException as error:
            if (why := unreachable(error)) is not None:
                raise self._unreachable_error(name, why) from error
            raise

    def close_orphans(self, experiment_id: str, by: str) -> list[str]:
        """Mark KILLED the experiment's RUNNING runs whose process died without closing them (a step killed with
        SIGKILL, a crashed worker), with a tag saying why, and log each; returns their run ids.

        MLflow has no lease on a run: without this, a killed step's run stays RUNNING in the UI forever. Only a
        run whose opener was a process of this host that no longer exists is touched; runs of live processes
        (the multiprocess executor's other steps) and of other hosts are left as they are."""
        client = MlflowClient(tracking_uri=self.tracking_uri)
        closed = []
        for found in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'",
                                        max_results=500):
            why = orphaned(found.data.tags.get(PROCESS_TAG))
            if why is None:
                continue
            note = f"{why}; marked KILLED when run {by!r} started (process {process_tag()})"
            client.set_tag(found.info.run_id, ORPHAN_TAG, note)
            client.set_terminated(found.info.run_id, status="KILLED")
            dg.get_dagster_logger().warning(
                f"MLflow run {found.info.run_id} ({found.info.run_name}) was left RUNNING: {note}")
            closed.append(found.info.run_id)
        return closed

    @contextmanager
    def resume(self, run_id: str):
        """Re-open an earlier run (e.g. the generation's run, to add its gate scores)."""
        self._connect()
        with mlflow.start_run(run_id=run_id) as run:
            yield run

    def run_url(self, run) -> str:
        return f"{self.ui_url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"

    def log_generator(self, generator_dir: Path, family: str, example: pd.DataFrame,
                      name: str = "generator") -> str:
        """Log a saved generator as a pyfunc model in the active run; returns its model URI.

        The model carries the core package as code_paths and pins its third-party requirements, so it loads
        and samples outside this repository; its signature is {n, seed} -> the table's columns (`example`
        is a few sampled rows)."""
        input_example = pd.DataFrame({"n": [5], "seed": [0]})
        signature = quiet_signature(input_example, example)
        with tempfile.TemporaryDirectory() as tmp:
            code = package_copy(Path(tmp))
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(GENERATOR_CODE),  # a model from code: no pickled object (ouroboros.serving)
                artifacts={"generator": str(generator_dir)},
                code_paths=[str(code)],
                pip_requirements=requirements(family),
                signature=signature,
                input_example=input_example,
            )
        return info.model_uri

    def log_downstream(self, model, example, name: str = "model") -> str:
        """Log a trained downstream model as a pyfunc model (signature: feature columns -> target) in the active
        run; `example` is a few feature rows (polars). Returns its model URI."""
        # integer features are declared as doubles: a null in one arrives from pandas as a float
        example = example.with_columns(pl.col(pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16,
                                              pl.UInt32, pl.UInt64).cast(pl.Float64))
        predicted = pd.DataFrame({model.target: model.predict(example)})
        # MLflow's schema knows only naive datetimes: a zoned column is described (and exemplified) in UTC
        frame = example.with_columns(cs.datetime(time_zone="*").dt.convert_time_zone("UTC")
                                     .dt.replace_time_zone(None)).to_pandas()
        signature = quiet_signature(frame, predicted)
        with tempfile.TemporaryDirectory() as tmp:
            code = package_copy(Path(tmp))
            saved = model.save(Path(tmp) / "model")  # weights and JSON: the model's artifact, loaded from code
            info = mlflow.pyfunc.log_model(
                name=name, python_model=str(DOWNSTREAM_CODE), artifacts={"model": str(saved)},
                code_paths=[str(code)], pip_requirements=requirements("torch-model"), signature=signature,
                input_example=frame,
            )
        return info.model_uri
