"""Both built-in trainers on real public tables that installed packages ship
(scikit-learn, statsmodels, vega_datasets, palmerpenguins): every common kind of
target (binary as 0/1, bool, 0.0/1.0, text and 1/2; multiclass ints and text;
regression; counts) and of column (a copy of the label, ID-like, constant,
dates, missing values, high-cardinality text).

Each table trains through the built-in trainer's own code (`train()`, in this
process inside `wb.start_run`, as a supervised run would run it), the task
inferred is checked, the registered version is exported as a bundle and its
predictions are checked to come back in the labels' own dtype; some are also
exported for MLflow (loaded by mlflow.pyfunc) and ONNX (checked by onnxruntime).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

ROUNDS = 20  # boosting rounds: enough to learn, quick on two cores
MAX_ROWS = 400


@pytest.fixture(autouse=True)
def one_thread():
    """OpenMP's worker threads spin while they wait; on a busy two-core machine one is faster."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _sklearn(name: str) -> pd.DataFrame:
    import sklearn.datasets

    return getattr(sklearn.datasets, f"load_{name}")(as_frame=True).frame


def _statsmodels(name: str) -> pd.DataFrame:
    import statsmodels.datasets  # the datasets alone, not the models statsmodels.api imports

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(statsmodels.datasets, name).load_pandas().data


def _vega(name: str) -> pd.DataFrame:
    from vega_datasets import local_data

    return getattr(local_data, name)()


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def _iris_with_names() -> pd.DataFrame:
    frame = _sklearn("iris")
    frame["species"] = np.array(["setosa", "versicolor", "virginica"])[frame["target"]]
    return frame


def _cancer_with_copy() -> pd.DataFrame:
    frame = _sklearn("breast_cancer")
    frame["diagnosis"] = frame["target"]  # the label pasted twice: must not train on it
    return frame


def _spector_one_two() -> pd.DataFrame:
    frame = _statsmodels("spector")
    frame["GRADE"] = frame["GRADE"].astype(int) + 1  # labels 1 and 2
    return frame


def _cars_american() -> pd.DataFrame:
    frame = _vega("cars")
    frame["american"] = frame.pop("Origin") == "USA"
    return frame


@dataclass
class Case:
    id: str
    load: Callable[[], pd.DataFrame]
    target: str
    task: str
    label_kind: str | None = None  # numpy dtype kind of the predictions for classification
    dropped: dict[str, str] = field(default_factory=dict)  # column -> part of the reason
    mlflow: bool = False
    onnx: bool = False
    # trainers whose ONNX export is refused: float32 splits of this data's tiny feature values
    # move predictions past the tolerance
    onnx_refused: tuple[str, ...] = ()


CASES = [
    # scikit-learn's bundled tables
    Case(
        "sklearn-iris",
        _iris_with_names,
        "target",
        "classification",
        "i",
        {"species": "relabelled copy of the target"},
        onnx=True,
    ),
    Case("sklearn-wine", lambda: _sklearn("wine"), "target", "classification", "i"),
    Case(
        "sklearn-breast-cancer",
        _cancer_with_copy,
        "target",
        "classification",
        "i",
        {"diagnosis": "copy of the target"},
        mlflow=True,
    ),
    Case(
        "sklearn-diabetes",
        lambda: _sklearn("diabetes"),
        "target",
        "regression",
        onnx=True,
        onnx_refused=("sklearn",),
    ),
    Case(
        "sklearn-digits",
        lambda: _sklearn("digits"),
        "target",
        "classification",
        "i",
        {"pixel_0_0": "one value only"},
    ),
    Case("sklearn-linnerud", lambda: _sklearn("linnerud"), "Weight", "regression"),
    # statsmodels' datasets
    Case(
        "statsmodels-spector-float01",
        lambda: _statsmodels("spector"),
        "GRADE",
        "classification",
        "f",
        mlflow=True,
    ),
    Case("statsmodels-spector-1-2", _spector_one_two, "GRADE", "classification", "i"),
    Case("statsmodels-anes96-party", lambda: _statsmodels("anes96"), "PID", "classification", "f"),
    Case(
        "statsmodels-randhie-counts",
        lambda: _statsmodels("randhie").sample(MAX_ROWS, random_state=0).reset_index(),
        "mdvis",
        "regression",
        dropped={"index": "ID-like"},
        onnx=True,
    ),
    Case("statsmodels-cpunish-counts", lambda: _statsmodels("cpunish"), "EXECUTIONS", "regression"),
    Case(
        "statsmodels-grunfeld",
        lambda: _statsmodels("grunfeld"),
        "invest",
        "regression",
        mlflow=True,
    ),
    Case(
        "statsmodels-statecrime",
        lambda: _statsmodels("statecrime").reset_index(),
        "murder",
        "regression",
        dropped={"state": "ID-like"},
    ),
    # vega_datasets' local tables
    Case(
        "vega-cars-origin",
        lambda: _vega("cars"),
        "Origin",
        "classification",
        "O",
        {"Year": "dates", "Name": "too many distinct values"},
        mlflow=True,
        onnx=True,
    ),
    Case(
        "vega-cars-bool",
        _cars_american,
        "american",
        "classification",
        "b",
        {"Year": "dates"},
        onnx=True,
    ),
    Case("vega-cars-cylinders", lambda: _vega("cars"), "Cylinders", "classification", "i"),
    Case(
        "vega-seattle-weather",
        lambda: _vega("seattle_weather"),
        "weather",
        "classification",
        "O",
        {"date": "dates"},
    ),
    Case("vega-stocks", lambda: _vega("stocks"), "price", "regression", dropped={"date": "dates"}),
    # palmerpenguins
    Case("penguins-species", _penguins, "species", "classification", "O", mlflow=True, onnx=True),
    Case("penguins-sex", _penguins, "sex", "classification", "O"),
    Case(
        "penguins-biscoe",
        lambda: _penguins().query("island == 'Biscoe'"),
        "species",
        "classification",
        "O",
        {"island": "one value only"},
    ),
]

