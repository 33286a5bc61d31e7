"""Dagster resources for the real systems: the lake, its IO manager, MLflow and Great Expectations."""

from resources.great_expectations import GreatExpectationsResource
from resources.io_manager import LakeIOManager
from resources.lake import LakeResource
from resources.mlflow_tracking import MlflowResource

__all__ = ["GreatExpectationsResource", "LakeIOManager", "LakeResource", "MlflowResource"]
