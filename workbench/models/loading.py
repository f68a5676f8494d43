"""Loading a trained model back, in formats that run no code at load: a built-in
trainer's LightGBM text model, or skops with only allow-listed types, or a plugin
trainer's model through that trainer's `load`. The preparation and prediction
live in `workbench.models.bundle_runtime`, the same code a bundle runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError

BUILTIN_FRAMEWORKS = ("lightgbm", "sklearn")


class TrainedModel:
    """A model and its feature schema; `predict` takes a raw table like the training data."""

    def __init__(
        self, schema: dict[str, Any], model_file: Path, project_dir: Path | None = None
    ) -> None:
        from workbench.models import bundle_runtime
        from workbench.models.bundle import runtime_errors

        self.schema = schema
        self.framework = schema["framework"]
        self.features = [f["name"] for f in schema["features"]]
        self.classes = schema["target"].get("classes")
        if self.framework not in BUILTIN_FRAMEWORKS:  # a plugin trainer's model
            from workbench.plugins import load_plugin_model

            self._model = self.model = load_plugin_model(schema, Path(model_file), project_dir)
            return
        with runtime_errors():
            self._model = bundle_runtime.Model(schema, Path(model_file).read_bytes())
        self.model = self._model.native

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Values that are not numbers in a numeric feature count as missing here;
        a bundle's `predict` and `serve` refuse them instead."""
        from workbench.models.bundle import runtime_errors

        if self.framework not in BUILTIN_FRAMEWORKS:
            missing = [f for f in self.features if f not in frame.columns]
            if missing:
                raise WorkbenchError(f"the data lacks the model's features: {', '.join(missing)}")
            pred, proba = self._model.predict(frame[self.features].copy())
            return np.asarray(pred), None if proba is None else np.asarray(proba)
        with runtime_errors():
            return self._model.predict(frame, strict=False)
