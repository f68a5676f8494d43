"""Exporting a model version as an MLflow model directory, for
`mlflow.pyfunc.load_model(path).predict(frame)`.

The `python_function` flavor is a small loader (`workbench_pyfunc.py`) shipped
in the directory's `code/` folder with the workbench's model runtime, so that
MLflow predicts through the same preparation of raw columns as the workbench:
MLflow's own lightgbm flavor hands string columns straight to the Booster
(which refuses them), and its sklearn flavor would treat a missing category
differently from training. MLflow's native flavor is recorded too, pointing at
the same file, so `mlflow.lightgbm.load_model` returns the Booster and
`mlflow.sklearn.load_model` the pipeline (skops format, its types listed).

No pickle is written: LightGBM's text model, or skops, and JSON. After writing,
the directory is loaded back with MLflow and must predict the hold-out rows
(and the same rows with values missing) exactly as the native model does;
otherwise the export fails.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.models.export_check import holdout_features, max_abs_diff, with_gaps
from workbench.models.registry import ModelVersion, load_model

# Saving a model is local, but MLflow may send telemetry or run `uv` to describe
# the environment; neither may touch the network.
_OFFLINE_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_UV_AUTO_DETECT": "false"}
_EXAMPLE_ROWS = 5
_DATA = "data/model"  # where MLflow copies the model folder (data_path) to
# Differences this small are float noise from MLflow's int -> double input casting.
_EQUAL = 1e-9


def export_mlflow(
    version: ModelVersion, folder: Path, *, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Write `version` into the empty `folder` as an MLflow model and check that it
    predicts like the native model; returns a report with `notes`."""
    holdout = holdout_features(version)
    if version.framework not in ("lightgbm", "sklearn"):
        raise WorkbenchError(
            f"cannot export {version.ref} to MLflow: only LightGBM and scikit-learn models "
            f"can, not {version.framework}"
        )
    mlflow = _import_mlflow()
    with _quiet_mlflow():
        return _export(mlflow, version, folder, holdout, progress)


