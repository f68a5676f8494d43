"""The one place that decides metric direction, learning curves, internal
params, data file names and export format names, and checks that no module
keeps a copy of its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import workbench
from workbench.core.metric_rules import (
    higher_is_better,
    is_curve,
    is_internal_param,
    is_per_step,
    lower_is_better,
    metric_name,
    user_params,
)

PACKAGE = Path(workbench.__file__).parent


@pytest.mark.parametrize(
    "key",
    [
        "accuracy",
        "f1",
        "roc_auc",
        "r2",
        "valid_auc",
        "valid_auc_mu",
        "valid_ndcg@5",
        "valid_map@10",
        "valid_average_precision",
        "valid_aucpr",
        "ml2",  # `l2` only as a whole word
        "val_accuracy",
        "cv_f1_mean",
        "cv_fold_roc_auc",
        "neg_log_loss",
        "glossiness",  # not a loss: words are compared whole
        "Accuracy",
    ],
)
def test_scores_are_higher_is_better(key):
    assert higher_is_better(key) and not lower_is_better(key)


@pytest.mark.parametrize(
    "key",
    [
        "log_loss",
        "rmse",
        "mae",
        "loss",
        "val_loss",
        "train_loss",
        "valid_l1",
        "valid_l2",  # LightGBM's regression metric: the sweep and compare agree on it
        "valid_binary_logloss",
        "valid_multi_logloss",
        "valid_binary_error",
        "valid_huber",
        "valid_poisson",
        "cv_rmse_mean",
        "cv_fold_mae",
        "cv_f1_std",  # a spread across folds
        "val_categorical_crossentropy",  # Keras
        "valid_mlogloss",  # XGBoost
        "valid_merror",
        "valid_poisson-nloglik",
        "valid_tweedie-nloglik@1.5",
        "perplexity",
        "RMSE",
    ],
)
def test_losses_and_errors_are_lower_is_better(key):
    assert lower_is_better(key) and not higher_is_better(key)


def test_metric_name_strips_the_decorations():
    assert metric_name("valid_auc") == "auc"
    assert metric_name("val_loss") == "loss"
    assert metric_name("cv_f1_mean") == "f1"
    assert metric_name("cv_fold_rmse") == "rmse"
    assert metric_name("valid_ndcg@5") == "ndcg"
    assert metric_name("f1") == "f1"


def test_learning_curves_are_valid_and_val_prefixed():
    for key in ("valid_auc", "valid_binary_logloss", "val_loss", "val_accuracy"):
        assert is_curve(key), key
    for key in ("validity", "value", "valid_", "val_", "accuracy", "train_loss", "cv_fold_f1"):
        assert not is_curve(key), key


def test_per_step_series_include_train_and_fold_scores():
    for key in ("valid_auc", "val_loss", "train_loss", "cv_fold_f1"):
        assert is_per_step(key), key
    for key in ("accuracy", "cv_f1_mean", "cv_f1_std", "log_loss"):
        assert not is_per_step(key), key


def test_internal_params_are_underscore_prefixed():
    assert is_internal_param("_sweep") and is_internal_param("_trial")
    assert not is_internal_param("learning_rate")
    assert user_params({"_sweep": 3, "num_leaves": 7}) == {"num_leaves": 7}


def test_the_rules_module_is_a_leaf():
    code = (
        "import sys, workbench.core.metric_rules, workbench.core.datafiles;"
        "loaded = sorted(m for m in sys.modules if m.startswith('workbench.'));"
        "print(loaded)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert eval(out) == [  # noqa: S307 - our own subprocess printing a list of names
        "workbench.core",
        "workbench.core.datafiles",
        "workbench.core.metric_rules",
        "workbench.core.version",  # the package's own `__version__`
    ]


# -- no second copy ---------------------------------------------------------------


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))]


def _string_constants(tree: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_no_module_keeps_its_own_direction_table_or_curve_prefixes():
    offenders = []
    for path, text in _sources():
        if path.name == "metric_rules.py":
            continue
        tree = ast.parse(text)
        for node in ast.walk(tree):
            # startswith("valid_") / startswith(("valid_", ...)) / startswith("_") on keys
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("startswith", "removeprefix")
            ):
                found = _string_constants(node)
                if {"valid_", "val_", "cv_fold_"} & set(found):
                    offenders.append(f"{path.name}:{node.lineno} curve prefix")
            if isinstance(node, ast.FunctionDef) and node.name in (
                "higher_is_better",
                "lower_is_better",
                "is_curve",
                "is_data_file",
            ):
                if not (path.parent.name == "core" and path.name == "datafiles.py"):
                    offenders.append(f"{path.name}:{node.lineno} def {node.name}")
        for node in tree.body:  # module-level tables such as _HIGHER_IS_BETTER = (...)
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if any("_IS_BETTER" in n.upper() for n in names):
                    offenders.append(f"{path.name}:{node.lineno} direction table {names}")
        if "LIKE 'valid" in text:
            offenders.append(f"{path.name}: SQL curve prefix")
    assert offenders == []


def test_callers_use_the_shared_rules():
    from workbench.automation import pipeline, watcher
    from workbench.core.datafiles import is_data_file
    from workbench.runs import compare

    assert compare.lower_is_better is lower_is_better
    assert pipeline.is_data_file is is_data_file and watcher.is_data_file is is_data_file


# -- data files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["batch.csv", "BATCH.CSV", "b.Csv.Gz", "b.parquet", "b.PQ", "sub/dir/b.csv"]
)
def test_data_files_by_suffix_in_any_case(name):
    from workbench.core.datafiles import is_data_file

    assert is_data_file(name) and is_data_file(Path(name))


@pytest.mark.parametrize(
    "name",
    [".hidden.csv", "b.csv.part", "b.csv.PART", "b.csv.TMP", "b.csv~", "b.csv.crdownload", "b.txt"],
)
def test_hidden_partial_and_other_files_are_not_data(name):
    from workbench.core.datafiles import is_data_file

    assert not is_data_file(name) and not is_data_file(Path("folder") / name)


def test_the_train_file_check_and_the_watcher_share_the_suffixes():
    from workbench.config import project as config
    from workbench.core import datafiles

    assert config.DATA_SUFFIXES is datafiles.DATA_SUFFIXES


# -- export formats -----------------------------------------------------------------

PLUGIN = """
from workbench import hookimpl


