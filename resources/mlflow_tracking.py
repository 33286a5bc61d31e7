"""MLflow tracking as a thin resource: explicit store, one experiment, runs that are always closed."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class GeneratorModel(PythonModel):
    """pyfunc wrapper: `predict(pd.DataFrame({"n": [1000], "seed": [0]}))` samples the logged generator."""

    def load_context(self, context) -> None:
        from ouroboros.generators import load

        self._generator = load(context.artifacts["generator"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        row = model_input.iloc[0]
        return self._generator.sample(int(row["n"]), seed=int(row.get("seed", 0))).to_pandas()


class MlflowResource(dg.ConfigurableResource):
    """Where runs go: `tracking_uri` (sqlite file by default) and `artifact_root` (a local folder by default)."""

    tracking_uri: str
    artifact_root: str
    experiment: str = "ouroboros"
    ui_url: str = "http://127.0.0.1:5000"

    def _experiment_id(self) -> str:
        mlflow.set_tracking_uri(self.tracking_uri)
        found = mlflow.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
        return mlflow.create_experiment(self.experiment, artifact_location=Path(self.artifact_root).resolve().as_uri())

    @contextmanager
    def run(self, name: str, tags: dict[str, str] | None = None):
        """Start a run in the pipeline's experiment and end it however the block exits."""
        experiment_id = self._experiment_id()
        run = mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags or {})
        status = "FAILED"
        try:
            yield run
            status = "FINISHED"
        finally:
            mlflow.end_run(status=status)

    @contextmanager
    def resume(self, run_id: str):
        """Re-open an earlier run (e.g. the generation's run, to add its gate scores)."""
        mlflow.set_tracking_uri(self.tracking_uri)
        with mlflow.start_run(run_id=run_id) as run:
            yield run

    def run_url(self, run) -> str:
        return f"{self.ui_url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"

    def log_generator(self, generator_dir: Path, name: str = "generator") -> str:
        """Log a saved generator as a pyfunc model in the active run; returns its model URI."""
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=GeneratorModel(),
            artifacts={"generator": str(generator_dir)},
            pip_requirements=["ouroboros"],  # the project itself; avoids slow requirement inference
        )
        return info.model_uri
