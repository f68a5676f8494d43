"""MLflow and ONNX exports of real trained models, through the real CLI: the
exported model is loaded by MLflow itself (in a fresh interpreter) or by
onnxruntime, and must predict like the workbench's native model, missing values
and unseen categories included. A model that drifts past the tolerance, or that
skl2onnx cannot convert, is refused with a clear message and leaves nothing
behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import _export_fixtures
from wbtest import REPO, wb_auto

from workbench.models import registry
from workbench.store.db import open_store

pytestmark = pytest.mark.slow


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto

SAMPLES = ("penguins", "autompg")
# LightGBM multiclass, a scikit-learn regressor, and a scikit-learn classifier
# (penguins again: its `sex` column has missing values in training).
PROJECTS = (*SAMPLES, "penguins-rf")

# Runs in a fresh interpreter with MLflow only, as a user of the export would: one
# interpreter loads every export given (pairs of export folder and batch file).
LOAD_WITH_MLFLOW = """
import json, sys
import pandas as pd
import mlflow.models, mlflow.pyfunc

out, pairs = sys.argv[1], sys.argv[2:]
found = {}
for path, batch in zip(pairs[::2], pairs[1::2]):
    model = mlflow.pyfunc.load_model(path)
    one = {"pred": model.predict(pd.read_csv(batch)).tolist()}
    flavors = mlflow.models.Model.load(path).flavors
    if "lightgbm" in flavors:
        import mlflow.lightgbm
        one["native_flavor"] = type(mlflow.lightgbm.load_model(path)).__name__
    else:
        import mlflow.sklearn
        one["native_flavor"] = type(mlflow.sklearn.load_model(path)).__name__
    found[path] = one
found["workbench_imported"] = "workbench" in sys.modules
open(out, "w").write(json.dumps(found))
"""


@pytest.fixture(scope="module")
def trained_home(shared_cache: Path) -> Path:
    """The three projects trained once, in a store of their own."""
    return _export_fixtures.trained_home(shared_cache, PROJECTS)


def _edit(config: Path, replacements: dict[str, str]) -> None:
    _export_fixtures.edit(config, replacements)


@pytest.fixture
def home(trained_home: Path, wb_home: Path) -> Path:
    """This test's own copy of the trained store."""
    return _export_fixtures.copy_home(trained_home, wb_home)


def _native(project: str):
    store = open_store()
    try:
        return registry.load_model(registry.resolve(store, project))
    finally:
        store.close()


def _batch(project: str) -> Path:
    sample = _export_fixtures.PROJECTS[project][0]
    return REPO / "sample_projects" / sample / "data" / "incoming" / "batch_01_clean.csv"


def _with_holes(frame: pd.DataFrame, native) -> pd.DataFrame:
    """A copy with a category never seen in training (row 0) and missing values in
    every categorical (row 1) and float (row 2) feature."""
    frame = frame.copy()
    for feature in native.schema["features"]:
        name = feature["name"]
        if feature["kind"] == "categorical":
            frame[name] = frame[name].astype(object).where(frame.index != 0, "never-seen")
            frame[name] = frame[name].mask(frame.index == 1)
        elif pd.api.types.is_float_dtype(frame[name]):
            frame[name] = frame[name].mask(frame.index == 2)
    return frame


def _export(cli, project: str, fmt: str, output: Path, *args: str) -> dict:
    result = cli(
        "model", "export", project, "--format", fmt, "-o", str(output), "--json", *args, check=True
    )
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def mlflow_exports(
    trained_home: Path, shared_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """Each project exported to MLflow through the CLI, in a copy of the trained store,
    and every export loaded by MLflow in one fresh interpreter (MLflow's import is
    most of such an interpreter's work). Per project: the export's report, its
    folder, the batch given to MLflow and what MLflow predicted."""
    root = tmp_path_factory.mktemp("mlflow-exports")
    exports = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", str(_export_fixtures.copy_home(trained_home, root / "home")))
        env.setenv("WORKBENCH_CACHE", str(shared_cache))
        env.setenv("NO_COLOR", "1")
        for project in PROJECTS:
            out = root / project / "mlflow-model"
            report = _export(wb_auto, project, "mlflow", out)
            batch_file = root / project / "batch.csv"
            _with_holes(pd.read_csv(_batch(project)), _native(project)).to_csv(
                batch_file, index=False
            )
            exports[project] = {"report": report, "out": out, "batch": batch_file}
    found_file = root / "found.json"
    pairs = [str(p) for e in exports.values() for p in (e["out"], e["batch"])]
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_WITH_MLFLOW, str(found_file), *pairs],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    assert loaded.returncode == 0, loaded.stderr
    found = json.loads(found_file.read_text())
    for export in exports.values():
        export["found"] = found[str(export["out"])]
        export["workbench_imported"] = found["workbench_imported"]
    return exports


@pytest.mark.parametrize("project", list(PROJECTS))
def test_mlflow_export_loads_with_mlflow_and_predicts_like_the_native_model(
    home, mlflow_exports, project
):
    export = mlflow_exports[project]
    out, report = export["out"], export["report"]
    assert report["path"] == str(out) and report["rows_checked"] > 0
    native = _native(project)
    if native.classes:
        assert report["label_agreement"] == 1.0
    else:
        assert report["max_abs_diff"] <= 1e-9
    mlmodel = (out / "MLmodel").read_text()
    assert "signature:" in mlmodel and (out / "input_example.json").is_file()
    requirements = (out / "requirements.txt").read_text().split()
    assert requirements and all("==" in r for r in requirements)
    assert not [p for p in out.rglob("*") if p.suffix in (".pkl", ".pickle", ".cloudpickle")]
    if native.framework == "sklearn":
        assert "serialization_format: skops" in mlmodel

    found = export["found"]
    assert not export["workbench_imported"]  # the shipped loader stands alone
    assert found["native_flavor"] == ("Booster" if native.framework == "lightgbm" else "Pipeline")
    batch = pd.read_csv(export["batch"])
    expected, _ = native.predict(batch)
    assert len(found["pred"]) == len(batch) > 10
    if native.classes:
        assert found["pred"] == list(expected)
    else:
        np.testing.assert_allclose(found["pred"], expected, rtol=0, atol=1e-9)


