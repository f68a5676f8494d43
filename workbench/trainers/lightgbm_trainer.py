"""LightGBM with native categoricals, saved as LightGBM's text model."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.trainers import threads
from workbench.trainers.tabular import Table, label_array

MODEL_FILE = "model.txt"


class LightGBMTrainer:
    framework = "lightgbm"

    def __init__(self, table: Table, params: dict[str, Any], seed: int) -> None:
        self.table = table
        self.params = {"verbose": -1, "random_state": seed, **params}
        # LightGBM sets its OpenMP thread count itself, past any pool limit.
        fit_threads = threads.fit_threads(len(table.features), params)
        if fit_threads is not None:
            self.params["n_jobs"] = fit_threads
        self.categories = {
            c: sorted(table.features[c].dropna().unique().tolist()) for c in table.categorical
        }
        self.classes: list[Any] | None = None
        self.model: Any = None
        # Hears each boosting round's validation scores while fitting (step, {valid_<name>: v}),
        # so that a sweep can prune a trial before it ends.
        self.on_iteration: Callable[[int, dict[str, float]], None] | None = None

    def prepare(self, features: pd.DataFrame) -> pd.DataFrame:
        """Categorical columns with the training categories, in a fixed order,
        so the codes LightGBM sees at predict time match training."""
        out = features.copy()
        for column, categories in self.categories.items():
            out[column] = pd.Categorical(out[column], categories=categories)
        return out

    def fit(
        self, x_train: pd.DataFrame, y_train: pd.Series, x_valid: pd.DataFrame, y_valid: pd.Series
    ) -> dict[str, list[float]]:
        import lightgbm

        if self.table.task == "classification":
            self.classes = sorted(pd.unique(y_train).tolist())
            index = {c: i for i, c in enumerate(self.classes)}
            y_train = y_train.map(index)
            y_valid = y_valid.map(index).fillna(-1)
            keep = y_valid >= 0  # labels unseen in training cannot be scored by the booster
            x_valid, y_valid = x_valid[keep], y_valid[keep].astype(int)
            self.model = lightgbm.LGBMClassifier(**self.params)
        else:
            self.model = lightgbm.LGBMRegressor(**self.params)
        valid = (self.prepare(x_valid), y_valid)
        # LightGBM 4.7 renamed eval_set to eval_X/eval_y; support both.
        if len(y_valid) == 0:  # nothing to score the rounds on
            evaluation = {}
        elif "eval_X" in inspect.signature(self.model.fit).parameters:
            evaluation = {"eval_X": (valid[0],), "eval_y": (valid[1],)}
        else:
            evaluation = {"eval_set": [valid]}
        self.model.fit(
            self.prepare(x_train),
            y_train,
            categorical_feature=self.table.categorical or "auto",
            callbacks=[self._report] if self.on_iteration else None,
            **evaluation,
        )
        return {
            f"valid_{name}": values
            for name, values in self.model.evals_result_.get("valid_0", {}).items()
        }

    def _report(self, env: Any) -> None:
        scores = {f"valid_{entry[1]}": float(entry[2]) for entry in env.evaluation_result_list}
        self.on_iteration(env.iteration + 1, scores)  # type: ignore[misc]

    def predict(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        prepared = self.prepare(features)
        if self.classes is None:
            return self.model.predict(prepared), None
        proba = self.model.predict_proba(prepared)
        return label_array(self.classes)[proba.argmax(axis=1)], proba

    def framework_version(self) -> str:
        import lightgbm

        return lightgbm.__version__

    def save(self, folder: Path) -> Path:
        path = folder / MODEL_FILE
        self.model.booster_.save_model(str(path))
        return path
