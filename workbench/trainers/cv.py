"""K-fold cross-validation of a built-in trainer on the training split.

Each fold fits a fresh trainer with the run's params and scores it with the
same hold-out metrics, so `cv_<metric>_mean` reads like the hold-out
`<metric>`, with `cv_<metric>_std` for how much it moves between folds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from workbench.trainers.metrics import classification_metrics, regression_metrics


def score(task: str, y_true: Any, pred: Any, proba: Any, classes: list[Any] | None) -> dict:
    """The hold-out metrics of the task."""
    if task == "classification":
        return classification_metrics(y_true, pred, proba, classes or [])
    return regression_metrics(y_true, pred)


def cross_validate(
    make_trainer: Callable[[], Any],
    task: str,
    x: pd.DataFrame,
    y: pd.Series,
    folds: int,
    seed: int,
    on_fold: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, list[float]]:
    """Every metric's score on each fold (stratified for classification when
    every class has at least `folds` rows); `on_fold(fold, scores)` hears each
    fold as it ends, counted from 1."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if len(y) < folds:
        raise ValueError(f"cv = {folds} needs at least {folds} training rows, got {len(y)}")
    stratified = task == "classification" and y.value_counts().min() >= folds
    splitter = (StratifiedKFold if stratified else KFold)(
        n_splits=folds, shuffle=True, random_state=seed
    )
    scores: dict[str, list[float]] = {}
    for fold, (fit_rows, valid_rows) in enumerate(splitter.split(x, y), start=1):
        x_fit, y_fit = x.iloc[fit_rows], y.iloc[fit_rows]
        x_valid, y_valid = x.iloc[valid_rows], y.iloc[valid_rows]
        trainer = make_trainer()
        trainer.fit(x_fit, y_fit, x_valid, y_valid)
        if trainer.classes is not None:
            # A class missing from this fold's training rows cannot be predicted or scored.
            seen = y_valid.isin(trainer.classes)
            x_valid, y_valid = x_valid[seen], y_valid[seen]
        pred, proba = trainer.predict(x_valid)
        result = score(task, y_valid, pred, proba, trainer.classes)
        for key, value in result.items():
            scores.setdefault(key, []).append(value)
        if on_fold is not None:
            on_fold(fold, result)
    return scores


def summarize(scores: dict[str, list[float]]) -> dict[str, float]:
    """`cv_<metric>_mean` and `cv_<metric>_std` of each metric over the folds."""
    out = {}
    for key, values in scores.items():
        out[f"cv_{key}_mean"] = float(np.mean(values))
        out[f"cv_{key}_std"] = float(np.std(values))
    return out
