"""The built-in trainer's run, handed a RunLog: the trainers import nothing above
them, and whatever implements the RunLog (the tracking API in a real run) gets
the params, metrics and artifacts."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from workbench import tracking
from workbench.core import env, paths
from workbench.trainers import failure, process
from workbench.trainers.tabular import TrainingDataError


class Recorder:
    """A RunLog that keeps what it is given."""

    def __init__(self, folder: Path, run_id: int, params: dict[str, Any]) -> None:
        self.folder, self.run_id, self._params = folder, run_id, params
        self.params_logged: dict[str, Any] = {}
        self.metrics: list[tuple[str, float, int | None]] = []
        self.artifacts: dict[str, str | None] = {}

    def active_run(self) -> SimpleNamespace:
        return SimpleNamespace(id=self.run_id)

    def project_dir(self) -> Path:
        return self.folder

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def train_file(self) -> Path:
        return self.folder / "data" / "train.csv"

    def log_params(self, values, /) -> None:
        self.params_logged.update(values)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.metrics.append((key, value, step))

    def log_metrics(self, values, step: int | None = None) -> None:
        self.metrics.extend((k, v, step) for k, v in values.items())

    def log_artifact(self, path, name: str | None = None, kind: str | None = None) -> str:
        self.artifacts[Path(path).name] = kind
        return "0" * 64


def _project(folder: Path, labels: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    (folder / "data").mkdir(parents=True)
    frame = pd.DataFrame({"x": rng.normal(size=len(labels)), "label": labels})
    frame.to_csv(folder / "data" / "train.csv", index=False)
    (folder / "workbench.toml").write_text(
        '[project]\nname = "p"\n[data]\ntrain = "data/train.csv"\ntarget = "label"\n'
        '[train]\ntrainer = "lightgbm"\nparams = { n_estimators = 5 }\n'
    )
    return folder


def test_a_run_writes_through_the_run_log_it_is_handed(tmp_path):
    labels = np.where(np.arange(80) % 2 == 0, "yes", "no")
    run = Recorder(_project(tmp_path / "p", labels), 7, {"n_estimators": 5, "_sweep": 1})

    process.train(run)

    assert run.params_logged["_task"] == "classification"
    assert run.params_logged["_rows_train"] + run.params_logged["_rows_test"] == 80
    final = {k for k, _, step in run.metrics if step is None}
    assert {"accuracy", "f1", "roc_auc"} <= final
    assert any(step == 5 for _, _, step in run.metrics)  # the curve, one point per round
    assert run.artifacts == {
        "model.txt": "model",
        "feature_schema.json": "schema",
        "holdout.parquet": "evaluation",
    }
    outputs = paths.run_dir(7) / "outputs"
    schema = json.loads((outputs / "feature_schema.json").read_text())
    assert schema["framework"] == "lightgbm" and schema["model_file"] == "model.txt"
    assert sorted(p.name for p in outputs.iterdir()) == sorted(run.artifacts)


def test_a_failed_run_leaves_its_one_line_reason(tmp_path, monkeypatch):
    monkeypatch.setenv(env.RUN_ID, "9")
    run = Recorder(_project(tmp_path / "p", np.array(["only"] * 40)), 9, {})

    with pytest.raises(TrainingDataError):
        process.train(run)

    reason = (paths.run_dir(9) / failure.REASON_FILE).read_text()
    assert reason.count("\n") == 1 and reason.endswith("\n")
    assert failure.read(9) == reason.strip()
    assert "'only'" in reason  # the one class, named
    assert not (paths.run_dir(9) / "outputs" / "model.txt").exists()


def test_the_tracking_api_is_a_run_log():
    members = [
        name
        for name, value in vars(process.RunLog).items()
        if callable(value) and not name.startswith("_")
    ]
    assert len(members) == 8
    for name in members:
        ours = inspect.signature(getattr(process.RunLog, name))
        theirs = inspect.signature(getattr(tracking, name))
        wanted = [p for p in ours.parameters.values() if p.name != "self"]
        assert len(theirs.parameters) >= len(wanted), name
        for mine, real in zip(wanted, theirs.parameters.values(), strict=False):
            if mine.kind is not inspect.Parameter.POSITIONAL_ONLY:
                assert mine.name == real.name, (name, mine.name, real.name)


def test_the_trainer_process_outside_a_run_says_so_in_one_line(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "workbench.trainers"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("workbench: no active run") and done.stderr.count("\n") <= 1
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert list(tmp_path.iterdir()) == []
