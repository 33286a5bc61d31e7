"""The downstream model: a PyTorch MLP trained on (approved synthetic) data and scored on real holdout rows.

Its score beside the same model trained on real_train is the utility test the mission asks for:
train-on-synthetic, test-on-real (TSTR) against train-on-real, test-on-real (TRTR).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn

from ouroboros.quality.learners import auc
from ouroboros.schema import ColumnKind, ColumnRole, TableSchema

MAX_ONE_HOT = 50  # above this, the most frequent levels get a column each and the rest share one


@dataclass
class FeatureEncoder:
    """Turns a frame into a float matrix: standardised numbers (+ null flags) and one-hot categories."""

    numeric: dict[str, tuple[float, float]]  # column -> (mean, std) of the training rows
    categorical: dict[str, list[str]]  # column -> levels with their own column

    @classmethod
    def fit(cls, df: pl.DataFrame, schema: TableSchema, exclude: str) -> FeatureEncoder:
        numeric, categorical = {}, {}
        for spec in schema.columns:
            if spec.name == exclude or spec.role != ColumnRole.VALUE:
                continue  # identifiers and free text predict nothing that generalises
            s = df[spec.name]
            if spec.is_numeric:
                x = s.to_physical().cast(pl.Float64).drop_nulls().drop_nans()
                mean = float(x.mean()) if len(x) else 0.0
                std = float(x.std()) if len(x) > 1 and x.std() else 1.0
                numeric[spec.name] = (mean, std)
            else:
                text = s.cast(pl.String)
                counts = text.drop_nulls().alias("level").value_counts(sort=True, name="freq")
                levels = counts.head(MAX_ONE_HOT)["level"].to_list()
                categorical[spec.name] = sorted(levels)
        return cls(numeric, categorical)

    def transform(self, df: pl.DataFrame) -> np.ndarray:
        blocks = []
        for col, (mean, std) in self.numeric.items():
            x = df[col].to_physical().cast(pl.Float64).to_numpy()
            missing = np.isnan(x)
            blocks.append(np.where(missing, 0.0, (x - mean) / std)[:, None])
            blocks.append(missing.astype(np.float64)[:, None])
        for col, levels in self.categorical.items():
            text = df[col].cast(pl.String).to_numpy().astype(object)
            onehot = np.stack([text == level for level in levels] + [~np.isin(text, levels)], axis=1)
            blocks.append(onehot.astype(np.float64))
        if not blocks:
            return np.zeros((df.height, 1))
        return np.concatenate(blocks, axis=1)


@dataclass
class DownstreamModel:
    task: str  # "classification" or "regression"
    target: str
    encoder: FeatureEncoder
    classes: list[str]  # classification: class labels in output order
    target_scale: tuple[float, float]  # regression: (mean, std) of the target
    net: nn.Module

    def predict_proba(self, df: pl.DataFrame) -> np.ndarray:
        with torch.no_grad():
            out = self.net(torch.as_tensor(self.encoder.transform(df), dtype=torch.float32))
        return torch.softmax(out, dim=1).numpy()

    def predict(self, df: pl.DataFrame) -> np.ndarray:
        if self.task == "classification":
            return np.asarray(self.classes, dtype=object)[self.predict_proba(df).argmax(axis=1)]
        with torch.no_grad():
            out = self.net(torch.as_tensor(self.encoder.transform(df), dtype=torch.float32)).numpy()[:, 0]
        return out * self.target_scale[1] + self.target_scale[0]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), path / "net.pt")
        meta = {"task": self.task, "target": self.target, "classes": self.classes,
                "target_scale": self.target_scale, "numeric": self.encoder.numeric,
                "categorical": self.encoder.categorical, "in": _in_features(self.net), "out": _out_features(self.net),
                "hidden": self.net[0].out_features}
        (path / "model.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> DownstreamModel:
        """Read a model written by `save`: the weights with `torch.load(weights_only=True)` (tensors only, no
        code runs) and the encoder and labels from JSON."""
        path = Path(path)
        meta = json.loads((path / "model.json").read_text())
        net = mlp(meta["in"], meta["hidden"], meta["out"])
        net.load_state_dict(torch.load(path / "net.pt", map_location="cpu", weights_only=True))
        net.eval()
        encoder = FeatureEncoder({k: tuple(v) for k, v in meta["numeric"].items()}, meta["categorical"])
        return cls(meta["task"], meta["target"], encoder, meta["classes"], tuple(meta["target_scale"]), net)


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """The downstream network: two hidden ReLU layers."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, outputs))


