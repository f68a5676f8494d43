"""Any scikit-learn estimator behind an imputing, encoding Pipeline, saved with skops."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import UsageError
from workbench.trainers.tabular import Table

MODEL_FILE = "model.skops"


def load_estimator_class(dotted: str) -> type:
    module_name, _, class_name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot import the estimator {dotted!r}: {exc}") from exc
    if not (isinstance(cls, type) and hasattr(cls, "fit") and hasattr(cls, "get_params")):
        raise UsageError(f"{dotted!r} is not a scikit-learn estimator class")
    return cls


def _check_kind(cls: type, dotted: str, task: str) -> None:
    """A classifier for classification, a regressor for regression."""
    from sklearn.base import is_classifier, is_regressor

    try:
        instance = cls()
    except Exception:  # noqa: BLE001 - needs arguments; its fit will say what it is
        return
    wrong = (task == "classification" and is_regressor(instance)) or (
        task == "regression" and is_classifier(instance)
    )
    if not wrong:
        return
    kind = "a regressor" if task == "classification" else "a classifier"
    swap = ("Regressor", "Classifier") if task == "classification" else ("Classifier", "Regressor")
    hint = ""
    if swap[0] in dotted:
        other = dotted.replace(swap[0], swap[1])
        try:
            load_estimator_class(other)
            hint = f"use sklearn:{other}, or "
        except UsageError:
            pass
    raise UsageError(
        f"{dotted} is {kind} but the task is {task}; {hint}set [project] task to match"
    )


class SklearnTrainer:
    framework = "sklearn"

    def __init__(self, table: Table, params: dict[str, Any], seed: int, estimator: str) -> None:
        cls = load_estimator_class(estimator)
        _check_kind(cls, estimator, table.task)
        if "random_state" in cls().get_params() and "random_state" not in params:
            params = {**params, "random_state": seed}
        try:
            self.estimator = cls(**params)
        except TypeError as exc:
            raise UsageError(f"bad [train].params for {estimator}: {exc}") from exc
        self.table = table
        self.model: Any = None
        self.classes: list[Any] | None = None

    def _pipeline(self) -> Any:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder

        encode = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        columns = ColumnTransformer(
            [
                (
                    "numeric",
                    SimpleImputer(strategy="median", keep_empty_features=True),
                    self.table.numeric,
                ),
                ("categorical", encode, self.table.categorical),
            ],
            remainder="drop",
        )
        return Pipeline([("preprocess", columns), ("model", self.estimator)])

    def fit(
        self, x_train: pd.DataFrame, y_train: pd.Series, x_valid: pd.DataFrame, y_valid: pd.Series
    ) -> dict[str, list[float]]:
        self.model = self._pipeline()
        self.model.fit(x_train, y_train)
        if self.table.task == "classification":
            self.classes = list(self.model.classes_)
        return {}

    def predict(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        pred = self.model.predict(features)
        proba = None
        if self.classes is not None and hasattr(self.model, "predict_proba"):
            try:
                proba = self.model.predict_proba(features)
            except AttributeError:  # e.g. SVC without probability=True
                proba = None
        return pred, proba

    def framework_version(self) -> str:
        import sklearn

        return sklearn.__version__

    def save(self, folder: Path) -> Path:
        import skops.io

        path = folder / MODEL_FILE
        skops.io.dump(self.model, path)
        return path
