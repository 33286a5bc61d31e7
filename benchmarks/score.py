"""Score synthetic tables against one real train/holdout split, the same way for every model.

    python score.py TRAIN.parquet HOLDOUT.parquet METADATA.json TARGET SYN1.parquet [SYN2.parquet ...]
    python score.py --no-quality TRAIN.parquet HOLDOUT.parquet auto TARGET SYN1.parquet ...

The first form runs in the SDV venv (SDMetrics); `--no-quality` needs only XGBoost and scikit-learn (the tables
venv, benchmarks/requirements-tables.txt) and skips SDMetrics' scores; METADATA `auto` infers each column's
sdtype from its dtype (string, boolean and category columns are categorical).

Prints one JSON line {synthetic path: scores}, plus the key "__real__" with TRTR. Scores:
- quality, column_shapes, column_pair_trends: SDMetrics' QualityReport of the synthetic table against
  the real training table.
- detection_auc: an XGBoost classifier telling real holdout rows from as many synthetic rows, 5-fold
  stratified cross-validated ROC AUC (0.5: indistinguishable), identical rows kept in one fold.
- dcr_share: share of synthetic rows nearer to a real training row than to any real holdout row, the
  training side subsampled to the holdout's size (0.5: no closer to the training rows than fresh rows).
- tstr: XGBoost trained on the synthetic rows (as many as the training table), scored on the real holdout:
  ROC AUC for a class target (binary; one-vs-rest macro average for more classes), R2 for a number (a numeric
  target with more than 10 distinct values); trtr (in "__real__"): the same trained on the real training rows.
- holdout_quality (in "__real__"): the Quality Report of the real holdout rows against the training rows,
  what fresh real data of the holdout's size scores.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.neighbors import NearestNeighbors
from xgboost import XGBClassifier, XGBRegressor

SEED = 0
THREADS = 2


def _features(frames: list[pd.DataFrame], metadata: dict, drop: str | None = None) -> list[pd.DataFrame]:
    """Numbers as floats, categoricals as one shared pandas category dtype (XGBoost's native categoricals)."""
    out = [f.copy() for f in frames]
    for name, spec in metadata["columns"].items():
        if name == drop:
            for f in out:
                f.drop(columns=[name], inplace=True)
            continue
        if spec["sdtype"] in ("categorical", "boolean"):
            values = pd.concat([f[name].astype("string") for f in out]).dropna().unique()
            dtype = pd.CategoricalDtype(sorted(values))
            for f in out:
                f[name] = f[name].astype("string").astype(dtype)
        elif spec["sdtype"] == "datetime":
            for f in out:
                f[name] = pd.to_datetime(f[name]).astype("int64").astype(float)
        else:
            for f in out:
                f[name] = pd.to_numeric(f[name], errors="coerce").astype(float)
    return out


def _model(kind=XGBClassifier):
    return kind(n_estimators=200, max_depth=6, learning_rate=0.1, tree_method="hist",
                enable_categorical=True, max_cat_to_onehot=1, n_jobs=THREADS, random_state=SEED)


def infer_metadata(df: pd.DataFrame) -> dict:
    """SDV-style metadata from dtypes: strings, booleans and categories are categorical, datetimes datetime."""
    def sdtype(s: pd.Series) -> str:
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s) and \
                not pd.api.types.is_datetime64_any_dtype(s):
            return "categorical"
        return "datetime" if pd.api.types.is_datetime64_any_dtype(s) else "numerical"
    return {"columns": {c: {"sdtype": sdtype(df[c])} for c in df.columns}}


def is_regression(train: pd.DataFrame, target: str, metadata: dict) -> bool:
    """A number with more than 10 distinct values is a regression target; a 0/1 or 1..5 code is a class."""
    return metadata["columns"][target]["sdtype"] == "numerical" and train[target].nunique() > 10


def detection_auc(holdout: pd.DataFrame, syn: pd.DataFrame, metadata: dict) -> float:
    m = min(len(holdout), len(syn))
    real, fake = holdout.sample(m, random_state=SEED), syn.sample(m, random_state=SEED)
    x_real, x_fake = _features([real, fake], metadata)
    x = pd.concat([x_real, x_fake], ignore_index=True)
    y = np.r_[np.zeros(m), np.ones(m)]
    # identical rows share a fold: with StratifiedKFold a row repeated in both classes (common in discrete
    # tables) is seen with one label in the fit folds and tested with the other, which drives the AUC far below
    # 0.5 (0.11 on storms) without any sign of quality
    groups = pd.util.hash_pandas_object(x, index=False).to_numpy()
    scores = []
    for fit, test in StratifiedGroupKFold(5, shuffle=True, random_state=SEED).split(x, y, groups):
        clf = _model().fit(x.iloc[fit], y[fit])
        scores.append(roc_auc_score(y[test], clf.predict_proba(x.iloc[test])[:, 1]))
    return float(np.mean(scores))


