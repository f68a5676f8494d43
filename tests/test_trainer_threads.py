"""Small tables fit on one thread, and what LightGBM accepts is cached per version:
the two things that keep a `run start` on a small project from paying seconds of
CPU for nothing on a busy machine."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from workbench.trainers import threads
from workbench.trainers.lightgbm_trainer import LightGBMTrainer
from workbench.trainers.tabular import Table


def _table(rows: int) -> Table:
    features = pd.DataFrame({"x": np.arange(rows, dtype=float)})
    return Table(features, pd.Series(np.arange(rows) % 2), "classification", ["x"])


@pytest.mark.parametrize(
    ("rows", "params", "expected"),
    [
        (240, {}, 1),
        (threads.SMALL_TABLE_ROWS - 1, {"learning_rate": 0.1}, 1),
        (threads.SMALL_TABLE_ROWS, {}, None),  # a large table keeps every core
        (240, {"n_jobs": 2}, None),  # the params choose
        (240, {"num_threads": 4}, None),
        (240, {"nthread": 4}, None),
    ],
)
def test_fit_threads(rows, params, expected):
    assert threads.fit_threads(rows, params) == expected


def test_limited_caps_every_native_pool_inside_the_block_only():
    import lightgbm  # noqa: F401 - loads its OpenMP runtime, so there is a pool to cap

    with threads.limited(1):
        assert {pool["num_threads"] for pool in threadpool_info()} == {1}
    with threads.limited(None):  # nothing to cap: the libraries' own defaults
        inside = [pool["num_threads"] for pool in threadpool_info()]
    assert inside == [pool["num_threads"] for pool in threadpool_info()]


def test_lightgbm_gets_one_thread_on_a_small_table_unless_the_params_say():
    assert LightGBMTrainer(_table(300), {}, seed=1).params["n_jobs"] == 1
    assert LightGBMTrainer(_table(300), {"num_threads": 2}, seed=1).params.get("n_jobs") is None
    big = LightGBMTrainer(_table(threads.SMALL_TABLE_ROWS), {}, seed=1)
    assert "n_jobs" not in big.params


# Runs check_params in a fresh interpreter; with "blocked", importing LightGBM fails.
CHECK = """
import json, sys
if sys.argv[1] == "blocked":
    sys.modules["lightgbm"] = None
from workbench.trainers.params import ParamError, check_params
try:
    check_params("lightgbm", json.loads(sys.argv[2]))
    print("ok")
except ParamError as exc:
    print("refused:", exc.message)
"""


def _check(mode: str, params: dict) -> str:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, mode, json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_lightgbm_params_are_checked_from_the_cache_without_importing_lightgbm(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()
    assert _check("free", {"n_estimators": 20, "learning_rate": 0.1}) == "ok"
    [cached] = (tmp_path / "cache").glob("lightgbm-*-params.json")
    # Known now: names, defaults and this accepted set, with LightGBM unimportable.
    assert _check("blocked", {"n_estimators": 20, "learning_rate": 0.1}) == "ok"
    assert "did you mean num_leaves" in _check("blocked", {"num_leavs": 3})
    assert "expected an integer" in _check("blocked", {"num_leaves": "abc"})
    # A set never accepted still goes to LightGBM's own parser, which refuses it.
    assert "must be > 1" in _check("free", {"num_leaves": -3})
    assert '"num_leaves": -3' not in cached.read_text()
    # A damaged cache is made again, not trusted.
    cached.write_text('{"format": 1, "names": [], "accepted": "everything"}')
    assert "must be > 1" in _check("free", {"num_leaves": -3})
    assert json.loads(cached.read_text())["names"]["num_leaf"] == "num_leaves"


# Runs check_params for scikit-learn estimators in a fresh interpreter, one check per
# (estimator, params) pair given, in order; with "blocked", importing scikit-learn fails.
# The cache is a file, read by every check: checks in one interpreter see each other's.
CHECK_SKLEARN = """
import json, sys
if sys.argv[1] == "blocked":
    sys.modules["sklearn"] = None
from workbench.core.errors import WorkbenchError
from workbench.trainers.params import check_params
for estimator, params in json.loads(sys.argv[2]):
    try:
        check_params("sklearn:" + estimator, params)
        print("ok")
    except WorkbenchError as exc:
        print("refused:", exc.message.replace(chr(10), " "))
"""
FOREST = "sklearn.ensemble.RandomForestRegressor"


def _check_sklearn(mode: str, *checks: tuple[str, dict]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", CHECK_SKLEARN, mode, json.dumps(checks)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


def test_sklearn_params_that_passed_are_checked_from_the_cache_without_importing_it(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    first, unknown, bad, bad_again, other = _check_sklearn(
        "free",
        (FOREST, {"n_estimators": 20}),
        (FOREST, {"n_estimatorz": 3}),
        (FOREST, {"max_depth": -2}),
        (FOREST, {"max_depth": -2}),
        # An estimator from another library: its version is not the one in the
        # cache's name, so it is always checked afresh and never kept.
        ("lightgbm.LGBMRegressor", {"n_estimators": 5}),
    )
    assert first == "ok" and other == "ok"
    # Refused sets are refused by scikit-learn each time, and never kept.
    assert "did you mean n_estimators" in unknown
    assert "max_depth" in bad and "max_depth" in bad_again
    [cached] = (tmp_path / "cache").glob("sklearn-*-params.json")
    text = cached.read_text()
    assert "n_estimatorz" not in text and "-2" not in text and "LGBMRegressor" not in text

    # The same estimator and parameters again: passed from the cache, no import.
    # Anything else goes to scikit-learn, which cannot be imported here.
    same, changed = _check_sklearn(
        "blocked", (FOREST, {"n_estimators": 20}), (FOREST, {"n_estimators": 21})
    )
    assert same == "ok"
    assert "cannot import the estimator" in changed

    # A damaged cache is not trusted, and is made again.
    cached.write_text('{"format": 1, "accepted": "everything"}')
    [damaged] = _check_sklearn("blocked", (FOREST, {"n_estimators": 20}))
    assert "cannot import the estimator" in damaged
    assert _check_sklearn("free", (FOREST, {"n_estimators": 20})) == ["ok"]
    assert _check_sklearn("blocked", (FOREST, {"n_estimators": 20})) == ["ok"]
