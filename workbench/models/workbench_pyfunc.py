"""MLflow's loader for a Workbench model (its `python_function` flavor).

This file is copied into the exported MLflow directory (its `code/` folder)
together with the workbench's model runtime as `wb_runtime.py`, and imported
there by `mlflow.pyfunc.load_model`. It must therefore stand alone: it imports
`wb_runtime`, numpy and pandas, never `workbench`. Predictions go through the
same preparation the workbench itself uses (fixed categories for LightGBM,
missing categories as None for a scikit-learn pipeline), so they match the
native model; MLflow's own flavors would hand raw string columns straight to
the model. Nothing is unpickled: LightGBM's text model, or skops with the
runtime's allow-listed types, and the feature schema as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SCHEMA_FILE = "feature_schema.json"


class WorkbenchModel:
    """Predicts from a raw table: labels for a classifier, values for a regressor."""

    def __init__(self, folder: Path) -> None:
        import wb_runtime

        # The runtime's checks apply as in a bundle: sizes, the skops allow-list,
        # LightGBM's text bounds; the schema names its model file inside `folder`.
        limit = wb_runtime.Limits().file
        with open(folder / SCHEMA_FILE, "rb") as fh:
            schema = json.loads(fh.read(wb_runtime.MAX_MANIFEST_BYTES))
        name = schema.get("model_file") if isinstance(schema, dict) else None
        if not isinstance(name, str) or wb_runtime.unsafe_name(name) or "/" in name:
            raise wb_runtime.BundleError(f"{SCHEMA_FILE} names no model file in {folder}")
        with open(folder / name, "rb") as fh:
            self.model = wb_runtime.Model(schema, fh.read(limit + 1))

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return np.asarray(self.model.predict(frame, strict=False)[0])


def _load_pyfunc(data_path: str) -> WorkbenchModel:
    """MLflow's entry point: `data_path` is the folder with the model and its schema."""
    return WorkbenchModel(Path(data_path))
