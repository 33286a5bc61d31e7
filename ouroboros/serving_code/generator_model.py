"""MLflow model from code: a saved generator (artifact "generator") as a pyfunc (ouroboros.serving)."""

from mlflow.models import set_model

from ouroboros.serving import GeneratorModel

set_model(GeneratorModel())
