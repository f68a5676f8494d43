"""Hold-out metrics for the built-in trainers, and which metrics fit which task.

scikit-learn is imported only when a metric is computed, so that the config
layer can ask `metrics_for_task` without paying for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
TASKS = ("classification", "regression")


def metrics_for_task(task: str | None) -> list[str]:
    """The hold-out metrics the built-in trainers report for `task`
    ("classification" or "regression"); every one of them for None (task not known yet)."""
    if task == "classification":
        return list(CLASSIFICATION_METRICS)
    if task == "regression":
        return list(REGRESSION_METRICS)
    if task is None:
        return list(CLASSIFICATION_METRICS + REGRESSION_METRICS)
    raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def classification_metrics(
    y_true: Any, y_pred: Any, proba: np.ndarray | None, classes: list[Any]
) -> dict[str, float]:
    """accuracy and f1 (of the second class when there are two, else macro-averaged), and
    log_loss and roc_auc when there are probabilities. Labels unseen in training
    count as wrong in accuracy and f1 and are left out of log_loss and roc_auc."""
    from sklearn import metrics

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.dtype != y_pred.dtype and (y_true.dtype == object or y_pred.dtype == object):
        # e.g. labels read as text against a model's ints: compare like for like
        y_true, y_pred = y_true.astype(str), y_pred.astype(str)
        classes = [str(c) for c in classes]
    out = {"accuracy": metrics.accuracy_score(y_true, y_pred)}
    present = set(y_true.tolist()) | set(y_pred.tolist())
    if len(classes) == 2 and present <= set(classes):
        out["f1"] = metrics.f1_score(y_true, y_pred, pos_label=classes[1], zero_division=0)
    else:
        out["f1"] = metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)
    if proba is not None:
        proba = np.asarray(proba, dtype=float)
        known = set(classes)
        seen = np.fromiter((v in known for v in y_true.tolist()), bool, len(y_true))
        y_seen, p_seen = y_true[seen], proba[seen]
        if len(y_seen):
            out["log_loss"] = metrics.log_loss(y_seen, p_seen, labels=classes)
        if len(set(y_seen.tolist())) > 1:  # undefined with one class present
            try:
                if len(classes) == 2:
                    positive = (y_seen == classes[1]).astype(int)
                    out["roc_auc"] = metrics.roc_auc_score(positive, p_seen[:, 1])
                else:
                    out["roc_auc"] = metrics.roc_auc_score(
                        y_seen, p_seen, multi_class="ovr", labels=classes
                    )
            except ValueError:  # e.g. classes absent from the hold-out
                pass
    return {k: float(v) for k, v in out.items()}


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    from sklearn import metrics

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        "r2": float(metrics.r2_score(y_true, y_pred)),
    }
