"""A model logged by the user's own training script (`wb.log_model`), saved the way
the built-in scikit-learn trainer saves its models: skops, a feature schema and
the hold-out rows. The run's model is then registered when the run succeeds, and
the gate, the pipeline, `predict`, `serve` and the exports treat it like any other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import UsageError

MODEL_FILE = "model.skops"


def save(
    folder: Path,
    model: Any,
    x_test: pd.DataFrame,
    y_test: Any,
    *,
    target: str | None = None,
    x_train: pd.DataFrame | None = None,
) -> tuple[Path, Path, Path]:
    """Write model.skops, feature_schema.json and holdout.parquet into `folder`;
    returns their paths. Raises UsageError on what cannot be logged."""
    import sklearn
    import skops.io
    from sklearn.base import is_classifier

    from workbench.models import bundle_runtime
    from workbench.trainers.tabular import Table, feature_schema

    if not hasattr(model, "predict"):
        raise UsageError(
            f"log_model: {type(model).__name__} has no predict(); log a fitted scikit-learn"
            " estimator or Pipeline"
        )
    if not isinstance(x_test, pd.DataFrame):
        raise UsageError(
            "log_model: x_test must be a pandas DataFrame of the raw feature columns,"
            " as the model's predict() takes them"
        )
    y = pd.Series(np.asarray(y_test), name=target or getattr(y_test, "name", None) or "target")
    if len(y) != len(x_test):
        raise UsageError(f"log_model: x_test has {len(x_test)} rows, y_test {len(y)}")
    if len(x_test) == 0:
        raise UsageError("log_model: the hold-out rows are empty")
    if y.name in x_test.columns:
        raise UsageError(f"log_model: x_test holds the target column {y.name!r}; drop it")

    try:
        data = skops.io.dumps(model)
        bundle_runtime.check_skops(data)  # what predict, serve and bundles will accept
    except bundle_runtime.BundleError as exc:
        raise UsageError(f"log_model: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - skops cannot save this object
        raise UsageError(f"log_model: skops cannot save {type(model).__name__}: {exc}") from exc

    classifier = is_classifier(model)
    reference = x_test if x_train is None else x_train
    if not isinstance(reference, pd.DataFrame):
        raise UsageError("log_model: x_train must be a pandas DataFrame like x_test")
    missing = ", ".join(str(c) for c in x_test.columns if c not in reference.columns)
    if missing:
        raise UsageError(f"log_model: x_train lacks x_test's columns {missing}")
    table = Table(
        features=reference[list(x_test.columns)],  # categories as seen in training
        target=y,
        task="classification" if classifier else "regression",
        categorical=[c for c in x_test.columns if not _is_numeric(x_test[c])],
    )
    schema = feature_schema(table, list(model.classes_) if classifier else None)
    schema.update(
        framework="sklearn",
        framework_version=sklearn.__version__,
        trainer="script",
        model_file=MODEL_FILE,
    )

    # What `predict`, `serve` and the gate will do with it: the same answers, or refuse now.
    sample = x_test.head(200)
    try:
        loaded = bundle_runtime.Model(schema, data)
        ours, _ = loaded.predict(sample, strict=False)
    except Exception as exc:  # noqa: BLE001 - any failure to load or predict is the user's to fix
        raise UsageError(
            f"log_model: the model does not predict from its saved form: {exc}"
        ) from exc
    theirs = np.asarray(model.predict(sample))
    same = (
        np.array_equal(ours.astype(str), theirs.astype(str))
        if classifier
        else np.allclose(ours.astype(float), theirs.astype(float), rtol=1e-6, atol=1e-9)
    )
    if not same:
        raise UsageError(
            "log_model: the saved model predicts differently from the one given on the same"
            " rows; does predict() take x_test's columns as they are?"
        )

    folder.mkdir(parents=True, exist_ok=True)
    model_file = folder / MODEL_FILE
    model_file.write_bytes(data)
    schema_file = folder / "feature_schema.json"
    schema_file.write_text(json.dumps(schema, indent=2, default=str))
    holdout_file = folder / "holdout.parquet"
    x_test.assign(**{str(y.name): y.to_numpy()}).to_parquet(holdout_file, index=False)
    return model_file, schema_file, holdout_file


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