def write_text(version, folder, *, progress, **options):
    (folder / "model.txt").write_text(version.ref)
    return {"notes": ["a text file"]}


@hookimpl
def workbench_exporters():
    return {"text": write_text}
"""

CONFIG = """
[data]
train = "train.csv"
target = "y"

[train]
trainer = "lightgbm"

[automation]
export = [EXPORTS]
"""


def _project(folder: Path, exports: str) -> Path:
    (folder / "plugins").mkdir(parents=True)
    (folder / "plugins" / "text_export.py").write_text(PLUGIN)
    (folder / "train.csv").write_text("x,y\n1,0\n2,1\n3,0\n4,1\n")
    (folder / "workbench.toml").write_text(CONFIG.replace("EXPORTS", exports))
    return folder


def test_the_builtin_exporters_are_the_one_list_of_builtin_formats():
    from workbench.models.export import FORMATS
    from workbench.plugins import Plugins

    builtin = Plugins(None, warn=False).merged("workbench_exporters", external=False)
    assert tuple(builtin) == FORMATS
    assert all(callable(fn) for fn in builtin.values())


def test_a_plugin_format_reaches_the_config_check_and_the_export_form(tmp_path):
    from workbench.config.project import load_config
    from workbench.core.errors import ConfigError
    from workbench.models.plugin_names import PluginNames
    from workbench.plugins import export_formats
    from workbench.tui.screens.model_forms import ExportModal

    folder = _project(tmp_path / "p", '"bundle", "text"')
    formats = export_formats(folder)
    assert "text" in formats and "bundle" in formats
    assert tuple(load_config(folder).export) == ("bundle", "text")

    form = ExportModal("p@1", lambda fmt: tmp_path / fmt, formats)
    assert form.formats[0] == "bundle" and "text" in form.formats  # the default stays first

    (folder / "workbench.toml").write_text(CONFIG.replace("EXPORTS", '"nope"'))
    with pytest.raises(ConfigError) as caught:
        load_config(folder, PluginNames())  # as the CLI and the TUI install them
    assert "automation.export" in str(caught.value) and "text" in str(caught.value)


def test_the_cli_help_lists_the_builtin_formats():
    from click.testing import CliRunner

    from workbench.cli.model import model
    from workbench.models.export import FORMATS

    out = CliRunner().invoke(model, ["export", "--help"]).output
    assert all(name in out for name in FORMATS)


# -- the sweep's pruning curve --------------------------------------------------------


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        (["accuracy", "val_loss"], "val_loss"),  # a script's Keras-style curve
        (["roc_auc", "valid_binary_logloss"], "valid_binary_logloss"),
        (["accuracy", "validity", "value"], None),  # no curve at all
    ],
)
def test_a_sweep_prunes_on_either_curve_prefix(wb_home, logged, expected):
    import time

    from workbench.core.metric_rules import CURVE_PREFIXES
    from workbench.store import open_store
    from workbench.store.metrics import append_points
    from workbench.store.sweeps import first_series

    store = open_store()
    try:
        with store.write() as conn:
            project = conn.execute(
                "INSERT INTO projects (name, path, created_at) VALUES ('p', '/nowhere', 0)"
            ).lastrowid
            run = conn.execute(
                "INSERT INTO runs (project_id, status, trainer, created_at)"
                " VALUES (?, 'running', 'script', 0)",
                (project,),
            ).lastrowid
            append_points(conn, run, {k: [(1, time.time(), 0.5)] for k in logged})
        assert first_series(store, run, CURVE_PREFIXES) == expected
    finally:
        store.close()