def _distance_matrix(frames: list[pd.DataFrame], train: pd.DataFrame, metadata: dict) -> list[np.ndarray]:
    """Numbers as their empirical CDF in the training rows (null: -1); categoricals one-hot over the 50 most
    common training levels plus "other", scaled so one mismatch is distance 1."""
    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    for name, spec in metadata["columns"].items():
        if spec["sdtype"] in ("categorical", "boolean"):
            top = train[name].astype("string").value_counts().index[:50].tolist()
            for i, f in enumerate(frames):
                v = f[name].astype("string").fillna("\x00null")
                onehot = np.stack([(v == t).to_numpy() for t in top] + [~v.isin(top).to_numpy()], axis=1)
                blocks[i].append(onehot.astype(float) / np.sqrt(2))
        else:
            ref = pd.to_numeric(train[name], errors="coerce") if spec["sdtype"] != "datetime" else \
                pd.to_datetime(train[name]).astype("int64")
            ref = np.sort(ref.dropna().to_numpy(dtype=float))
            for i, f in enumerate(frames):
                v = pd.to_numeric(f[name], errors="coerce") if spec["sdtype"] != "datetime" else \
                    pd.to_datetime(f[name]).astype("int64")
                v = v.to_numpy(dtype=float)
                u = np.searchsorted(ref, v, side="right") / max(len(ref), 1)
                blocks[i].append(np.where(np.isnan(v), -1.0, u)[:, None])
    return [np.hstack(b) for b in blocks]


def dcr_share(train: pd.DataFrame, holdout: pd.DataFrame, syn: pd.DataFrame, metadata: dict) -> float:
    m = len(holdout)
    tr = train.sample(min(m, len(train)), random_state=SEED)
    sy = syn.sample(min(2000, len(syn)), random_state=SEED)
    x_tr, x_ho, x_sy = _distance_matrix([tr, holdout, sy], train, metadata)
    d_tr = NearestNeighbors(n_neighbors=1, n_jobs=THREADS).fit(x_tr).kneighbors(x_sy)[0][:, 0]
    d_ho = NearestNeighbors(n_neighbors=1, n_jobs=THREADS).fit(x_ho).kneighbors(x_sy)[0][:, 0]
    return float(np.mean(d_tr < d_ho) + 0.5 * np.mean(d_tr == d_ho))


def _labels(s: pd.Series, positive) -> np.ndarray:
    return (s.astype("string") == str(positive)).to_numpy(dtype=int)


def utility(train: pd.DataFrame, holdout: pd.DataFrame, fit_on: pd.DataFrame, metadata: dict, target: str) -> float:
    """XGBoost trained on `fit_on`, scored on the real holdout: R2 for a regression target, else ROC AUC (binary:
    the rarer real class is positive; more classes: one-vs-rest macro average over the classes the holdout has)."""
    fit_on = fit_on[fit_on[target].notna()]
    holdout = holdout[holdout[target].notna()]
    x_fit, x_test = _features([fit_on, holdout], metadata, drop=target)
    if is_regression(train, target, metadata):
        reg = _model(XGBRegressor).fit(x_fit, pd.to_numeric(fit_on[target]).astype(float))
        return float(r2_score(pd.to_numeric(holdout[target]).astype(float), reg.predict(x_test)))
    classes = train[target].astype("string").value_counts().index.tolist()
    if len(classes) <= 2:
        positive = classes[-1]
        y_fit, y_test = _labels(fit_on[target], positive), _labels(holdout[target], positive)
        if y_fit.min() == y_fit.max():
            return 0.5  # the synthetic rows lost one class: the classifier can only guess
        clf = _model().fit(x_fit, y_fit)
        return float(roc_auc_score(y_test, clf.predict_proba(x_test)[:, 1]))
    seen = [c for c in classes if (fit_on[target].astype("string") == c).any()]
    y_fit = fit_on[target].astype("string").map({c: i for i, c in enumerate(seen)}).to_numpy()
    if len(seen) < 2:
        return 0.5
    proba = _model().fit(x_fit, y_fit).predict_proba(x_test)
    y_test = holdout[target].astype("string").to_numpy()
    aucs = []
    for c in classes:  # a class the synthetic rows lost scores 0.5 (no information), not dropped from the mean
        truth = (y_test == c).astype(int)
        if truth.min() == truth.max():
            continue
        aucs.append(roc_auc_score(truth, proba[:, seen.index(c)]) if c in seen else 0.5)
    return float(np.mean(aucs))


def main() -> None:
    warnings.filterwarnings("ignore")
    args = sys.argv[1:]
    quality = "--no-quality" not in args
    train_path, holdout_path, meta_path, target, *syn_paths = [a for a in args if a != "--no-quality"]
    train, holdout = pd.read_parquet(train_path), pd.read_parquet(holdout_path)
    metadata = infer_metadata(train) if meta_path == "auto" else json.loads(open(meta_path).read())
    out: dict = {"__real__": {"trtr": utility(train, holdout, train, metadata, target)}}
    if quality:
        from sdmetrics.reports.single_table import QualityReport  # the SDV venv only

        # the honest reference: real holdout rows scored as if they were a synthetic table (quality only;
        # detection, DCR and TSTR would compare the holdout with itself)
        reference = QualityReport()
        reference.generate(train, holdout[train.columns], metadata, verbose=False)
        out["__real__"]["holdout_quality"] = float(reference.get_score())
    for path in syn_paths:
        syn = pd.read_parquet(path)[train.columns]
        scores = {}
        if quality:
            report = QualityReport()
            report.generate(train, syn, metadata, verbose=False)
            props = report.get_properties().set_index("Property")["Score"]
            scores = {"quality": float(report.get_score()), "column_shapes": float(props["Column Shapes"]),
                      "column_pair_trends": float(props["Column Pair Trends"])}
        out[path] = {**scores, "detection_auc": detection_auc(holdout, syn, metadata),
                     "dcr_share": dcr_share(train, holdout, syn, metadata),
                     "tstr": utility(train, holdout, syn, metadata, target)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
