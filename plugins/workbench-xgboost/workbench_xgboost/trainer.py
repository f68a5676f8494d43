"""XGBoost on Workbench tables: native categoricals, a learning curve per round,
saved as XGBoost's JSON model (data only: loading it runs no code)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MODEL_FILE = "model.json"
DEFAULT_ROUNDS = 100
# How each task is fitted and which metric its learning curve follows.
OBJECTIVES = {
    "binary": ("binary:logistic", "logloss"),
    "multiclass": ("multi:softprob", "mlogloss"),
    "regression": ("reg:squarederror", "rmse"),
}


def pick_device() -> tuple[str, str]:
    """("cuda" or "cpu", why): CUDA when this xgboost was built with it and NVML
    sees at least one NVIDIA GPU."""
    import xgboost

    if not xgboost.build_info().get("USE_CUDA"):
        return "cpu", "this xgboost was built without CUDA"
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            count = pynvml.nvmlDeviceGetCount()
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # no driver, no library: a normal state, not an error
        return "cpu", f"no NVIDIA GPU visible ({type(exc).__name__}: {exc})"
    if count == 0:
        return "cpu", "no NVIDIA GPU visible"
    return "cuda", f"{count} NVIDIA GPU(s) visible"


def prepare(features: pd.DataFrame, categories: dict[str, list[Any]]) -> pd.DataFrame:
    """Categorical columns with the training categories in a fixed order, so the
    codes the booster sees at predict time match training; the rest as numbers."""
    out = features.copy()
    for column in out.columns:
        if column in categories:
            values = out[column].astype("string").astype(object)
            known = out[column].notna() & values.isin(categories[column])
            out[column] = pd.Categorical(values.where(known, None), categories=categories[column])
        else:
            out[column] = pd.to_numeric(out[column], errors="coerce")
    return out


def _predict(
    booster: Any, frame: pd.DataFrame, classes: list[Any] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    import xgboost

    raw = booster.predict(xgboost.DMatrix(frame, enable_categorical=True))
    if classes is None:
        return raw, None
    proba = np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw
    return np.asarray(classes, dtype=object)[proba.argmax(axis=1)], proba


class XGBoostTrainer:
    """Built by the trainer process as `XGBoostTrainer(table, params, seed)`."""

    framework = "xgboost"

    def __init__(self, table: Any, params: dict[str, Any], seed: int) -> None:
        self.table = table
        self.params = dict(params)
        self.seed = seed
        self.categories = {
            c: sorted(table.features[c].dropna().astype(str).unique().tolist())
            for c in table.categorical
        }
        self.classes: list[Any] | None = None
        self.booster: Any = None
        self.device, self.device_reason = pick_device()

    def fit(
        self, x_train: pd.DataFrame, y_train: pd.Series, x_valid: pd.DataFrame, y_valid: pd.Series
    ) -> dict[str, list[float]]:
        import xgboost

        params = {"tree_method": "hist", "seed": self.seed, "device": self.device, **self.params}
        rounds = int(params.pop("n_estimators", params.pop("num_boost_round", DEFAULT_ROUNDS)))
        self.device = params["device"]  # [train] params may pin one
        _log_device(self.device, self.device_reason, xgboost.__version__)
        if self.table.task == "classification":
            self.classes = sorted(pd.unique(y_train).tolist())
            index = {c: i for i, c in enumerate(self.classes)}
            y_train = y_train.map(index)
            y_valid = y_valid.map(index).fillna(-1)
            keep = y_valid >= 0  # labels unseen in training cannot be scored
            x_valid, y_valid = x_valid[keep], y_valid[keep].astype(int)
            kind = "binary" if len(self.classes) == 2 else "multiclass"
            if kind == "multiclass":
                params.setdefault("num_class", len(self.classes))
        else:
            kind = "regression"
        objective, metric = OBJECTIVES[kind]
        params.setdefault("objective", objective)
        params.setdefault("eval_metric", metric)
        train = xgboost.DMatrix(
            prepare(x_train, self.categories), label=y_train, enable_categorical=True
        )
        valid = xgboost.DMatrix(
            prepare(x_valid, self.categories), label=y_valid, enable_categorical=True
        )
        history: dict[str, dict[str, list[float]]] = {}
        self.booster = xgboost.train(
            params,
            train,
            rounds,
            evals=[(valid, "valid")],
            evals_result=history,
            verbose_eval=False,
        )
        return {f"valid_{name}": values for name, values in history.get("valid", {}).items()}

    def predict(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        return _predict(self.booster, prepare(features, self.categories), self.classes)

    def framework_version(self) -> str:
        import xgboost

        return xgboost.__version__

    def save(self, folder: Path) -> Path:
        path = folder / MODEL_FILE
        self.booster.save_model(str(path))
        return path

    @classmethod
    def load(cls, schema: dict[str, Any], model_file: Path) -> XGBoostModel:
        """A saved model back, from the feature schema the trainer process wrote."""
        return XGBoostModel(schema, model_file)


class XGBoostModel:
    """A saved booster with its feature schema; `predict` takes raw features."""

    def __init__(self, schema: dict[str, Any], model_file: Path) -> None:
        import xgboost

        self.booster = xgboost.Booster()
        # From bytes: a stored artifact has no .json suffix to tell the format by.
        self.booster.load_model(bytearray(Path(model_file).read_bytes()))
        self.booster.set_param({"device": "cpu"})  # wherever it was trained
        self.features = [f["name"] for f in schema["features"]]
        self.categories = {
            f["name"]: [str(c) for c in f["categories"]]
            for f in schema["features"]
            if f["kind"] == "categorical"
        }
        self.classes = schema["target"].get("classes")

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        return _predict(self.booster, prepare(frame[self.features], self.categories), self.classes)


def _log_device(device: str, reason: str, version: str) -> None:
    """Say where it trains in the run's output, and keep it as the `_device` param."""
    print(f"xgboost {version} trains on {device}: {reason}", flush=True)
    import workbench as wb
    from workbench.core.errors import UsageError

    with contextlib.suppress(UsageError):  # not in a run (e.g. used from a notebook)
        wb.log_params({"_device": device})
