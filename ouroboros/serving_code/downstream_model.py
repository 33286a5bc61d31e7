"""MLflow model from code: a saved downstream model (artifact "model") as a pyfunc (ouroboros.serving)."""

from mlflow.models import set_model

from ouroboros.serving import DownstreamPyfunc

set_model(DownstreamPyfunc())
