"""The built-in trainers on the real sample tables: messy columns, saved models
that load without running code and predict like the trained model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _data_fixtures import train_inline
from wbtest import REPO, wb_auto, wb_inprocess

from workbench.trainers.tabular import infer_task


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto

pytestmark = pytest.mark.slow


def _train(cli, folder: Path) -> tuple[dict, str]:
    """Register the project and train it with its built-in trainer, in this process:
    what the trainer makes of the table is the point here, not the run's processes
    (a supervised run that fails is the one-line-reason test below). Returns
    `run show --json` and what the trainer wrote to its log."""
    cli("project", "add", str(folder), check=True)
    run_id, log = train_inline(folder)
    info = json.loads(cli("run", "show", str(run_id), "--json", check=True).stdout)
    return info, log


def _train_sample(cli, tmp_path: Path, sample: str) -> dict:
    folder = tmp_path / sample
    shutil.copytree(REPO / "sample_projects" / sample, folder)
    info, _ = _train(cli, folder)
    info["artifact_paths"] = {a["name"]: Path(a["path"]) for a in info["artifacts"]}
    info["folder"] = folder
    return info


def test_lightgbm_model_keeps_categories_and_predicts_new_rows(cli, tmp_path):
    import lightgbm

    info = _train_sample(cli, tmp_path, "penguins-lightgbm")
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

    info = _train_sample(cli, tmp_path, "autompg-sklearn")
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
    info, log = _train(cli, folder)
    assert info["params"]["_task"] == "regression"
    assert info["params"]["_rows_train"] + info["params"]["_rows_test"] == 180
    assert info["metrics"]["r2"] > 0.95
    assert "dropping 20 rows with no 'y' value" in log


def test_bad_estimator_params_fail_before_a_run_is_queued(cli, tmp_path):
    folder = tmp_path / "badparams"
    shutil.copytree(REPO / "sample_projects" / "autompg-sklearn", folder)
    cli("project", "add", str(folder), check=True)
    # In this process: a start refused before queueing leaves no process behind
    # (wb_inprocess fails the test if it does).
    result = wb_inprocess("run", "start", "autompg", "--set", "n_trees=5", "--wait")
    assert result.returncode == 2
    assert "unknown RandomForestRegressor parameter 'n_trees'" in result.stderr
    assert "n_estimators" in result.stderr  # the parameters it does take
    assert "Traceback" not in result.stderr
    assert json.loads(cli("run", "list", "--json", check=True).stdout) == []


def test_an_integer_coded_binary_target_trains_with_lightgbm_and_predicts_ints(cli, tmp_path):
    folder = tmp_path / "binary"
    (folder / "data").mkdir(parents=True)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=300), "colour": rng.choice(["red", "blue"], 300)})
    noise = rng.normal(scale=0.4, size=300)
    frame["label"] = (frame["x"] + (frame["colour"] == "red") + noise > 0.5).astype(int)
    frame["label_again"] = frame["label"]  # a pasted copy of the label must not train
    frame.to_csv(folder / "data" / "train.csv", index=False)
    (folder / "workbench.toml").write_text(
        '[data]\ntrain = "data/train.csv"\ntarget = "label"\n'
        '[train]\ntrainer = "lightgbm"\nparams = { n_estimators = 20 }\n'
    )
    info, logs = _train(cli, folder)
    assert info["status"] == "succeeded"
    assert info["params"]["_task"] == "classification"
    assert 0.8 < info["metrics"]["accuracy"] < 1.0  # learnt, but not from the copied label
    assert "integer target with 2 distinct values -> classification" in logs
    assert "not using column 'label_again': a copy of the target" in logs

    bundle = tmp_path / "bundle"
    cli("model", "export", "binary", "--format", "bundle", "-o", str(bundle), check=True)
    out = tmp_path / "predictions.csv"
    batch = frame.drop(columns=["label", "label_again"]).head(50)
    batch.to_csv(tmp_path / "batch.csv", index=False)
    cli("predict", str(bundle), str(tmp_path / "batch.csv"), "-o", str(out), check=True)
    predicted = pd.read_csv(out)
    column = next(c for c in predicted.columns if c not in batch.columns and "proba" not in c)
    assert pd.api.types.is_integer_dtype(predicted[column])
    assert set(predicted[column]) <= {0, 1}


def test_a_count_target_is_regression_with_the_reason_in_the_log(cli, tmp_path):
    folder = tmp_path / "counts"
    (folder / "data").mkdir(parents=True)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 3, size=400)
    frame = pd.DataFrame({"x": x, "visits": rng.poisson(np.exp(x))})
    frame.to_csv(folder / "data" / "train.csv", index=False)
    (folder / "workbench.toml").write_text(
        '[data]\ntrain = "data/train.csv"\ntarget = "visits"\n'
        '[train]\ntrainer = "sklearn:sklearn.ensemble.HistGradientBoostingRegressor"\n'
        "params = { max_iter = 20 }\n"
    )
    info, logs = _train(cli, folder)
    assert info["params"]["_task"] == "regression"
    assert info["metrics"]["r2"] > 0.5
    distinct = frame["visits"].nunique()
    assert f"integer target with {distinct} distinct values -> regression" in logs


def test_a_failed_trainer_leaves_a_one_line_reason_that_run_show_prints(cli, tmp_path):
    folder = tmp_path / "oneclass"
    (folder / "data").mkdir(parents=True)
    pd.DataFrame({"x": np.arange(40.0), "y": ["spam"] * 40}).to_csv(
        folder / "data" / "train.csv", index=False
    )
    (folder / "workbench.toml").write_text(
        '[data]\ntrain = "data/train.csv"\ntarget = "y"\n[train]\ntrainer = "lightgbm"\n'
    )
    cli("project", "add", str(folder), check=True)
    result = cli("run", "start", "oneclass", "--wait")
    assert result.returncode == 1
    run_id = result.stdout.split()[0]
    info = json.loads(cli("run", "show", run_id, "--json", check=True).stdout)
    assert info["status"] == "failed"
    assert info["message"] == (
        "the target 'y' has one value only ('spam'); classification needs at least two classes"
    )
    assert info["message"] in cli("run", "show", run_id, check=True).stdout.replace("\n", " ")


@pytest.mark.parametrize(
    ("values", "task", "reason"),
    [
        (list(range(52)) * 3, "regression", "integer target with 52 distinct values -> regression"),
        ([0, 1] * 10, "classification", "integer target with 2 distinct values"),
        ([1, 2] * 10, "classification", "integer target with 2 distinct values"),
        ([0.0, 1.0] * 10, "classification", "whole-number target with 2 distinct values"),
        ([True, False] * 5, "classification", "boolean target"),
        (["yes", "no"] * 5, "classification", "text target with 2 distinct values"),
        ([0.5, 1.25, 3.0] * 5, "regression", "fractional values"),
        (list(range(15)) * 6, "classification", "a guess: set [project] task = \"regression\""),
        ([0, 1, 2, 3, 4, 5, 6] * 2 + [1, 2, 3], "regression", "too few rows per value"),
        ([3, 4, 5, 6, 8] * 20, "classification", "integer target with 5 distinct values"),
    ],
)
def test_explain_task_names_the_rule_and_the_override(values, task, reason):
    from workbench.trainers.tabular import explain_task

    inferred, why = explain_task(pd.Series(values))
    assert (inferred, infer_task(pd.Series(values))) == (task, task)
    assert reason in why
    assert "[project] task" in why and "\n" not in why


def _table(**columns):
    from workbench.trainers.tabular import prepare_table

    return prepare_table(pd.DataFrame(columns), "y")


def test_columns_not_meant_as_features_are_left_out_with_the_reason():
    rng = np.random.default_rng(3)
    n = 60
    y = rng.choice(["a", "b", "c"], n)
    table = _table(
        x=rng.normal(size=n),
        colour=rng.choice(["red", "blue"], n),
        y=y,
        y_copy=y,
        y_code=pd.Series(y).map({"a": 10, "b": 20, "c": 30}),
        customer_id=rng.permutation(n) + 1000,
        row=np.arange(n),
        name=[f"person {i}" for i in range(n)],
        constant=[7] * n,
        empty=[np.nan] * n,
        when=pd.date_range("2024-01-01", periods=n).astype(str),
        year=rng.integers(1990, 2020, n),
        flag=rng.choice([True, False], n),
    )
    assert table.task == "classification"
    assert sorted(table.numeric) == ["flag", "x", "year"]
    assert table.categorical == ["colour"]
    assert "copy of the target" in table.dropped["y_copy"]
    assert "relabelled copy of the target" in table.dropped["y_code"]
    assert "ID-like" in table.dropped["customer_id"]
    assert "ID-like" in table.dropped["row"]
    assert "ID-like" in table.dropped["name"]
    assert table.dropped["constant"] == "one value only (7)"
    assert table.dropped["empty"] == "every value is missing"
    assert "dates" in table.dropped["when"]
    assert list(table.features.columns) == ["x", "colour", "year", "flag"]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"x": range(20), "y": ["a"] * 20}, "has one value only ('a')"),
        ({"x": range(20), "y": [np.nan] * 20}, "the target 'y' has no values"),
        ({"x": range(5), "y": [0, 1, 0, 1, 0]}, "only 5 usable rows; need at least 10"),
        ({"x": [np.nan] * 20, "y": [0, 1] * 10}, "no column is usable as a feature"),
        ({"z": range(20)}, "no target column 'y'"),
        ({"x": range(20), "y": pd.date_range("2024-01-01", periods=20)}, "holds dates"),
        ({"x": range(20), "y": [1.5, np.inf] * 10}, "infinite values"),
    ],
)
def test_data_that_cannot_train_is_refused_with_the_reason(columns, message):
    from workbench.trainers.tabular import TrainingDataError, prepare_table

    with pytest.raises(TrainingDataError) as refused:
        prepare_table(pd.DataFrame(columns), "y")
    assert message in refused.value.message
    assert "\n" not in refused.value.message


def test_a_regression_task_on_a_text_target_is_refused():
    from workbench.trainers.tabular import TrainingDataError, prepare_table

    frame = pd.DataFrame({"x": range(20), "y": ["low", "high"] * 10})
    with pytest.raises(TrainingDataError, match="not numeric"):
        prepare_table(frame, "y", "regression")


@pytest.mark.parametrize(
    ("labels", "kind"),
    [([0, 1], "i"), ([False, True], "b"), ([0.0, 1.0], "f"), (["no", "yes"], "O"), ([1, "a"], "O")],
)
def test_predicted_labels_keep_the_labels_dtype(labels, kind):
    from workbench.models.bundle_runtime import _labels
    from workbench.trainers.tabular import label_array

    assert label_array(labels).dtype.kind == kind
    assert _labels(labels).dtype.kind == kind


@pytest.mark.parametrize(
    ("trainer", "params", "message"),
    [
        ("lightgbm", {"bogus_key": 3}, "unknown LightGBM parameter 'bogus_key'"),
        ("lightgbm", {"num_leave": 3}, "did you mean num_leaves"),
        ("lightgbm", {"num_leaves": "abc"}, "num_leaves = 'abc': expected an integer"),
        ("lightgbm", {"learning_rate": "fast"}, "learning_rate = 'fast': expected a number"),
        ("lightgbm", {"n_estimators": 2.5}, "n_estimators = 2.5: expected an integer"),
        ("lightgbm", {"num_leaves": 1}, "num_leaves = 1: must be > 1"),
        ("lightgbm", {"max_depth": 10**30}, "too large"),
        ("lightgbm", {"bagging_fraction": float("nan")}, "expected a finite number"),
        ("lightgbm", {"num_leaves": "9" * 5000}, "a number of 5000 digits is too large"),
        ("sklearn:sklearn.linear_model.Ridge", {"alpa": 1.0}, "did you mean alpha"),
        ("sklearn:sklearn.linear_model.Ridge", {"alpha": "abc"}, "'alpha' parameter of Ridge"),
        ("sklearn:sklearn.linear_model.Ridge", {"alpha": 10**40}, "too large"),
    ],
)
def test_bad_params_are_refused_with_what_was_expected(trainer, params, message):
    from workbench.trainers.params import ParamError, check_params

    with pytest.raises(ParamError) as refused:
        check_params(trainer, params)
    assert message in refused.value.message
    assert "\n" not in refused.value.message


def test_good_params_and_the_workbenchs_own_keys_pass():
    from workbench.trainers.params import check_params

    check_params(
        "lightgbm",
        {"n_estimators": 20, "learning_rate": 0.1, "subsample": 0.8, "subsample_freq": 1,
         "min_child_samples": 5, "deterministic": True, "class_weight": "balanced",
         "_pipeline": 3},
    )
    check_params("sklearn:sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 20})
    check_params("script", {"anything": "goes"})


def test_metrics_for_a_task_without_importing_scikit_learn():
    import subprocess
    import sys

    code = (
        "import sys; from workbench.trainers.metrics import metrics_for_task as m;"
        "print(m('classification'), m('regression'), 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "['accuracy', 'f1', 'roc_auc', 'log_loss'] ['rmse', 'mae', 'r2'] False"
    )


def test_a_regressor_for_a_classification_target_names_the_classifier():
    from workbench.core.errors import UsageError
    from workbench.trainers.sklearn_trainer import SklearnTrainer
    from workbench.trainers.tabular import prepare_table

    table = prepare_table(pd.DataFrame({"x": np.arange(20) / 3, "y": ["a", "b"] * 10}), "y")
    with pytest.raises(UsageError) as refused:
        SklearnTrainer(table, {}, 0, "sklearn.ensemble.HistGradientBoostingRegressor")
    assert "use sklearn:sklearn.ensemble.HistGradientBoostingClassifier" in refused.value.message
