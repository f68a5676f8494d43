"""Generated tables of mixed column kinds, missing values and every kind of target:
each either trains with a built-in trainer and predicts the same through its
exported bundle, in the labels' own dtype, or is refused with a one-line reason.
Never any other exception (a traceback in a user's run log)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """OpenMP's worker threads spin while they wait; on a busy two-core machine one is
    faster. The trainers fit small tables on one thread themselves; this holds for the
    predictions of the export's checks and of the tests too."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


# target kind -> (its values, the first rows' values: every kind of label present)
TARGETS = {
    "int 0/1": (st.sampled_from([0, 1]), [0, 1, 1, 0]),
    "int 1/2": (st.sampled_from([1, 2]), [2, 1, 1, 2]),
    "bool": (st.booleans(), [True, False, False, True]),
    "float 0/1": (st.sampled_from([0.0, 1.0]), [1.0, 0.0, 0.0, 1.0]),
    "yes/no": (st.sampled_from(["yes", "no"]), ["no", "yes", "yes", "no"]),
    "int classes": (st.sampled_from([3, 5, 7]), [3, 5, 7, 3]),
    "text classes": (st.sampled_from(["red", "green", "blue"]), ["red", "green", "blue", "red"]),
    "float": (st.floats(-100, 100, allow_nan=False), [0.5, -2.25, 99.75, 7.125]),
    "count": (st.integers(0, 60), [0, 60, 7, 31]),
}
FEATURES = {
    "float": st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.just(np.nan)),
    "int": st.integers(-5, 5),
    "bool": st.booleans(),
    "category": st.sampled_from(["a", "b", "c", None]),
    "text": st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=4),
    "date": st.dates().map(lambda d: d.isoformat()),
    "constant": st.just(4.0),
    "empty": st.just(None),
}
TRAINERS = {
    "lightgbm": {"n_estimators": 10, "min_child_samples": 2},
    "sklearn:sklearn.ensemble.HistGradientBoosting{kind}": {"max_iter": 10},
}
_names = itertools.count()


@st.composite
def tables(draw, target: str) -> pd.DataFrame:
    rows = draw(st.integers(12, 40))
    strategy, first = TARGETS[target]
    values = (first + draw(st.lists(strategy, min_size=rows, max_size=rows)))[:rows]
    if draw(st.booleans()):  # some labels missing
        gaps = draw(st.lists(st.integers(0, rows - 1), max_size=rows // 3))
        values = [None if i in gaps else v for i, v in enumerate(values)]
    # one usable feature always, so that most tables train; the drawn ones add the mess
    frame = {"label": values, "x": np.arange(rows) * 0.37 % 5}
    kinds = draw(st.lists(st.sampled_from(sorted(FEATURES)), min_size=1, max_size=4))
    for i, kind in enumerate(kinds):
        frame[f"{kind}_{i}"] = draw(st.lists(FEATURES[kind], min_size=rows, max_size=rows))
    return pd.DataFrame(frame)


def _train(folder: Path, frame: pd.DataFrame, trainer: str, params: dict):
    """Train like a supervised run (in this process); the registered version, or the error."""
    import workbench as wb
    from workbench.models.registry import resolve
    from workbench.store import open_store
    from workbench.trainers.__main__ import train
    from workbench.trainers.tabular import explain_task

    name = f"generated-{next(_names)}"
    (folder / "data").mkdir(parents=True)
    frame.to_csv(folder / "data" / "train.csv", index=False)
    labels = pd.read_csv(folder / "data" / "train.csv")["label"]
    kind = "Classifier" if explain_task(labels)[0] == "classification" else "Regressor"
    (folder / "workbench.toml").write_text(
        f'[project]\nname = "{name}"\n[data]\ntrain = "data/train.csv"\ntarget = "label"\n'
        f'[train]\ntrainer = "{trainer.format(kind=kind)}"\n'
    )
    with wb.start_run(folder, params):
        train()
    return resolve(open_store(), name)


@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_generated_table_trains_and_round_trips_or_is_refused_in_one_line(
    target, data, tmp_path
):
    from workbench.core.errors import WorkbenchError
    from workbench.models import bundle_runtime as runtime
    from workbench.models.export import export_model
    from workbench.models.registry import load_model
    from workbench.store import open_store

    frame = data.draw(tables(target), label="table")
    trainer = data.draw(st.sampled_from(sorted(TRAINERS)), label="trainer")
    folder = tmp_path / f"t{next(_names)}"
    try:
        version = _train(folder / "project", frame, trainer, TRAINERS[trainer])
    except WorkbenchError as refused:
        assert refused.message.strip() and "\n" not in refused.message
        return
    export_model(open_store(), version, "bundle", folder / "bundle")
    bundle = runtime.load(folder / "bundle")
    table = pd.read_csv(folder / "project" / "data" / "train.csv")
    features = table.drop(columns="label")
    pred, proba = bundle.predict(features)
    ours, _ = load_model(version).predict(features)
    assert len(pred) == len(features)
    classes = version.schema["target"].get("classes")
    if classes is None:
        assert pred.dtype.kind == "f"
        assert np.allclose(pred, ours.astype(float), rtol=1e-6, atol=1e-9)
        return
    labels = table["label"].dropna().infer_objects()  # e.g. booleans read with gaps
    expected = "O" if labels.dtype.kind in "OUT" else labels.dtype.kind
    assert pred.dtype.kind == expected, (pred.dtype, labels.dtype)
    assert set(pred.tolist()) <= set(classes)
    assert (pred == ours).all()
    assert np.allclose(np.asarray(proba).sum(axis=1), 1.0)
