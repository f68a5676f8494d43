"""The XGBoost trainer: found through its entry point, trains the penguins sample in
a real supervised run, registers a model that predicts like the native booster, and
picks CUDA only when xgboost has it and a GPU is visible."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost
from workbench_xgboost import trainer as xgb_trainer

from workbench.demo import samples_dir

PARAMS = "params = { n_estimators = 40, learning_rate = 0.2, max_depth = 4 }"


def _penguins(tmp_path: Path) -> Path:
    folder = tmp_path / "penguins"
    shutil.copytree(samples_dir() / "penguins-lightgbm", folder)
    config = folder / "workbench.toml"
    lines = config.read_text().replace('trainer = "lightgbm"', 'trainer = "xgboost"').splitlines()
    config.write_text("\n".join(PARAMS if ln.startswith("params") else ln for ln in lines))
    return folder


@pytest.mark.slow
def test_trains_penguins_and_its_model_predicts_like_the_native_booster(cli, tmp_path):
    listed = json.loads(cli("plugins", "list", "--json", check=True).stdout)
    plugin = next(p for p in listed if p["name"] == "xgboost")
    assert plugin["status"] == "ok" and plugin["source"] == "entry point"
    assert plugin["contributes"]["trainers"] == ["xgboost"]

    folder = _penguins(tmp_path)
    cli("project", "add", str(folder), check=True)
    run_id = int(cli("run", "start", "penguins", "--wait", check=True).stdout.split()[0])
    run = json.loads(cli("run", "show", str(run_id), "--json", check=True).stdout)
    assert run["status"] == "succeeded", Path(run["log"]).read_text()
    assert run["params"]["_device"] in ("cpu", "cuda")
    assert f"trains on {run['params']['_device']}" in Path(run["log"]).read_text()
    assert run["metrics"]["f1"] > 0.9
    curve = json.loads(
        cli("run", "metrics", str(run_id), "valid_mlogloss", "--json", check=True).stdout
    )
    assert "valid_mlogloss" in json.dumps(curve)
    artifacts = {a["name"]: a for a in run["artifacts"]}
    assert "model.json" in artifacts
    json.loads(Path(artifacts["model.json"]["path"]).read_text())  # XGBoost's JSON model

    versions = json.loads(cli("model", "list", "penguins", "--json", check=True).stdout)
    assert [(v["version"], v["framework"], v["aliases"]) for v in versions] == [
        (1, "xgboost", ["champion"])
    ]
    shown = json.loads(cli("model", "show", "penguins", "--json", check=True).stdout)
    assert shown["framework_version"] == xgboost.__version__

    from workbench.models.registry import load_model, resolve
    from workbench.store import open_store

    store = open_store()
    try:
        version = resolve(store, "penguins")
        holdout = pd.read_parquet(version.holdout_path)
        truth = holdout.pop("species")
        pred, proba = load_model(version).predict(holdout)
    finally:
        store.close()
    schema = version.schema
    booster = xgboost.Booster()
    booster.load_model(bytearray(version.model_path.read_bytes()))
    native = holdout.copy()
    for feature in schema["features"]:
        if feature["kind"] == "categorical":
            native[feature["name"]] = pd.Categorical(
                native[feature["name"]], categories=feature["categories"]
            )
    expected = booster.predict(xgboost.DMatrix(native, enable_categorical=True))
    np.testing.assert_allclose(proba, expected, rtol=1e-6, atol=1e-7)
    classes = np.asarray(schema["target"]["classes"], dtype=object)
    assert list(pred) == list(classes[expected.argmax(axis=1)])
    assert (pred == truth.to_numpy()).mean() > 0.9


def _table(task: str):
    from workbench.trainers.tabular import Table

    rng = np.random.default_rng(0)
    n = 300
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(size=n)
    features = pd.DataFrame({"colour": colour.astype(object), "size": size})
    signal = size + (colour == "red") * 2.0
    target = pd.Series(signal > 1 if task == "classification" else signal, name="y")
    if task == "classification":
        target = target.map({True: "yes", False: "no"})
    return Table(features, target, task, numeric=["size"], categorical=["colour"])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_binary_and_regression_fit_save_and_load(tmp_path, task):
    from workbench.trainers.tabular import feature_schema

    table = _table(task)
    trainer = xgb_trainer.XGBoostTrainer(table, {"n_estimators": 30, "device": "cpu"}, seed=1)
    x, y = table.features, table.target
    curves = trainer.fit(x[:200], y[:200], x[200:], y[200:])
    name = "valid_logloss" if task == "classification" else "valid_rmse"
    assert list(curves) == [name] and len(curves[name]) == 30
    assert curves[name][-1] < curves[name][0]  # it learns
    pred, proba = trainer.predict(x[200:])
    if task == "classification":
        assert trainer.classes == ["no", "yes"] and proba.shape == (100, 2)
        assert (pred == y[200:].to_numpy()).mean() > 0.85
    else:
        assert proba is None and np.corrcoef(pred, y[200:])[0, 1] > 0.9

    schema = feature_schema(table, trainer.classes)
    model = xgb_trainer.XGBoostTrainer.load(schema, trainer.save(tmp_path))
    # A category never seen in training is missing, not an error.
    frame = x[200:].assign(colour=x["colour"][200:].where(x.index[200:] != 250, "purple"))
    loaded_pred, loaded_proba = model.predict(frame)
    unchanged = frame.index != 250
    assert list(loaded_pred[unchanged]) == list(pred[unchanged])


def _fake_nvml(monkeypatch, count: int | Exception) -> None:
    fake = types.ModuleType("pynvml")

    def device_count() -> int:
        if isinstance(count, Exception):
            raise count
        return count

    fake.nvmlInit = lambda: None
    fake.nvmlShutdown = lambda: None
    fake.nvmlDeviceGetCount = device_count
    monkeypatch.setitem(sys.modules, "pynvml", fake)


@pytest.mark.parametrize(
    "cuda_build,gpus,expected",
    [
        (True, 1, "cuda"),
        (True, 0, "cpu"),
        (True, RuntimeError("NVML Shared Library Not Found"), "cpu"),
        (False, 2, "cpu"),
    ],
)
def test_device_is_cuda_only_with_a_cuda_build_and_a_visible_gpu(
    monkeypatch, cuda_build, gpus, expected
):
    monkeypatch.setattr(xgboost, "build_info", lambda: {"USE_CUDA": cuda_build})
    _fake_nvml(monkeypatch, gpus)

    device, reason = xgb_trainer.pick_device()

    assert device == expected and reason
