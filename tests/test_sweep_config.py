"""`[sweep]` and `[train] cv` in workbench.toml: parsed into a search space,
every mistake named by file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config.project import load_config
from workbench.core.errors import ConfigError
from workbench.sweeps.space import distributions

BASE = """
[data]
train = "train.csv"
target = "y"

[train]
trainer = "{trainer}"
{train}
"""
SPACE = """
[sweep]
sampler = "random"
pruner = "none"
seed = 3
trials = 12

[sweep.space]
learning_rate = { type = "log-uniform", low = 0.01, high = 0.3 }
num_leaves = { type = "int", low = 8, high = 64, step = 4 }
subsample = { type = "float", low = 0.5, high = 1.0 }
boosting = { type = "categorical", choices = ["gbdt", "dart"] }
"""


def _load(tmp_path: Path, extra: str, train: str = "", trainer: str = "lightgbm"):
    (tmp_path / "train.csv").write_text("x,y\n1,0\n2,1\n")
    if trainer == "script":
        (tmp_path / "train.py").write_text("")
        train += '\nscript = "train.py"'
    (tmp_path / "workbench.toml").write_text(BASE.format(trainer=trainer, train=train) + extra)
    return load_config(tmp_path)


def test_the_space_becomes_optuna_distributions(tmp_path):
    config = _load(tmp_path, SPACE)
    sweep = config.sweep
    assert (sweep.sampler, sweep.pruner, sweep.seed, sweep.trials) == ("random", "none", 3, 12)
    found = distributions(sweep.space)
    assert list(found) == ["learning_rate", "num_leaves", "subsample", "boosting"]
    lr, leaves, sub, boosting = found.values()
    assert (lr.low, lr.high, lr.log) == (0.01, 0.3, True)
    assert (leaves.low, leaves.high, leaves.step, leaves.log) == (8, 64, 4, False)
    assert (sub.low, sub.high, sub.log) == (0.5, 1.0, False)
    assert boosting.choices == ("gbdt", "dart")
    # Written back as in the file (kept on the sweep run, re-read on resume).
    assert sweep.space[0].describe() == {"type": "log-uniform", "low": 0.01, "high": 0.3}


def test_without_a_sweep_section_there_is_no_space_and_no_cv(tmp_path):
    config = _load(tmp_path, "")
    assert config.sweep is None and config.cv is None


@pytest.mark.parametrize(
    ("space", "key", "problem"),
    [
        ('"bad-name" = { type = "int", low = 1, high = 2 }', "sweep.space.bad-name", "name"),
        ('_trial = { type = "int", low = 1, high = 2 }', "sweep.space._trial", "workbench's own"),
        ('lr = { type = "normal", low = 1, high = 2 }', "sweep.space.lr.type", "log-uniform"),
        ("lr = { low = 1, high = 2 }", "sweep.space.lr.type", "expected one of"),
        ("lr = 0.1", "sweep.space.lr", "expected a table"),
        ('lr = { type = "float", low = 0.3, high = 0.1 }', "sweep.space.lr.high", "more than"),
        ('lr = { type = "float", high = 0.1 }', "sweep.space.lr.low", "missing"),
        ('lr = { type = "float", low = "a", high = 0.1 }', "sweep.space.lr.low", "number"),
        ('lr = { type = "log-uniform", low = 0, high = 1 }', "sweep.space.lr.low", "low > 0"),
        ('lr = { type = "float", low = 0, high = 1, step = 0 }', "sweep.space.lr.step", "> 0"),
        (
            'lr = { type = "float", low = 0.1, high = 1, step = 0.1, log = true }',
            "sweep.space.lr.step",
            "log",
        ),
        ('n = { type = "int", low = 1.5, high = 9 }', "sweep.space.n.low", "whole number"),
        ('n = { type = "int", low = 1, high = 9, log = 1 }', "sweep.space.n.log", "true or false"),
        (
            'n = { type = "int", low = 1, high = 9, choices = [1] }',
            "sweep.space.n.choices",
            "unknown",
        ),
        ('b = { type = "categorical", choices = [] }', "sweep.space.b.choices", "list"),
        ('b = { type = "categorical", choices = ["a", "a"] }', "sweep.space.b.choices", "twice"),
    ],
)
def test_a_bad_space_entry_names_the_file_and_key(tmp_path, space, key, problem):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"[sweep.space]\n{space}\n")
    assert caught.value.key == key
    assert caught.value.path == str(tmp_path / "workbench.toml")
    assert problem in caught.value.problem
    assert f"[{key}]" in caught.value.message


@pytest.mark.parametrize(
    ("sweep", "key", "problem"),
    [
        ('sampler = "grid"', "sweep.sampler", "tpe, random"),
        ('pruner = "hyperband"', "sweep.pruner", "median, none"),
        ("trials = 0", "sweep.trials", ">= 1"),
        ('seed = "x"', "sweep.seed", "an integer"),
        ("samplr = 'tpe'", "sweep.samplr", "unknown key"),
    ],
)
def test_bad_sweep_settings_name_the_key(tmp_path, sweep, key, problem):
    space = '[sweep.space]\nlr = { type = "float", low = 0.1, high = 0.2 }\n'
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"[sweep]\n{sweep}\n{space}")
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_a_sweep_section_needs_a_space(tmp_path):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, '[sweep]\nsampler = "tpe"\n')
    assert caught.value.key == "sweep.space"


def test_cv_is_a_number_of_folds_for_the_built_in_trainers(tmp_path):
    assert _load(tmp_path, "", "cv = 5").cv == 5
    for train, trainer, problem in (
        ("cv = 1", "lightgbm", ">= 2"),
        ("cv = true", "lightgbm", "an integer"),
        ("cv = 3", "script", "built-in"),
    ):
        with pytest.raises(ConfigError) as caught:
            _load(tmp_path, "", train, trainer)
        assert caught.value.key == "train.cv"
        assert problem in caught.value.problem


def test_the_cli_reports_a_bad_space_with_file_and_key(cli, tmp_path):
    _load(tmp_path, "")  # writes a valid project, then break its space
    toml = tmp_path / "workbench.toml"
    toml.write_text(toml.read_text() + '[sweep.space]\nlr = { type = "uniform" }\n')
    result = cli("project", "add", str(tmp_path))
    assert result.returncode == 2
    assert f"{toml}: [sweep.space.lr.type]" in result.stderr
    assert "Traceback" not in result.stderr
