"""Hostile training parameters and training data, through the CLI.

Parameters a trainer cannot take are refused by `run start` before anything is
queued: exit 2, one line naming the parameter and what was expected, no run
made. Data that cannot train ends the run `failed` with a one-line reason that
`run show` prints, and no model registered. Never a traceback; the user's
files are never changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from wbtest import wb, wb_auto, wb_inprocess

pytestmark = pytest.mark.slow

HGB = "sklearn:sklearn.ensemble.HistGradientBoostingClassifier"


def _frame(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=rows)
    return pd.DataFrame(
        {
            "x": x,
            "colour": rng.choice(["red", "blue", "green"], rows),
            "label": np.where(x + rng.normal(scale=0.5, size=rows) > 0, "yes", "no"),
        }
    )


def _project(folder: Path, frame: pd.DataFrame, trainer: str, extra: str = "") -> dict[Path, str]:
    (folder / "data").mkdir(parents=True)
    frame.to_csv(folder / "data" / "train.csv", index=False)
    (folder / "workbench.toml").write_text(
        f'[project]\nname = "hostile"\n{extra}'
        '[data]\ntrain = "data/train.csv"\ntarget = "label"\n'
        f'[train]\ntrainer = "{trainer}"\n'
    )
    wb_inprocess("project", "add", str(folder), check=True)
    return _hashes(folder)


def _hashes(folder: Path) -> dict[Path, str]:
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _one_line(text: str) -> str:
    assert "Traceback" not in text
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# id -> (trainer, --set value, part of the reason)
PARAMS = {
    "unknown key": ("lightgbm", "bogus_key=3", "unknown LightGBM parameter 'bogus_key'"),
    "misspelt key": ("lightgbm", "num_leave=31", "did you mean num_leaves"),
    "text for an int": ("lightgbm", "num_leaves=abc", "num_leaves = 'abc': expected an integer"),
    "fraction for an int": ("lightgbm", "n_estimators=2.5", "expected an integer"),
    "bool for an int": ("lightgbm", "num_leaves=true", "expected an integer"),
    "text for a float": ("lightgbm", 'learning_rate="fast"', "expected a number"),
    "below the range": ("lightgbm", "num_leaves=1", "num_leaves = 1: must be > 1"),
    "5000 digits": ("lightgbm", "num_leaves=" + "9" * 5000, "5000 digits is too large"),
    "past int32": ("lightgbm", "max_depth=99999999999", "too large"),
    "negative past int32": ("lightgbm", "max_depth=-99999999999", "too large"),
    "float overflow": ("lightgbm", "learning_rate=1e400", "expected a finite number"),
    "nan": ("lightgbm", "bagging_fraction=nan", "expected a finite number"),
    "-inf": ("lightgbm", "lambda_l1=-inf", "expected a finite number"),
    "a table": ("lightgbm", "num_leaves={ a = 1 }", "expected a number, a string"),
    "nested lists": ("lightgbm", "num_leaves=[[1]]", "expected a number, a string"),
    "list for an int": ("lightgbm", "num_leaves=[1, 2]", "expected an integer"),
    "very long text": ("lightgbm", "objective=" + "x" * 1000, "too long"),
    "sklearn unknown key": (HGB, "max_iters=20", "did you mean max_iter"),
    "sklearn unknown, no match": (HGB, "zzz=1", "it takes"),
    "sklearn wrong type": (HGB, "max_depth=abc", "'max_depth' parameter"),
    "sklearn out of range": (HGB, "learning_rate=-1", "'learning_rate' parameter"),
    "sklearn 5000 digits": (HGB, "max_iter=" + "1" * 5000, "5000 digits is too large"),
    "sklearn past int64": (HGB, "max_iter=100000000000000000000", "too large"),
    "sklearn nan": (HGB, "l2_regularization=nan", "expected a finite number"),
}


@pytest.mark.parametrize("case", list(PARAMS))
def test_bad_params_are_refused_before_a_run_is_queued(case, tmp_path):
    trainer, setting, reason = PARAMS[case]
    before = _project(tmp_path / "p", _frame(), trainer)
    # In this process: a refused start must leave no process behind (wb_inprocess checks).
    result = wb_inprocess("run", "start", "hostile", "--set", setting, "--wait")
    assert result.returncode == 2, result.stderr
    assert reason in _one_line(result.stderr)
    assert result.stdout == ""
    assert json.loads(wb_inprocess("run", "list", "--json", check=True).stdout) == []
    assert _hashes(tmp_path / "p") == before


def _with(**changes) -> pd.DataFrame:
    frame = _frame()
    for column, values in changes.items():
        frame[column] = values
    return frame


# id -> (trainer, training table, extra [project] lines, part of the reason)
DATA = {
    "one class": ("lightgbm", _with(label="yes"), "", "has one value only ('yes')"),
    "no labels": ("lightgbm", _with(label=np.nan), "", "the target 'label' has no values"),
    "five rows": ("lightgbm", _frame().head(5), "", "only 5 usable rows"),
    "only missing features": (
        HGB,
        _with(x=np.nan, colour=np.nan),
        "",
        "no column is usable as a feature",
    ),
    "only a copy of the label": (
        "lightgbm",
        _frame()[["label"]].assign(answer=lambda f: f["label"]),
        "",
        "a copy of the target",
    ),
    "dates as the target": (
        "lightgbm",
        _with(label=pd.date_range("2024-01-01", periods=60)),
        "",
        "holds dates",
    ),
    "an infinite target": (
        "lightgbm",
        _with(label=np.r_[np.inf, np.arange(59.0) / 7]),
        "",
        "infinite values",
    ),
    "text target, regression task": (
        "lightgbm",
        _frame(),
        'task = "regression"\n',
        "is not numeric",
    ),
    "an unknown objective": (
        "lightgbm",
        _frame(),
        "",
        "Unknown objective type name: bogus",
    ),
}


@pytest.mark.parametrize("case", list(DATA))
def test_data_that_cannot_train_fails_the_run_with_a_reason(case, tmp_path):
    trainer, frame, extra, reason = DATA[case]
    before = _project(tmp_path / "p", frame, trainer, extra)
    args = ["--set", "objective=bogus"] if "objective" in case else []
    result = wb("run", "start", "hostile", *args, "--wait")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    run_id = result.stdout.split()[0]
    info = json.loads(wb_auto("run", "show", run_id, "--json", check=True).stdout)
    assert info["status"] == "failed"
    assert reason in _one_line(info["message"])
    assert info["message"] in " ".join(wb_auto("run", "show", run_id, check=True).stdout.split())
    assert info["artifacts"] == []
    assert json.loads(wb_auto("model", "list", "hostile", "--json", check=True).stdout) == []
    assert _hashes(tmp_path / "p") == before
