"""Loading a built-in trainer's saved model back, in formats that run no code
at load: LightGBM's text model, or skops with only the types it lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench import paths
from workbench.errors import WorkbenchError


class TrainedModel:
    """A model and its feature schema; `predict` takes a raw table like the training data."""

    def __init__(self, schema: dict[str, Any], model_file: Path) -> None:
        self.schema = schema
        self.framework = schema["framework"]
        self.features = [f["name"] for f in schema["features"]]
        self.classes = schema["target"].get("classes")
        if self.framework == "lightgbm":
            import lightgbm

            self.model = lightgbm.Booster(model_file=str(model_file))
        else:
            import skops.io

            self.model = skops.io.load(
                model_file, trusted=skops.io.get_untrusted_types(file=model_file)
            )

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise WorkbenchError(f"the data lacks the model's features: {', '.join(missing)}")
        features = frame[self.features].copy()
        if self.framework == "sklearn":
            pred = self.model.predict(features)
            proba = (
                self.model.predict_proba(features)
                if self.classes and hasattr(self.model, "predict_proba")
                else None
            )
            return pred, proba
        for feature in self.schema["features"]:
            if feature["kind"] == "categorical":
                features[feature["name"]] = pd.Categorical(
                    features[feature["name"]].astype("string").astype(object),
                    categories=feature["categories"],
                )
            else:
                features[feature["name"]] = pd.to_numeric(
                    features[feature["name"]], errors="coerce"
                )
        raw = self.model.predict(features)
        if self.classes is None:
            return raw, None
        proba = np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw
        return np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)], proba


def load_run_model(run: dict[str, Any]) -> TrainedModel:
    """The model saved by a run of a built-in trainer (its `run show` document)."""
    artifacts = {a["name"]: a for a in run["artifacts"]}
    if "feature_schema.json" not in artifacts:
        raise WorkbenchError(f"run {run['id']} saved no model of a built-in trainer")
    schema = json.loads(paths.artifact_file(artifacts["feature_schema.json"]["sha256"]).read_text())
    model = artifacts.get(schema.get("model_file", ""))
    if model is None:
        raise WorkbenchError(f"run {run['id']} has no {schema.get('model_file')} artifact")
    return TrainedModel(schema, paths.artifact_file(model["sha256"]))
