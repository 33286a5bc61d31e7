"""A saved generator as an MLflow pyfunc model: `predict(pd.DataFrame({"n": [1000], "seed": [0]}))` samples.

It lives in the core package (no Dagster), which the model carries with it as `code_paths`: the model
loads and samples in any environment that has the pinned third-party requirements, without this
repository. (The PyPI name `ouroboros` is an unrelated project, so it must never be a requirement.)

Models from code (MLflow 3): the logged model is a code file (`ouroboros/serving_code/*.py`, which calls
`mlflow.models.set_model`) plus the model's saved folder as an artifact, never a cloudpickle of a Python object.
The trust boundary: loading a model runs that code file and the core package copied beside it (code this project
wrote and logged), and reads the weights with `torch.load(weights_only=True)` and the rest from JSON, npz and
parquet: data, from which no code runs. A model store is trusted as far as the code in it is.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

import pandas as pd
from mlflow.pyfunc import PythonModel

# what `ouroboros.generators` imports, for every family; torch only for the PyTorch families
CORE_REQUIREMENTS = ("numpy", "scipy", "polars", "pandas", "pyarrow")
TORCH_FAMILIES = ("gan", "vae", "diffusion", "torch-model")  # torch-model: the downstream model


class GeneratorModel(PythonModel):
    """pyfunc wrapper around `ouroboros.generators.load`; one row of {n, seed} per call."""

    def load_context(self, context) -> None:
        from ouroboros.generators import load

        self._generator = load(context.artifacts["generator"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if model_input.empty:
            raise ValueError("generator model: pass one row with columns n (rows to sample) and seed")
        row = model_input.iloc[0]
        seed = int(row["seed"]) if "seed" in model_input.columns and pd.notna(row["seed"]) else 0
        return self._generator.sample(int(row["n"]), seed=seed).to_pandas()


def requirements(family: str) -> list[str]:
    """Pinned third-party requirements of a generator of `family` (the installed versions)."""
    names = [*CORE_REQUIREMENTS, *(("torch",) if family in TORCH_FAMILIES else ())]
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def package_copy(target: Path) -> Path:
    """Copy the core package (code only: no bundled data, no caches) to `target/ouroboros` for code_paths."""
    source = Path(__file__).resolve().parent
    dest = target / "ouroboros"
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "data", "*.pyc"))
    return dest


GENERATOR_CODE = Path(__file__).resolve().parent / "serving_code" / "generator_model.py"
DOWNSTREAM_CODE = Path(__file__).resolve().parent / "serving_code" / "downstream_model.py"


class DownstreamPyfunc(PythonModel):
    """pyfunc wrapper of a trained `DownstreamModel` saved as the artifact "model": feature columns in, the
    predicted target out."""

    def load_context(self, context) -> None:
        from ouroboros.downstream import DownstreamModel

        self.model = DownstreamModel.load(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        import polars as pl

        frame = pl.from_pandas(model_input)
        return pd.DataFrame({self.model.target: self.model.predict(frame)})
