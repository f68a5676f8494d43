"""The declarations of the files a user edits, and the one checker that walks them."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path

import pytest

from workbench.config import names as names_module
from workbench.config import project, settings, spec
from workbench.config.spec import Key, Table, check_file
from workbench.core.errors import ConfigError
from workbench.data import schema

DECLARATIONS = {
    "workbench.toml": project.PROJECT_FILE,
    "config.toml": settings.SETTINGS_FILE,
    "schema.toml": schema.SCHEMA_SPEC,
}

# A small declaration exercising every kind of check.
INNER = Table("inner", (Key("level", int, "a level", low=1, high=3),), "inner")
DEMO = Table(
    "demo.toml",
    (
        Key(
            "main",
            dict,
            "the main table",
            table=Table(
                "main",
                (
                    Key("name", str, "a name", required="a string"),
                    Key("mode", str, "a mode", choices=("fast", "slow")),
                    Key("share", (float, int), "a share", low=0, high=1, low_open=True),
                    Key("paths", list, "paths", items=str, items_text="paths (strings)"),
                    Key("code", str, "a code", pattern=r"[A-Z]{3}", pattern_text="three capitals"),
                    Key("nested", dict, "nested", table=INNER),
                ),
            ),
        ),
        Key("groups", dict, "user-named groups", each=INNER, each_text="a table of levels"),
        Key("labels", dict, "user-named labels", values=Key("label", str, "a label")),
    ),
    word="section",
)


@pytest.mark.parametrize(
    ("raw", "key", "says"),
    [
        ({"other": {}}, "other", "unknown section; expected one of main, groups, labels"),
        ({"main": 3}, "main", "expected a table, e.g. [main], got int"),
        ({"main": {"name": "x", "colour": 1}}, "main.colour", "unknown key; expected one of name"),
        ({"main": {"name": 3}}, "main.name", "expected a string, got int 3"),
        ({"main": {"name": "x", "mode": "warp"}}, "main.mode", "expected one of fast, slow; got"),
        ({"main": {"name": "x", "share": 0}}, "main.share", "greater than 0 and at most 1, got 0"),
        ({"main": {"name": "x", "share": True}}, "main.share", "expected a number, got bool"),
        ({"main": {"name": "x", "paths": ["a", 1]}}, "main.paths", "a list of paths (strings)"),
        ({"main": {"name": "x", "code": "abc"}}, "main.code", "expected three capitals"),
        ({"main": {"name": "x", "nested": {"level": 9}}}, "main.nested.level", "from 1 to 3"),
        ({"main": {}}, "main.name", "missing; expected a string"),
        ({}, "main.name", "missing"),  # an absent table is checked as an empty one
        ({"main": {"name": "x"}, "groups": {"a": 1}}, "groups.a", "a table of levels"),
        ({"main": {"name": "x"}, "groups": {"a": {"level": 0}}}, "groups.a.level", "from 1"),
        ({"main": {"name": "x"}, "labels": {"a": 2}}, "labels.a", "expected a string"),
        ({"main": {"name": "x", "share": float("nan")}}, "main.share", "a finite number"),
        ({"main": {"name": "x", "paths": [float("inf")]}}, "main.paths[0]", "a finite number"),
    ],
)
def test_the_checker_names_the_file_the_key_and_what_was_expected(raw, key, says):
    with pytest.raises(ConfigError) as caught:
        check_file(Path("/p/demo.toml"), DEMO, raw)

    assert caught.value.key == key
    assert "/p/demo.toml" in caught.value.message and says in caught.value.message


def test_a_good_file_passes():
    raw = {
        "main": {"name": "x", "mode": "fast", "share": 1, "paths": ["a"], "code": "ABC"},
        "groups": {"g": {"level": 2}},
        "labels": {"l": "text"},
    }
    check_file(Path("demo.toml"), DEMO, raw)


@pytest.mark.parametrize("name", sorted(DECLARATIONS))
def test_every_key_is_declared_with_a_type_and_help(name):
    lines = spec.describe(DECLARATIONS[name])

    assert lines and all(line.split(": ", 1)[1].strip() for line in lines)


def _flat(table: Table, prefix: str = "") -> dict[str, Key]:
    out = {}
    for key in table.keys:
        dotted = f"{prefix}.{key.name}" if prefix else key.name
        out[dotted] = key
        if key.table is not None:
            out |= _flat(key.table, dotted)
    return out


def test_the_project_declaration_gives_the_configs_defaults():
    keys = _flat(project.PROJECT_FILE)
    fields = {f.name: f.default for f in dataclasses.fields(project.ProjectConfig)}
    for dotted, attribute in [
        ("train.test_size", "test_size"),
        ("train.seed", "seed"),
        ("automation.on_new_data", "on_new_data"),
        ("automation.promote", "promote"),
        ("automation.margin", "margin"),
        ("automation.retrain_on", "retrain_on"),
        ("project.description", "description"),
    ]:
        assert keys[dotted].default == fields[attribute], dotted


def test_the_settings_declaration_gives_the_settings_defaults():
    keys = _flat(settings.SETTINGS_FILE)
    default = settings.Settings()
    assert keys["runs.sample_interval"].default == default.sample_interval
    assert keys["runs.stop_grace"].default == default.stop_grace
    assert keys["runs.max_log_mb"].default == default.max_log_mb
    assert keys["ui.theme"].default == default.theme


def test_the_names_config_knows_are_the_ones_the_upper_layers_use():
    from workbench.core import datafiles
    from workbench.data.drift.stattests import METHODS
    from workbench.models.export import FORMATS
    from workbench.trainers import metrics

    assert project.BUILTIN_EXPORTS == FORMATS
    assert set(project.DRIFT_METHODS) == set(METHODS)
    assert project.DATA_SUFFIXES is datafiles.DATA_SUFFIXES
    for task in project.TASKS:
        assert list(project.metrics_for(task)) == metrics.metrics_for_task(task)


# --- plugin names: given, installed, or not known -----------------------------------


@pytest.fixture(autouse=True)
def _no_installed_names(monkeypatch):
    """An in-process CLI call earlier in this process may have installed plugin names."""
    monkeypatch.setattr(names_module, "_installed", None)

CSV = "x,y\n1,a\n2,b\n3,a\n4,b\n"


class FakeNames:
    """Plugin names as a test sets them; records what was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def trainers(self, root: Path) -> Collection[str]:
        self.asked.append("trainers")
        return ("lightgbm", "script", "centroid")

    def trainer_hint(self, root: Path) -> str:
        return " or a plugin's trainer ('centroid')"

    def export_formats(self, root: Path) -> Collection[str]:
        self.asked.append("export")
        return ("bundle", "mlflow", "onnx", "text")

    def drift_methods(self, root: Path, names: Collection[str]) -> Collection[str]:
        self.asked.append("drift")
        return ("energy",)