def _feeds(frame: pd.DataFrame, contract: dict) -> dict[str, np.ndarray]:
    """What a user does from model.json alone (independent of the exporter's own code)."""
    feeds = {}
    for spec in contract["inputs"]:
        values = frame[spec["name"]]
        if spec["type"] == "string":
            column = np.array(
                [spec["missing"] if pd.isna(v) else str(v) for v in values], dtype=object
            )
        else:
            column = values.astype("float64").to_numpy().astype(np.float32)
        feeds[spec["name"]] = column.reshape(-1, 1)
    return feeds


@pytest.mark.parametrize("project", list(PROJECTS))
def test_onnx_export_runs_in_onnxruntime_within_tolerance(home, cli, tmp_path, project):
    import onnxruntime as ort

    out = tmp_path / "onnx-model"
    report = _export(cli, project, "onnx", out)
    assert 0 <= report["max_abs_diff"] <= 1e-4 and report["tolerance"] == 1e-4
    assert report["rows"] > 0 and any("max |difference|" in n for n in report["notes"])
    contract = json.loads((out / "model.json").read_text())
    assert contract["model"] == f"{project}@1" and contract["check"]["rows"] == report["rows"]

    native = _native(project)
    batch = _with_holes(pd.read_csv(_batch(project)), native)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, _feeds(batch, contract)), strict=True))
    pred, proba = native.predict(batch)
    if contract["classes"]:
        assert report["label_agreement"] == 1.0
        assert list(outputs[contract["outputs"]["label"]]) == list(pred)
        got = outputs[contract["outputs"]["probabilities"]]
        assert np.abs(got - proba).max() <= 1e-4
    else:
        got = outputs[contract["outputs"]["prediction"]].ravel()
        assert np.abs(got - pred).max() <= 1e-4


def test_onnx_export_past_the_tolerance_fails_and_leaves_nothing(home, cli, tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    for project in SAMPLES:
        out = exports / f"{project}-onnx"
        result = cli(
            "model", "export", project, "--format", "onnx", "-o", str(out), "--tolerance", "0"
        )
        assert result.returncode == 1, result.stderr
        assert "does not match the native one" in result.stderr
        assert "(tolerance 0)" in result.stderr and "nothing was written" in result.stderr
        assert "Traceback" not in result.stderr
    assert list(exports.iterdir()) == []  # no output, no staging folder

    out = exports / "negative"
    negative = cli(
        "model", "export", "penguins", "--format", "onnx", "-o", str(out), "--tolerance", "-1"
    )
    assert negative.returncode == 2 and "--tolerance" in negative.stderr


def test_a_model_skl2onnx_cannot_convert_is_refused_clearly(home, cli, tmp_path):
    folder = tmp_path / "kernel"
    shutil.copytree(REPO / "sample_projects" / "autompg-sklearn", folder)
    _edit(
        folder / "workbench.toml",
        {
            'name = "autompg"': 'name = "kernel"',
            "sklearn.ensemble.RandomForestRegressor": "sklearn.kernel_ridge.KernelRidge",
            "params = { n_estimators = 200, max_depth = 8, random_state = 0 }": "params = {}",
        },
    )
    cli("project", "add", str(folder), check=True)
    cli("run", "start", "kernel", "--wait", check=True)

    out = tmp_path / "kernel-onnx"
    result = cli("model", "export", "kernel", "--format", "onnx", "-o", str(out))
    assert result.returncode == 1
    assert "no converter for sklearn.kernel_ridge.KernelRidge" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    # The same model still exports to MLflow, and predicts the same there.
    report = _export(cli, "kernel", "mlflow", tmp_path / "kernel-mlflow")
    assert report["max_abs_diff"] <= 1e-9


def test_hist_gradient_boosting_exports_to_an_onnx_file_and_force_replaces_only_exports(
    home, cli, tmp_path
):
    folder = tmp_path / "hgb"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    _edit(
        folder / "workbench.toml",
        {
            'name = "penguins"': 'name = "hgb"',
            'trainer = "lightgbm"': (
                'trainer = "sklearn:sklearn.ensemble.HistGradientBoostingClassifier"'
            ),
            "n_estimators = 150, learning_rate = 0.05, num_leaves = 15, min_child_samples = 5": (
                "max_iter = 20"
            ),
        },
    )
    cli("project", "add", str(folder), check=True)
    cli("run", "start", "hgb", "--wait", check=True)

    out = tmp_path / "model.onnx"
    report = _export(cli, "hgb", "onnx", out)
    assert out.is_file() and report["label_agreement"] == 1.0  # a file, not a folder
    assert json.loads((tmp_path / "model.onnx.json").read_text())["model"] == "hgb@1"
    _export(cli, "hgb", "onnx", out, "--force")  # a previous export: replaced
    assert out.is_file()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused = cli("model", "export", "hgb", "-o", str(mine), "--force")
    assert refused.returncode == 2 and "is not a previous export" in refused.stderr
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1
    bundle = tmp_path / "bundle"
    cli("model", "export", "hgb", "-o", str(bundle), check=True)
    cli("model", "export", "hgb", "-o", str(bundle), "--force", check=True)
    assert (bundle / "manifest.json").is_file()
