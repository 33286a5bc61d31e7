"""Logged MLflow models load and predict outside this repository: the generator samples {n, seed} and the
downstream model predicts, in a fresh Python process started in another folder that cannot import the
repository's packages (the editable install is switched off), so the code the model carries is what runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pandas as pd
import polars as pl
import pytest

from ouroboros.downstream import train_downstream
from ouroboros.generators import create
from ouroboros.schema import infer_schema
from resources import MlflowResource

REPO = Path(__file__).resolve().parents[1]

# runs in the child: drop every route to the repository before anything imports `ouroboros`
LOADER = textwrap.dedent("""
    import json, sys
    sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
    sys.path[:] = [p for p in sys.path if p and (not p.startswith({repo!r}) or "/.venv" in p)]
    import mlflow, pandas as pd
    mlflow.set_tracking_uri({tracking!r})
    gen = mlflow.pyfunc.load_model({generator!r})
    sample = gen.predict(pd.DataFrame({{"n": [40], "seed": [3]}}))
    again = gen.predict(pd.DataFrame({{"n": [40], "seed": [3]}}))
    model = mlflow.pyfunc.load_model({downstream!r})
    predicted = model.predict(pd.read_parquet({features!r}))
    import ouroboros
    print(json.dumps({{"rows": len(sample), "columns": list(sample.columns), "same": bool(sample.equals(again)),
                      "predicted": len(predicted), "prediction_columns": list(predicted.columns),
                      "ouroboros_from": ouroboros.__file__, "dagster_loaded": "dagster" in sys.modules}}))
""")


@pytest.fixture()
def logged(tmp_path: Path, small_demo: pl.DataFrame) -> dict:
    store = tmp_path / "store"
    resource = MlflowResource(tracking_uri=f"sqlite:///{store / 'mlflow.db'}", artifact_root=str(store / "artifacts"))
    generator = create("copula", seed=1).fit(small_demo)
    saved = generator.save(tmp_path / "generator")
    schema = infer_schema(small_demo, target="outcome")
    downstream = train_downstream(small_demo, schema, "outcome", epochs=2)
    with resource.run("portable"):
        generator_uri = resource.log_generator(saved, "copula", generator.sample(5, seed=0).to_pandas())
        downstream_uri = resource.log_downstream(downstream, small_demo.drop("outcome").head(5))
    features = tmp_path / "features.parquet"
    small_demo.drop("outcome").head(30).write_parquet(features)
    return {"tracking": resource.tracking_uri, "generator": generator_uri, "downstream": downstream_uri,
            "features": str(features), "columns": small_demo.columns}


def test_models_load_and_predict_from_another_directory(tmp_path: Path, logged: dict):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = LOADER.format(repo=str(REPO), tracking=logged["tracking"], generator=logged["generator"],
                           downstream=logged["downstream"], features=logged["features"])
    done = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(elsewhere)})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["rows"] == 40 and out["columns"] == logged["columns"] and out["same"]
    assert out["predicted"] == 30 and out["prediction_columns"] == ["outcome"]
    # the package came from the model's own code folder, and the model never needed Dagster
    assert not out["ouroboros_from"].startswith(str(REPO)), out["ouroboros_from"]
    assert "code" in Path(out["ouroboros_from"]).parts and not out["dagster_loaded"]


def test_logged_generator_declares_its_interface_and_real_requirements(logged: dict):
    info = mlflow.models.get_model_info(logged["generator"])
    assert [c.name for c in info.signature.inputs.inputs] == ["n", "seed"]
    assert [c.name for c in info.signature.outputs.inputs] == logged["columns"]
    requirements = Path(mlflow.pyfunc.get_model_dependencies(logged["generator"])).read_text().split()
    names = {r.split("==")[0].lower() for r in requirements}
    # "ouroboros" on the package registry is an unrelated project: never a requirement
    assert "ouroboros" not in names and {"polars", "numpy", "scipy", "pandas", "pyarrow"} <= names
    example = pd.DataFrame(mlflow.models.Model.load(logged["generator"]).load_input_example(
        mlflow.artifacts.download_artifacts(logged["generator"])))
    assert list(example.columns) == ["n", "seed"]
