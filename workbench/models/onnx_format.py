"""Exporting a model version to ONNX, checked against the native model with
onnxruntime before anything is written.

Both frameworks get the same input contract, written down in `model.json`
beside `model.onnx`: one input per feature, shape [N, 1], float32 for a numeric
feature (NaN when missing) and string for a categorical one (an empty string
when missing). Classifiers output `label` [N] and `probabilities`
[N, classes]; regressors output `prediction` [N, 1].

scikit-learn pipelines go through skl2onnx. LightGBM boosters go through
onnxmltools, which handles categorical splits on the integer codes of the
categories; a LabelEncoder in front of the trees turns the string inputs into
those codes (unknown or missing: NaN, which LightGBM also treats as missing),
and a Gather behind them turns class indices into class labels.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import math
import re
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import UsageError, WorkbenchError
from workbench.models.export_check import holdout_features, max_abs_diff, with_gaps
from workbench.models.registry import ModelVersion, load_model

MODEL_FILE = "model.onnx"
CONTRACT_FILE = "model.json"
LABEL, PROBABILITIES, PREDICTION = "label", "probabilities", "prediction"
# Names of tensors inside the graph; no feature may take them.
_INTERNAL = "__wb_"
_FEATURES, _LABEL_INDEX, _CLASSES = (
    f"{_INTERNAL}{n}" for n in ("features", "label_index", "classes")
)
_SKLEARN_OPSET = {"": 17, "ai.onnx.ml": 3}
_LIGHTGBM_OPSET = 15  # the highest onnxmltools' LightGBM converter supports
_NEVER_FED = "\0"  # a string imputer's missing value that no input carries
_REASON_CHARS = 300  # converters put whole attribute tables in their messages


def one_line(exc: BaseException) -> str:
    """An exception's message cut to its first line and a few hundred characters."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= _REASON_CHARS else f"{text[:_REASON_CHARS]}…"


