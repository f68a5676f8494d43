"""The built-in trainers on the real sample tables: messy columns, saved models
that load without running code and predict like the trained model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from wbtest import REPO

from workbench.trainers.tabular import infer_task

pytestmark = pytest.mark.slow


def _train_sample(cli, tmp_path: Path, sample: str, name: str) -> dict:
    folder = tmp_path / sample
    shutil.copytree(REPO / "sample_projects" / sample, folder)
    cli("project", "add", str(folder), check=True)
    run_id = cli("run", "start", name, "--wait", check=True).stdout.split()[0]
    info = json.loads(cli("run", "show", run_id, "--json", check=True).stdout)
    info["artifact_paths"] = {a["name"]: Path(a["path"]) for a in info["artifacts"]}
    info["folder"] = folder
    return info


def test_lightgbm_model_keeps_categories_and_predicts_new_rows(cli, tmp_path):
    import lightgbm

    info = _train_sample(cli, tmp_path, "penguins-lightgbm", "penguins")
    assert info["status"] == "succeeded"
    assert info["metrics"]["f1"] > 0.85
    schema = json.loads(info["artifact_paths"]["feature_schema.json"].read_text())
    kinds = {f["name"]: f for f in schema["features"]}
    assert kinds["island"]["kind"] == "categorical"
    assert kinds["island"]["categories"] == ["Biscoe", "Dream", "Torgersen"]
    assert kinds["sex"]["kind"] == "categorical"
    assert kinds["body_mass_g"]["kind"] == "numeric"
    assert schema["target"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]

    booster = lightgbm.Booster(model_file=str(info["artifact_paths"]["model.txt"]))
    batch = pd.read_csv(info["folder"] / "data" / "incoming" / "batch_01_clean.csv")
    truth = batch.pop("species")
    for feature in schema["features"]:
        if feature["kind"] == "categorical":
            batch[feature["name"]] = pd.Categorical(
                batch[feature["name"]], categories=feature["categories"]
            )
    proba = booster.predict(batch[[f["name"] for f in schema["features"]]])
    assert proba.shape == (len(batch), 3)
    predicted = np.asarray(schema["target"]["classes"])[proba.argmax(axis=1)]
    assert (predicted == truth.to_numpy()).mean() > 0.85


def test_sklearn_pipeline_imputes_encodes_and_loads_with_skops(cli, tmp_path):
    import skops.io

    info = _train_sample(cli, tmp_path, "autompg-sklearn", "autompg")
    assert info["status"] == "succeeded"
    assert info["metrics"]["r2"] > 0.7
    assert info["params"]["_task"] == "regression"
    model_file = info["artifact_paths"]["model.skops"]
    pipeline = skops.io.load(model_file, trusted=skops.io.get_untrusted_types(file=model_file))
    batch = pd.read_csv(info["folder"] / "data" / "incoming" / "batch_01_clean.csv")
    truth = batch.pop("mpg")
    batch.loc[0, "horsepower"] = np.nan  # a missing value is imputed
    batch.loc[1, "origin"] = "Mars"  # an unseen category is ignored, not an error
    predicted = pipeline.predict(batch)
    assert np.isfinite(predicted).all()
    assert np.sqrt(np.mean((predicted - truth.to_numpy()) ** 2)) < 5.0


def test_task_is_inferred_from_the_target():
    assert infer_task(pd.Series(["a", "b", "a"])) == "classification"
    assert infer_task(pd.Series([0, 1, 1, 0])) == "classification"
    assert infer_task(pd.Series([True, False])) == "classification"
    assert infer_task(pd.Series(np.linspace(0, 1, 50))) == "regression"
    assert infer_task(pd.Series(range(100))) == "regression"  # too many integer values


def test_a_target_with_missing_values_drops_those_rows(cli, tmp_path):
    folder = tmp_path / "gappy"
    (folder / "data").mkdir(parents=True)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "colour": rng.choice(["red", "blue"], 200)})
    frame["y"] = frame["x"] * 3 + (frame["colour"] == "red") + rng.normal(scale=0.1, size=200)
    frame.loc[::10, "y"] = np.nan
    frame.to_csv(folder / "data" / "train.csv", index=False)
    (folder / "workbench.toml").write_text(
        '[data]\ntrain = "data/train.csv"\ntarget = "y"\n'
        '[train]\ntrainer = "sklearn:sklearn.linear_model.Ridge"\n'
    )
    cli("project", "add", str(folder), check=True)
    run_id = cli("run", "start", "gappy", "--wait", check=True).stdout.split()[0]
    info = json.loads(cli("run", "show", run_id, "--json", check=True).stdout)
    assert info["params"]["_task"] == "regression"
    assert info["params"]["_rows_train"] + info["params"]["_rows_test"] == 180
    assert info["metrics"]["r2"] > 0.95
    assert "dropping 20 rows with no 'y' value" in cli("run", "logs", run_id, check=True).stdout


def test_bad_estimator_params_fail_the_run_with_a_clear_message(cli, tmp_path):
    folder = tmp_path / "badparams"
    shutil.copytree(REPO / "sample_projects" / "autompg-sklearn", folder)
    cli("project", "add", str(folder), check=True)
    result = cli("run", "start", "autompg", "--set", "n_trees=5", "--wait")
    assert result.returncode == 1
    logs = cli("run", "logs", result.stdout.split()[0], check=True).stdout
    assert "bad [train].params for sklearn.ensemble.RandomForestRegressor" in logs
    assert "n_trees" in logs
