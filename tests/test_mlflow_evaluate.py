"""MLflow's evaluator beside our scores: it runs on a real sqlite store and never fails a training step on a
holdout that it cannot evaluate."""

from __future__ import annotations

import mlflow
import numpy as np
import polars as pl

from ouroboros.downstream import train_downstream
from ouroboros.schema import infer_schema
from resources.mlflow_tracking import evaluate_downstream


def _table(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pl.DataFrame({"x": x, "label": np.where(x + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")})


def test_evaluation_of_a_one_label_holdout_is_skipped_with_the_reason(tmp_path):
    train = _table(200, 0)
    model = train_downstream(train, infer_schema(train, target="label"), "label", epochs=2, seed=0)
    one_label = _table(100, 1).filter(pl.col("label") == "yes")
    two_labels = _table(100, 2)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        mlflow.set_experiment("evaluate")
        with mlflow.start_run() as run:
            assert evaluate_downstream(model, one_label, "eval.one.", "runs:/x/model") == {}
            metrics = evaluate_downstream(model, two_labels, "eval.two.", "runs:/x/model")
        tags = mlflow.get_run(run.info.run_id).data.tags
    finally:
        mlflow.set_tracking_uri(None)
    assert "1 label(s) of 'label'" in tags["eval.one.skipped"]
    assert "eval.two.skipped" not in tags
    predicted = model.predict(two_labels)
    assert metrics["eval.two.accuracy_score"] == np.mean(predicted == two_labels["label"].to_numpy())