def export_onnx(
    version: ModelVersion,
    folder: Path,
    *,
    tolerance: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Write `model.onnx` and `model.json` into the empty `folder`, after checking
    that onnxruntime predicts the hold-out rows within `tolerance` of the native
    model; raises WorkbenchError (writing nothing) when it does not."""
    if not tolerance >= 0:
        raise UsageError(f"--tolerance must be zero or more, got {tolerance}")
    holdout = holdout_features(version)
    schema = version.schema
    if version.framework not in ("lightgbm", "sklearn"):
        raise WorkbenchError(
            f"cannot export {version.ref} to ONNX: only LightGBM and scikit-learn models "
            f"convert, not {version.framework}"
        )
    _check_names(schema)
    ort = _import_onnx(version.framework)
    native = load_model(version)
    progress(f"converting the {version.framework} model to ONNX")
    if version.framework == "lightgbm":
        model = _from_lightgbm(native.model, schema)
        converter = "onnxmltools"
    else:
        model = _from_sklearn(native.model, schema, version.ref)
        converter = "skl2onnx"
    contract = _contract(version, schema, converter)

    rows = with_gaps(holdout)
    progress(f"checking it with onnxruntime on {len(rows)} rows")
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        check = compare(session, native, rows, contract)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types; say why
        raise WorkbenchError(
            f"cannot export {version.ref} to ONNX: onnxruntime cannot run the converted "
            f"model: {one_line(exc)}"
        ) from exc
    summary = _describe(check, tolerance)
    if not _passes(check, tolerance):
        raise WorkbenchError(
            f"{version.ref}: the ONNX model does not match the native one: {summary}; "
            "nothing was written (a larger --tolerance accepts it)"
        )
    contract["check"] = {**check, "tolerance": tolerance}
    (folder / MODEL_FILE).write_bytes(model.SerializeToString())
    (folder / CONTRACT_FILE).write_text(json.dumps(contract, indent=2, default=str) + "\n")
    outputs = ", ".join(contract["outputs"].values())
    return {
        **check,
        "tolerance": tolerance,
        "converter": contract["converter"],
        "notes": [
            f"checked with onnxruntime on {check['rows']} rows ({len(holdout)} hold-out rows, "
            f"then the same rows with one feature missing in each): {summary}",
            "inputs: one [N, 1] tensor per feature, float32 for numeric (NaN when missing), "
            f'string for categorical ("" when missing); outputs: {outputs}; see {CONTRACT_FILE}',
        ],
    }


def feeds(frame: pd.DataFrame, contract: dict[str, Any]) -> dict[str, np.ndarray]:
    """The onnxruntime inputs for a raw table, following `model.json`'s contract."""
    missing = [i["name"] for i in contract["inputs"] if i["name"] not in frame.columns]
    if missing:
        raise WorkbenchError(f"the data lacks the model's features: {', '.join(missing)}")
    out = {}
    for spec in contract["inputs"]:
        values = frame[spec["name"]]
        if spec["type"] == "string":
            column = values.astype("string").fillna("").to_numpy(dtype=object)
        else:
            column = pd.to_numeric(values, errors="coerce").to_numpy(
                dtype=np.float32, na_value=np.nan
            )
        out[spec["name"]] = column.reshape(-1, 1)
    return out


def compare(session: Any, native: Any, frame: pd.DataFrame, contract: dict) -> dict[str, Any]:
    """How far the ONNX model's predictions are from the native model's on `frame`.
    For classifiers the difference is in class probabilities, and the share of
    rows where the labels agree is given too."""
    names = [o.name for o in session.get_outputs()]
    found = dict(zip(names, session.run(None, feeds(frame, contract)), strict=True))
    pred, proba = native.predict(frame)
    outputs = contract["outputs"]
    result: dict[str, Any] = {"rows": len(frame), "label_agreement": None}
    if "label" in outputs:
        labels = np.asarray(found[outputs["label"]]).ravel().astype(str)
        result["label_agreement"] = float(np.mean(labels == np.asarray(pred).astype(str)))
    if proba is None and "label" in outputs:
        result["max_abs_diff"] = None  # nothing to compare but the labels
    else:
        ours = found[outputs["probabilities" if "label" in outputs else "prediction"]]
        result["max_abs_diff"] = max_abs_diff(ours, pred if proba is None else proba)
    return result


def _passes(check: dict[str, Any], tolerance: float) -> bool:
    if check["max_abs_diff"] is None:
        return check["label_agreement"] == 1.0
    return check["max_abs_diff"] <= tolerance


def _describe(check: dict[str, Any], tolerance: float) -> str:
    parts = []
    if check["max_abs_diff"] is not None:
        what = "class probabilities" if check["label_agreement"] is not None else "predictions"
        parts.append(
            f"max |difference| in {what} {check['max_abs_diff']:.3g} (tolerance {tolerance:g})"
        )
    if check["label_agreement"] is not None:
        parts.append(f"labels agree on {check['label_agreement']:.1%} of rows")
    return ", ".join(parts)


def _import_onnx(framework: str) -> Any:
    """onnxruntime, once onnx and the framework's converter are known to import."""
    converter = "onnxmltools" if framework == "lightgbm" else "skl2onnx"
    try:
        importlib.import_module("onnx")
        importlib.import_module(converter)
        import onnxruntime
    except ImportError as exc:
        raise WorkbenchError(
            f"exporting to ONNX needs onnx, onnxruntime and {converter} ({exc}): "
            "install workbench-mlops[onnx]"
        ) from exc
    return onnxruntime


def _check_names(schema: dict[str, Any]) -> None:
    taken = {LABEL, PROBABILITIES, PREDICTION}
    clash = [
        f["name"]
        for f in schema["features"]
        if f["name"] in taken or f["name"].startswith(_INTERNAL)
    ]
    if clash:
        raise WorkbenchError(
            f"cannot export to ONNX: feature {clash[0]!r} has the name of one of the ONNX "
            "model's own tensors; rename the column and retrain"
        )


def _contract(version: ModelVersion, schema: dict[str, Any], converter: str) -> dict[str, Any]:
    """What a user needs to feed the model and read its outputs."""
    import onnx

    inputs = []
    for feature in schema["features"]:
        if feature["kind"] == "categorical":
            spec = {"type": "string", "missing": "", "categories": feature["categories"]}
        else:
            spec = {"type": "float32", "missing": "NaN"}
        inputs.append({"name": feature["name"], "shape": [None, 1], **spec})
    classes = schema["target"].get("classes")
    outputs = (
        {"label": LABEL, "probabilities": PROBABILITIES}
        if classes is not None
        else {"prediction": PREDICTION}
    )
    return {
        "model": version.ref,
        "file": MODEL_FILE,
        "framework": version.framework,
        "framework_version": version.framework_version,
        "task": schema["target"].get("task"),
        "target": schema["target"]["name"],
        "classes": classes,
        "inputs": inputs,
        "outputs": outputs,
        "unknown_categories": (
            "treated as missing" if version.framework == "lightgbm" else "encoded as all zeros"
        ),
        "converter": {
            converter: metadata.version(converter),
            "onnx": onnx.__version__,
        },
    }


def _from_sklearn(pipeline: Any, schema: dict[str, Any], ref: str) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator

    pipeline = copy.deepcopy(pipeline)
    for step in _estimators(pipeline):
        _refuse_unsupported(step, ref)
        _missing_as_empty_string(step)
    kinds = {"categorical": StringTensorType, "numeric": FloatTensorType}
    initial_types = [(f["name"], kinds[f["kind"]]([None, 1])) for f in schema["features"]]
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    classifier = schema["target"].get("classes") is not None
    try:
        with _missing_flags_as_ints():
            model = convert_sklearn(
                pipeline,
                initial_types=initial_types,
                options={id(final): {"zipmap": False}} if classifier else None,
                target_opset=_SKLEARN_OPSET,
            )
    except (MissingConverter, MissingShapeCalculator) as exc:
        named = re.search(r"<class '([^']+)'>", str(exc))
        what = named.group(1) if named else type(final).__name__
        raise WorkbenchError(
            f"cannot export {ref} to ONNX: skl2onnx {metadata.version('skl2onnx')} has no "
            f"converter for {what}; export it as a bundle or in MLflow format instead"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - converters fail in many ways; say which
        raise WorkbenchError(
            f"cannot export {ref} to ONNX: skl2onnx {metadata.version('skl2onnx')} failed on "
            f"{type(final).__name__}: {one_line(exc)}; use --format bundle or mlflow"
        ) from exc
    # skl2onnx makes input names identifiers ("mean radius" -> "mean_radius"); the
    # contract is the feature names, which ONNX allows as they are.
    for given, (name, _) in zip(list(model.graph.input), initial_types, strict=True):
        _rename(model.graph, given.name, name)
    names = [LABEL, PROBABILITIES] if classifier else [PREDICTION]
    for output, name in zip(list(model.graph.output), names, strict=False):
        _rename(model.graph, output.name, name)
    return model


@contextlib.contextmanager
def _missing_flags_as_ints() -> Iterator[None]:
    """skl2onnx's HistGradientBoosting converter records each leaf's missing-value
    flag as a Python bool, which the protobuf that onnx builds on refuses in an
    integer list ("Expected an int, got a boolean"); hand it over as an int."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(
            *args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs
        )

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def _refuse_unsupported(step: Any, ref: str) -> None:
    """What skl2onnx cannot convert, named in one line before it fails at length."""
    categorical = getattr(step, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        raise WorkbenchError(
            f"cannot export {ref} to ONNX: {type(step).__name__} with categorical_features is "
            f"not supported by skl2onnx {metadata.version('skl2onnx')}; use --format bundle "
            "or mlflow (the workbench's pipeline one-hot encodes categories, so the default "
            "categorical_features needs no change)"
        )


def _estimators(estimator: Any) -> Iterator[Any]:
    """The estimator and every fitted one inside it (pipelines, column transformers)."""
    yield estimator
    for _, step in getattr(estimator, "steps", []):
        yield from _estimators(step)
    for _, transformer, _ in getattr(estimator, "transformers_", []):
        if not isinstance(transformer, str):  # "drop" / "passthrough"
            yield from _estimators(transformer)


def _missing_as_empty_string(step: Any) -> None:
    """A missing category reaches the pipeline as None, as in training, and is fed
    to ONNX as "" (a string tensor holds no None): tell the encoders so. An
    imputer whose missing value is NaN never sees one there (None is not NaN to
    it), but skl2onnx converts a string imputer only with a string missing value,
    so it gets one that is never fed."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    # A transformer of no columns (no categorical features) is never fitted.
    statistics = getattr(step, "statistics_", None)
    if isinstance(step, SimpleImputer) and statistics is not None and statistics.dtype == object:
        if step.missing_values is None:
            step.missing_values = ""
        elif isinstance(step.missing_values, float) and math.isnan(step.missing_values):
            step.missing_values = _NEVER_FED
    elif isinstance(step, OneHotEncoder) and hasattr(step, "categories_"):
        step.categories_ = [
            np.array(["" if c is None else c for c in categories], dtype=categories.dtype)
            for categories in step.categories_
        ]


def _from_lightgbm(booster: Any, schema: dict[str, Any]) -> Any:
    import onnx
    import onnxmltools
    from onnx import TensorProto, helper, numpy_helper
    from onnxmltools.convert.common.data_types import FloatTensorType

    features = schema["features"]
    try:
        core = onnxmltools.convert_lightgbm(
            booster,
            initial_types=[(_FEATURES, FloatTensorType([None, len(features)]))],
            zipmap=False,
            target_opset=_LIGHTGBM_OPSET,
        )
    except Exception as exc:  # noqa: BLE001 - converters fail in many ways; say which
        raise WorkbenchError(
            f"onnxmltools cannot convert this LightGBM model: {one_line(exc)}; "
            "use --format bundle or mlflow"
        ) from exc

    inputs, nodes, columns = [], [], []
    for i, feature in enumerate(features):
        name = feature["name"]
        if feature["kind"] == "categorical":
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, [None, 1]))
            code = f"{_INTERNAL}code_{i}"
            nodes.append(
                helper.make_node(
                    "LabelEncoder",
                    [name],
                    [code],
                    domain="ai.onnx.ml",
                    keys_strings=[str(c) for c in feature["categories"]],
                    values_floats=[float(k) for k in range(len(feature["categories"]))],
                    default_float=float("nan"),
                )
            )
            columns.append(code)
        else:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 1]))
            columns.append(name)
    nodes.append(helper.make_node("Concat", columns, [_FEATURES], axis=1))

    graph = core.graph
    classes = schema["target"].get("classes")
    initializers = list(graph.initializer)
    if classes is None:
        _rename(graph, graph.output[0].name, PREDICTION)
        outputs = [helper.make_tensor_value_info(PREDICTION, TensorProto.FLOAT, [None, 1])]
        nodes.extend(graph.node)
    else:
        label, probabilities = graph.output[0].name, graph.output[1].name
        _rename(graph, label, _LABEL_INDEX)
        _rename(graph, probabilities, PROBABILITIES)
        nodes.extend(graph.node)
        values = np.asarray(classes, dtype=object if isinstance(classes[0], str) else None)
        initializers.append(numpy_helper.from_array(values, _CLASSES))
        nodes.append(helper.make_node("Gather", [_CLASSES, _LABEL_INDEX], [LABEL], axis=0))
        label_type = helper.np_dtype_to_tensor_dtype(values.dtype)
        outputs = [
            helper.make_tensor_value_info(LABEL, label_type, [None]),
            helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [None, len(classes)]),
        ]
    opsets = {o.domain: o.version for o in core.opset_import}
    model = helper.make_model(
        helper.make_graph(nodes, "workbench_lightgbm", inputs, outputs, initializers),
        opset_imports=[
            helper.make_opsetid("", opsets.get("", 1)),
            helper.make_opsetid("ai.onnx.ml", max(opsets.get("ai.onnx.ml", 1), 2)),
        ],
        producer_name="workbench",
    )
    model.ir_version = core.ir_version
    onnx.checker.check_model(model)
    return model


def _rename(graph: Any, old: str, new: str) -> None:
    """Rename a tensor wherever the graph takes, produces, uses or outputs it."""
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in [*graph.input, *graph.output]:
        if value.name == old:
            value.name = new
