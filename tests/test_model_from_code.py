"""MLflow models from code: a generator and a downstream model are logged as a code file plus their saved folder,
never as a cloudpickle, and load back from a real MLflow store to give exactly what the Python objects give."""

from __future__ import annotations

import warnings
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from ouroboros.downstream import DownstreamModel, train_downstream
from ouroboros.generators import create
from ouroboros.schema import infer_schema
from resources.mlflow_tracking import MlflowResource


@pytest.fixture
def tracking(tmp_path):
    return MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "art"))


def model_dir(uri: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(uri))


def no_pickles(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.suffix in (".pkl", ".pickle") or p.name == "python_model.pkl"]
    mlmodel = (folder / "MLmodel").read_text()
    # MLflow's loader for a model from code: it runs the logged code file, it unpickles nothing
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in mlmodel and "model_code_path" in mlmodel


@pytest.mark.parametrize("family", ["copula", "vae"])
def test_a_generator_logged_from_code_samples_what_it_sampled(tracking, tmp_path, small_demo, family):
    params = {"epochs": 2} if family == "vae" else {}
    gen = create(family, seed=3, **params).fit(small_demo.head(300))
    saved = gen.save(tmp_path / "gen")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # MLflow warns when it pickles a Python object
        with tracking.run("g"):
            uri = tracking.log_generator(saved, family, gen.sample(5, seed=0).to_pandas())
    no_pickles(model_dir(uri))
    out = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"n": [40], "seed": [9]}))
    expected = gen.sample(40, seed=9)
    pd.testing.assert_frame_equal(out, expected.to_pandas())  # the same rows, bit for bit


def test_a_downstream_model_logged_from_code_predicts_what_it_predicted(tracking, small_demo):
    schema = infer_schema(small_demo, target="outcome")
    model = train_downstream(small_demo, schema, "outcome", epochs=2, seed=1)
    rows = small_demo.drop("outcome").head(25)
    with tracking.run("d"):
        uri = tracking.log_downstream(model, rows.head(5))
    no_pickles(model_dir(uri))
    out = mlflow.pyfunc.load_model(uri).predict(rows.to_pandas())
    assert out["outcome"].tolist() == list(model.predict(rows))


def test_a_saved_downstream_model_loads_with_weights_only(tmp_path, small_demo):
    schema = infer_schema(small_demo, target="outcome")
    model = train_downstream(small_demo, schema, "outcome", epochs=1, seed=2)
    back = DownstreamModel.load(model.save(tmp_path / "m"))
    rows = small_demo.head(50)
    assert (back.predict_proba(rows) == model.predict_proba(rows)).all()