def _export(
    mlflow: Any,
    version: ModelVersion,
    folder: Path,
    holdout: pd.DataFrame,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    native = load_model(version)
    example = holdout.head(_EXAMPLE_ROWS)
    requirements = _requirements(version)
    progress(f"writing the {version.framework} model in MLflow format")
    with tempfile.TemporaryDirectory(prefix="wb-mlflow-") as tmp:
        code, data = _stage(version, Path(tmp))
        mlflow.pyfunc.save_model(
            str(folder),
            loader_module="workbench_pyfunc",
            data_path=str(data),
            code_paths=[str(p) for p in code],
            mlflow_model=_with_native_flavor(mlflow.models.Model(), version),
            # The training dtypes: MLflow then accepts what the native model is fed
            # (it refuses to cast int64 to double, so a float feature must come as float).
            signature=mlflow.models.infer_signature(example, native.predict(example)[0]),
            input_example=example,
            pip_requirements=requirements,
            metadata={"workbench": {"model": version.ref, "run_id": version.run_id}},
        )

    # MLflow's signature refuses missing values in integer columns, so only the
    # other columns get gaps.
    integers = [c for c in holdout.columns if pd.api.types.is_integer_dtype(holdout[c])]
    rows = with_gaps(holdout, [c for c in holdout.columns if c not in integers])
    progress(f"loading it back with mlflow.pyfunc to predict {len(rows)} rows")
    with _shipped_code_unloaded_after():
        loaded = mlflow.pyfunc.load_model(str(folder))
        ours = np.asarray(loaded.predict(rows))
    check = _compare(ours, native.predict(rows)[0], native.classes)
    if not check["equal"]:
        raise WorkbenchError(
            f"{version.ref}: the MLflow model's predictions differ from the native model's "
            f"({_describe(check)}); nothing was written"
        )
    flavors = ", ".join(sorted(mlflow.models.Model.load(str(folder)).flavors))
    notes = [
        f"flavors: {flavors}; no pickle; load with mlflow.pyfunc.load_model(path)",
        f"mlflow.pyfunc predicts {len(rows)} rows ({len(holdout)} hold-out rows, then the same "
        f"rows with values missing) like the native model: {_describe(check)}",
        "requirements: " + ", ".join(requirements),
    ]
    if integers:
        notes.append(
            f"MLflow checks column types: the integer features ({', '.join(integers)}) must "
            "come as integers, without missing values"
        )
    return {
        "mlflow_version": mlflow.__version__,
        "flavors": flavors,
        "rows_checked": len(rows),
        "max_abs_diff": check["max_abs_diff"],
        "label_agreement": check["label_agreement"],
        "notes": notes,
    }


def _import_mlflow() -> Any:
    os.environ.update(_OFFLINE_ENV)
    try:
        import mlflow
        import mlflow.models
        import mlflow.pyfunc
    except ImportError as exc:
        raise WorkbenchError(
            f"exporting to MLflow needs MLflow ({exc}): install workbench-mlops[mlflow]"
        ) from exc
    return mlflow


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow logs progress at INFO and warns that integer columns cannot hold
    missing values; the report says what matters instead."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _shipped_code_unloaded_after() -> Iterator[None]:
    """Loading puts the directory's code/ folder on sys.path and imports from it;
    undo both, so a long-lived process (the TUI) does not keep the staging folder."""
    from workbench.models import bundle_runtime

    path = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = path
        for name in ("workbench_pyfunc", Path(bundle_runtime.RUNTIME_FILE).stem):
            sys.modules.pop(name, None)


def _stage(version: ModelVersion, tmp: Path) -> tuple[list[Path], Path]:
    """The code MLflow copies into `code/` and the model folder it copies to `data/model/`."""
    from workbench.models import bundle_runtime, workbench_pyfunc

    code = tmp / "code"
    code.mkdir()
    shutil.copyfile(workbench_pyfunc.__file__, code / "workbench_pyfunc.py")
    shutil.copyfile(bundle_runtime.__file__, code / bundle_runtime.RUNTIME_FILE)
    data = tmp / "model"
    data.mkdir()
    shutil.copyfile(version.model_path, data / version.schema["model_file"])
    (data / workbench_pyfunc.SCHEMA_FILE).write_text(json.dumps(version.schema, indent=2))
    return sorted(code.iterdir()), data


def _with_native_flavor(model: Any, version: ModelVersion) -> Any:
    """Record MLflow's own flavor for the same model file."""
    path = f"{_DATA}/{version.schema['model_file']}"
    if version.framework == "lightgbm":
        model.add_flavor(
            "lightgbm",
            lgb_version=metadata.version("lightgbm"),
            data=path,
            model_class="lightgbm.basic.Booster",
            code=None,
        )
    else:
        from workbench.models import bundle_runtime
        from workbench.models.bundle import runtime_errors

        # Only types on the runtime's allow-list are ever recorded as trusted.
        with runtime_errors():
            trusted = bundle_runtime.check_skops(version.model_path.read_bytes())
        model.add_flavor(
            "sklearn",
            pickled_model=path,
            sklearn_version=metadata.version("scikit-learn"),
            serialization_format="skops",
            skops_trusted_types=trusted,
            code=None,
        )
    return model


def _requirements(version: ModelVersion) -> list[str]:
    """Pinned to what is installed here: the versions the export was checked with.
    Besides MLflow, numpy and pandas: the framework's packages and every
    distribution the saved model's types come from (lightgbm for an LGBMClassifier
    inside a scikit-learn Pipeline)."""
    from workbench.models.wheels import model_distributions

    try:
        metadata.version("mlflow")
        names = ["mlflow"]
    except metadata.PackageNotFoundError:
        names = ["mlflow-skinny"]
    names += ["numpy", "pandas"]
    names += model_distributions(version.framework, version.model_path)
    return [f"{name}=={metadata.version(name)}" for name in dict.fromkeys(names)]


def _compare(ours: np.ndarray, native: np.ndarray, classes: list | None) -> dict[str, Any]:
    if classes is not None:
        agreement = float(np.mean(ours.astype(str) == np.asarray(native).astype(str)))
        return {"equal": agreement == 1.0, "label_agreement": agreement, "max_abs_diff": None}
    largest = max_abs_diff(ours, native)
    return {"equal": largest <= _EQUAL, "label_agreement": None, "max_abs_diff": largest}


def _describe(check: dict[str, Any]) -> str:
    if check["label_agreement"] is not None:
        return f"labels agree on {check['label_agreement']:.1%} of rows"
    return f"max |difference| {check['max_abs_diff']:.3g}"
