"""Small seeded learners on the encoded space: the detection classifier (gradient-boosted trees, real vs
synthetic) and the linear utility models (train-synthetic-test-real against train-real-test-real)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn


@contextmanager
def single_thread() -> Iterator[None]:
    """Run a small model on one thread, then restore the caller's setting. These learners are a few thousand
    rows of a few dozen features: a second thread buys nothing, and when another process holds the other core
    the two OpenMP threads wait on each other (measured: 0.2 s on one thread, 15 s on two under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney U), ties averaged."""
    pos, neg = labels.sum(), len(labels) - labels.sum()
    if pos == 0 or neg == 0:
        return 0.5
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _fit_lbfgs(net: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, iters: int, l2: float = 1e-4) -> nn.Module:
    """Convex fits converge in a few dozen L-BFGS iterations, far fewer than first-order steps."""
    opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn(net(x), y) + l2 * sum((p ** 2).sum() for p in net.parameters())
        loss.backward()
        return loss

    opt.step(closure)
    return net.eval()


def linear_utility(x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, classes: int | None,
                   seed: int = 0, iters: int = 30, l2: float = 1e-4) -> dict[str, float]:
    """Multinomial logistic regression (classes given) or ridge-like linear regression, fitted on (x_fit, y_fit)
    and scored on the test rows: accuracy and log-loss, or RMSE and R2."""
    with single_thread():
        return _linear_utility(x_fit, y_fit, x_test, y_test, classes, seed, iters, l2)


def _linear_utility(x_fit, y_fit, x_test, y_test, classes: int | None, seed: int, iters: int,
                    l2: float = 1e-4) -> dict[str, float]:
    torch.manual_seed(seed)
    x = torch.as_tensor(x_fit, dtype=torch.float32)
    xt = torch.as_tensor(x_test, dtype=torch.float32)
    if classes:
        y = torch.as_tensor(np.array(y_fit, dtype=np.int64))
        net = _fit_lbfgs(nn.Linear(x.shape[1], classes), x, y, nn.CrossEntropyLoss(), iters, l2)
        with torch.no_grad():
            p = torch.softmax(net(xt), dim=1).numpy().clip(1e-7, 1.0)
        return {"accuracy": float((p.argmax(1) == y_test).mean()),
                "log_loss": float(-np.log(p[np.arange(len(y_test)), y_test]).mean())}
    mean, std = float(y_fit.mean()), float(y_fit.std()) or 1.0
    y = torch.as_tensor((y_fit - mean) / std, dtype=torch.float32)[:, None]
    net = _fit_lbfgs(nn.Linear(x.shape[1], 1), x, y, nn.MSELoss(), iters, l2)
    with torch.no_grad():
        pred = net(xt)[:, 0].numpy() * std + mean
    rmse = float(np.sqrt(np.mean((pred - y_test) ** 2)))
    var = float(np.var(y_test)) or 1.0
    return {"rmse": rmse, "r2": float(1.0 - rmse ** 2 / var)}


def boosted_detection_auc(real_fit: np.ndarray, fake_fit: np.ndarray, real_test: np.ndarray, fake_test: np.ndarray,
                          seed: int = 0) -> float:
    """AUC of gradient-boosted trees (scikit-learn's histogram GBDT) telling synthetic from real, fitted on one
    part and scored on rows they never saw. Far stronger than a linear model on tabular data; one thread for
    the same reason as `single_thread`."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    x = np.concatenate([real_fit, fake_fit])
    y = np.r_[np.zeros(len(real_fit)), np.ones(len(fake_fit))]
    model = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.15, max_leaf_nodes=15,
                                           min_samples_leaf=min(20, max(5, len(x) // 20)), l2_regularization=1.0,
                                           early_stopping=False, random_state=seed)
    with threadpool_limits(limits=1):
        model.fit(x, y)
        s = model.predict_proba(np.concatenate([real_test, fake_test]))[:, 1]
    labels = np.r_[np.zeros(len(real_test)), np.ones(len(fake_test))].astype(int)
    return auc(s, labels)