def _project(folder: Path, train: str = "", tail: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "train.csv").write_text(CSV)
    (folder / "workbench.toml").write_text(
        f'[data]\ntrain = "train.csv"\ntarget = "y"\n\n[train]\n{train}\n{tail}'
    )
    return folder


@pytest.mark.parametrize(
    ("train", "tail", "key", "says"),
    [
        ('trainer = "nosuch"', "", "train.trainer", "or a plugin's trainer ('centroid')"),
        ('trainer = "lightgbm"', '[automation]\nexport = ["zip"]', "automation.export", "text"),
        ('trainer = "lightgbm"', '[drift]\nmethod = "magic"', "drift.method", "energy"),
        (
            'trainer = "lightgbm"',
            '[drift]\ncolumns = { x = { method = "magic" } }',
            "drift.columns.x.method",
            "energy",
        ),
    ],
)
def test_plugin_names_are_checked_with_the_names_given(tmp_path, train, tail, key, says):
    folder = _project(tmp_path / "p", train, tail)

    with pytest.raises(ConfigError) as caught:
        project.load_config(folder, FakeNames())

    assert caught.value.key == key and says in caught.value.message
    project.load_config(folder)  # names plugins might add pass where none are known


def test_plugins_are_asked_only_for_names_that_are_not_built_in(tmp_path):
    names = FakeNames()
    tail = '[automation]\nexport = ["bundle"]\n[drift]\nmethod = "ks"'
    folder = _project(tmp_path / "p", 'trainer = "lightgbm"', tail)

    project.load_config(folder, names)
    assert names.asked == []

    (folder / "workbench.toml").write_text(
        (folder / "workbench.toml").read_text().replace('"lightgbm"', '"centroid"')
    )
    assert project.load_config(folder, names).trainer == "centroid"
    assert names.asked == ["trainers"]


def test_installed_plugin_names_apply_to_every_later_load(tmp_path):
    folder = _project(tmp_path / "p", 'trainer = "nosuch"')
    project.use_plugin_names(FakeNames())
    try:
        with pytest.raises(ConfigError, match="nosuch"):
            project.load_config(folder)
    finally:
        project.use_plugin_names(None)
    assert project.load_config(folder).trainer == "nosuch"


@pytest.mark.parametrize("trainer", ["sklearn", "sklearn:", "sklearn:LogisticRegression"])
def test_a_malformed_sklearn_trainer_is_refused_without_plugin_names(tmp_path, trainer):
    folder = _project(tmp_path / "p", f'trainer = "{trainer}"')

    with pytest.raises(ConfigError) as caught:
        project.load_config(folder)

    assert caught.value.key == "train.trainer"


def test_the_cli_checks_plugin_names(tmp_path, cli):
    folder = _project(tmp_path / "p", 'trainer = "nosuchtrainer"')

    result = cli("project", "add", str(folder))

    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train.trainer" in result.stderr and "nosuchtrainer" in result.stderr
