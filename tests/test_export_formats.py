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
from wbtest import NETGUARD, REPO, wb, wb_auto

from workbench.models import registry
from workbench.store.db import open_store

pytestmark = pytest.mark.slow


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto

SAMPLES = {"penguins": "penguins-lightgbm", "autompg": "autompg-sklearn"}
# LightGBM multiclass, a scikit-learn regressor, and a scikit-learn classifier
# (penguins again: its `sex` column has missing values in training).
PROJECTS = {**SAMPLES, "penguins-rf": "penguins-lightgbm"}
FOREST = {
    'name = "penguins"': 'name = "penguins-rf"',
    'trainer = "lightgbm"': 'trainer = "sklearn:sklearn.ensemble.RandomForestClassifier"',
    "n_estimators = 150, learning_rate = 0.05, num_leaves = 15, min_child_samples = 5": (
        "n_estimators = 50, max_depth = 6"
    ),
}

# Runs in a fresh interpreter with MLflow only, as a user of the export would.
LOAD_WITH_MLFLOW = """
import json, sys
import pandas as pd
import mlflow.models, mlflow.pyfunc

path, batch, out = sys.argv[1:]
model = mlflow.pyfunc.load_model(path)
found = {"pred": model.predict(pd.read_csv(batch)).tolist()}
flavors = mlflow.models.Model.load(path).flavors
if "lightgbm" in flavors:
    import mlflow.lightgbm
    found["native_flavor"] = type(mlflow.lightgbm.load_model(path)).__name__
else:
    import mlflow.sklearn
    found["native_flavor"] = type(mlflow.sklearn.load_model(path)).__name__
found["workbench_imported"] = "workbench" in sys.modules
open(out, "w").write(json.dumps(found))
"""


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three projects trained once for the module, in a store of its own."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", str(root / "home"))
        env.setenv("PYTHONPATH", str(NETGUARD))
        env.setenv("NO_COLOR", "1")
        for project, sample in PROJECTS.items():
            folder = root / project
            shutil.copytree(REPO / "sample_projects" / sample, folder)
            if project == "penguins-rf":
                _edit(folder / "workbench.toml", FOREST)
            wb("project", "add", str(folder), check=True)
            wb("run", "start", project, "--wait", check=True)
    return root / "home"


def _edit(config: Path, replacements: dict[str, str]) -> None:
    text = config.read_text()
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    config.write_text(text)


@pytest.fixture
def home(trained_home: Path, wb_home: Path) -> Path:
    """This test's own copy of the trained store."""
    shutil.copytree(trained_home, wb_home)
    return wb_home


def _native(project: str):
    store = open_store()
    try:
        return registry.load_model(registry.resolve(store, project))
    finally:
        store.close()


def _batch(project: str) -> Path:
    return REPO / "sample_projects" / PROJECTS[project] / "data" / "incoming" / "batch_01_clean.csv"


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


@pytest.mark.parametrize("project", list(PROJECTS))
def test_mlflow_export_loads_with_mlflow_and_predicts_like_the_native_model(
    home, cli, tmp_path, project
):
    out = tmp_path / "mlflow-model"
    report = _export(cli, project, "mlflow", out)
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

    batch_file = tmp_path / "batch.csv"
    _with_holes(pd.read_csv(_batch(project)), native).to_csv(batch_file, index=False)
    found_file = tmp_path / "found.json"
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_WITH_MLFLOW, str(out), str(batch_file), str(found_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    assert loaded.returncode == 0, loaded.stderr
    found = json.loads(found_file.read_text())
    assert not found["workbench_imported"]  # the shipped loader stands alone
    assert found["native_flavor"] == ("Booster" if native.framework == "lightgbm" else "Pipeline")
    batch = pd.read_csv(batch_file)
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
