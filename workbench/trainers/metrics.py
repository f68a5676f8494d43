"""Hold-out metrics for the built-in trainers."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics


def classification_metrics(
    y_true: Any, y_pred: Any, proba: np.ndarray | None, classes: list[Any]
) -> dict[str, float]:
    out = {"accuracy": metrics.accuracy_score(y_true, y_pred)}
    if len(classes) == 2:
        out["f1"] = metrics.f1_score(y_true, y_pred, pos_label=classes[1])
    else:
        out["f1"] = metrics.f1_score(y_true, y_pred, average="macro")
    if proba is not None:
        out["log_loss"] = metrics.log_loss(y_true, proba, labels=classes)
        if len(set(np.asarray(y_true).tolist())) > 1:  # undefined with one class present
            if len(classes) == 2:
                positive = (np.asarray(y_true) == classes[1]).astype(int)
                out["roc_auc"] = metrics.roc_auc_score(positive, proba[:, 1])
            else:
                out["roc_auc"] = metrics.roc_auc_score(
                    y_true, proba, multi_class="ovr", labels=classes
                )
    return {k: float(v) for k, v in out.items()}


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        "r2": float(metrics.r2_score(y_true, y_pred)),
    }