TRAINERS = {
    "lightgbm": lambda task: ("lightgbm", {"n_estimators": ROUNDS, "min_child_samples": 5}),
    "sklearn": lambda task: (
        "sklearn:sklearn.ensemble.HistGradientBoosting"
        + ("Classifier" if task == "classification" else "Regressor"),
        {"max_iter": ROUNDS},
    ),
}


def _project(folder: Path, frame: pd.DataFrame, case: Case, trainer: str, params: dict) -> str:
    name = f"{case.id}-{trainer.partition(':')[0]}"
    (folder / "data").mkdir(parents=True)
    frame.to_csv(folder / "data" / "train.csv", index=False)
    lines = [
        f'[project]\nname = "{name}"',
        f'[data]\ntrain = "data/train.csv"\ntarget = "{case.target}"',
        f'[train]\ntrainer = "{trainer}"',
        "[train.params]",
        *(f"{k} = {v}" for k, v in params.items()),
    ]
    (folder / "workbench.toml").write_text("\n".join(lines) + "\n")
    return name


@pytest.mark.parametrize("trainer_kind", list(TRAINERS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_real_table_trains_and_predicts_through_its_exports(case, trainer_kind, tmp_path, capsys):
    import workbench as wb
    from workbench.core.errors import WorkbenchError
    from workbench.models import bundle_runtime as runtime
    from workbench.models.export import export_model
    from workbench.models.registry import resolve
    from workbench.store import open_store
    from workbench.trainers.__main__ import train

    frame = case.load()
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=0)
    trainer, params = TRAINERS[trainer_kind](case.task)
    name = _project(tmp_path / "project", frame, case, trainer, params)
    with wb.start_run(tmp_path / "project", params):
        train()
    log = capsys.readouterr().out

    store = open_store()
    version = resolve(store, name)
    schema = version.schema
    assert version.task == case.task, log
    assert schema["target"]["task"] == case.task
    for column, reason in case.dropped.items():
        assert reason in schema["dropped"].get(column, ""), schema["dropped"]
        assert f"not using column {column!r}" in log
    assert not {f["name"] for f in schema["features"]} & set(schema["dropped"])

    truth = pd.read_csv(tmp_path / "project" / "data" / "train.csv")
    labelled = truth[truth[case.target].notna()]
    features = labelled.drop(columns=case.target)

    export_model(store, version, "bundle", tmp_path / "bundle")
    bundle = runtime.load(tmp_path / "bundle")
    pred, proba = bundle.predict(features)
    assert len(pred) == len(features)
    if case.task == "classification":
        classes = schema["target"]["classes"]
        assert pred.dtype.kind == case.label_kind, (pred.dtype, classes)
        assert set(pred.tolist()) <= set(classes)
        assert proba.shape == (len(features), len(classes))
        # better than always answering the most common class, on the rows it trained on
        accuracy = float((pred == labelled[case.target].to_numpy()).mean())
        assert accuracy > labelled[case.target].value_counts(normalize=True).iloc[0] - 0.05
    else:
        assert pred.dtype.kind == "f" and np.isfinite(pred).all()
        r2 = 1 - np.mean((pred - labelled[case.target]) ** 2) / labelled[case.target].var()
        assert r2 > 0

    if case.mlflow:
        import mlflow.pyfunc

        export_model(store, version, "mlflow", tmp_path / "mlflow")
        theirs = np.asarray(mlflow.pyfunc.load_model(str(tmp_path / "mlflow")).predict(features))
        if case.task == "classification":
            assert (theirs.astype(str) == pred.astype(str)).all()
        else:
            assert np.allclose(theirs.astype(float), pred, rtol=1e-5, atol=1e-6)

    if case.onnx and trainer_kind in case.onnx_refused:
        with pytest.raises(WorkbenchError) as refused:
            export_model(store, version, "onnx", tmp_path / "onnx")
        assert "does not match the native one" in refused.value.message
        assert "\n" not in refused.value.message
        assert not (tmp_path / "onnx").exists()
    elif case.onnx:
        report = export_model(store, version, "onnx", tmp_path / "onnx")
        assert any("onnxruntime" in note for note in report["notes"]), report["notes"]