def _in_features(net: nn.Sequential) -> int:
    return net[0].in_features


def _out_features(net: nn.Sequential) -> int:
    return net[-1].out_features


def task_for(schema: TableSchema, target: str) -> str:
    kind = schema.column(target).kind
    return "classification" if kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN) else "regression"


def train_downstream(
    train: pl.DataFrame,
    schema: TableSchema,
    target: str,
    *,
    epochs: int = 10,
    hidden: int = 64,
    batch_size: int = 512,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> DownstreamModel:
    """Fit an MLP on `train` predicting `target`; classes and categories come from the real schema."""
    if target not in train.columns:
        raise ValueError(f"target column {target!r} is not in the training set; columns are {train.columns}")
    train = train.filter(pl.col(target).is_not_null())
    if train.height == 0:
        raise ValueError(f"the training set has no rows with a value in target column {target!r}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    task = task_for(schema, target)
    encoder = FeatureEncoder.fit(train, schema, exclude=target)
    x = torch.as_tensor(encoder.transform(train), dtype=torch.float32)
    classes: list[str] = []
    scale = (0.0, 1.0)
    if task == "classification":
        spec = schema.column(target)
        classes = list(spec.categories)
        lookup = {c: i for i, c in enumerate(classes)}
        text = _target_text(train[target])
        y = torch.as_tensor([lookup[v] for v in text], dtype=torch.long)
        out_dim, loss_fn = len(classes), nn.CrossEntropyLoss()
    else:
        t = train[target].to_physical().cast(pl.Float64).to_numpy()
        scale = (float(t.mean()), float(t.std()) or 1.0)
        y = torch.as_tensor((t - scale[0]) / scale[1], dtype=torch.float32)[:, None]
        out_dim, loss_fn = 1, nn.MSELoss()
    net = mlp(x.shape[1], hidden, out_dim)
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    for _ in range(epochs):
        order = torch.as_tensor(rng.permutation(len(x)))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
    net.eval()
    return DownstreamModel(task, target, encoder, classes, scale, net)


def _target_text(s: pl.Series) -> list[str]:
    if s.dtype == pl.Boolean:
        return ["true" if v else "false" for v in s.to_list()]
    return s.cast(pl.String).to_list()


def score(model: DownstreamModel, holdout: pl.DataFrame) -> dict[str, float]:
    """Accuracy, log-loss and ROC AUC (classification) or RMSE and R2 (regression) on real holdout rows."""
    holdout = holdout.filter(pl.col(model.target).is_not_null())
    if model.task == "classification":
        proba = np.clip(model.predict_proba(holdout), 1e-7, 1.0)
        lookup = {c: i for i, c in enumerate(model.classes)}
        y = np.array([lookup.get(v, -1) for v in _target_text(holdout[model.target])])
        known = y >= 0
        proba, y = proba[known], y[known]
        metrics = {
            "accuracy": float((proba.argmax(axis=1) == y).mean()),
            "log_loss": float(-np.log(proba[np.arange(len(y)), y]).mean()),
        }
        present = np.unique(y)
        aucs = [auc(proba[:, k], (y == k).astype(int)) for k in present] if len(present) > 1 else []
        if aucs:
            metrics["roc_auc"] = float(aucs[1] if len(model.classes) == 2 and len(aucs) == 2 else np.mean(aucs))
        return metrics
    pred = model.predict(holdout)
    truth = holdout[model.target].to_physical().cast(pl.Float64).to_numpy()
    rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
    var = float(np.var(truth))
    return {"rmse": rmse, "r2": float(1 - rmse**2 / var) if var > 0 else 0.0}


def primary_metric(task: str) -> tuple[str, bool]:
    """The headline metric of a task and whether higher is better."""
    return ("roc_auc", True) if task == "classification" else ("r2", True)
