"""Hostile schema.toml, config.toml and workbench.toml tables, through the CLI.

Every case: exit 2, a one-line reason naming the file and the dotted key, no
traceback, the user's file unchanged, and nothing stored (no registered
project, no validation report, no dataset version).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from wbtest import wb_inprocess

CSV = "age,city,churned\n" + "".join(
    f"{20 + i},{'Oslo' if i % 3 else 'Bergen'},{'yes' if i % 2 else 'no'}\n" for i in range(24)
)
BASE = '[project]\nname = "hostile"\n\n[data]\ntrain = "train.csv"\ntarget = "churned"\n\n'
TRAIN = '[train]\ntrainer = "lightgbm"\n'
COLUMN = '[columns."age"]\ntype = "integer"\n'


def _rows(home: Path, table: str) -> int:
    if not (home / "workbench.db").exists():
        return 0
    conn = sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def _assert_refused(result, path: Path, key: str | None) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(path) in lines[0], lines[0]
    if key is not None:
        assert key in lines[0], (key, lines[0])


# id -> (schema.toml text, the key the error names)
SCHEMAS: dict[str, tuple[str, str | None]] = {
    "unknown section": ("[checks]\nstrict = true\n", "checks"),
    "dataset a string": ('dataset = "all"\n', "dataset"),
    "columns a list": ("columns = [1, 2]\n", "columns"),
    "column a number": ("columns = { age = 3 }\n", "columns.age"),
    "column type unknown": (COLUMN.replace("integer", "int64"), "columns.age.type"),
    "column type missing": ('[columns."age"]\nnullable = false\n', "columns.age.type"),
    "column rule unknown": (COLUMN + "regex = '.*'\n", "columns.age.regex"),
    "min a string": (COLUMN + 'min = "0"\n', "columns.age.min"),
    "max nan": (COLUMN + "max = nan\n", "columns.age.max"),
    "max -inf": (COLUMN + "max = -inf\n", "columns.age.max"),
    "nullable a string": (COLUMN + 'nullable = "no"\n', "columns.age.nullable"),
    "null rate above 1": (COLUMN + "max_null_rate = 1.5\n", "columns.age.max_null_rate"),
    "policy unknown": (COLUMN + 'out_of_range = "delete"\n', "columns.age.out_of_range"),
    "categories a string": (COLUMN + 'categories = "a,b"\n', "columns.age.categories"),
    "min_rows negative": ("[dataset]\nmin_rows = -5\n", "dataset.min_rows"),
    "max_rows a float": ("[dataset]\nmax_rows = 1.5\n", "dataset.max_rows"),
    "duplicates policy unknown": ('[dataset]\nduplicates = "drop"\n', "dataset.duplicates"),
    "tolerance huge": ("[dataset]\nrange_tolerance = 1e300\n", "dataset.range_tolerance"),
    "target name a number": ("[target]\nname = 3\n", "target.name"),
    "target labels a string": ('[target]\nlabels = "yes,no"\n', "target.labels"),
    "not toml": ("[dataset\nmin_rows = 1\n", None),
    "key twice": ("[dataset]\nmin_rows = 1\nmin_rows = 2\n", None),
}


@pytest.fixture
def registered(wb_home, tmp_path):
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "train.csv").write_text(CSV)
    (folder / "workbench.toml").write_text(BASE + TRAIN)
    wb_inprocess("project", "add", str(folder), check=True)
    return folder


@pytest.mark.parametrize("case", sorted(SCHEMAS))
def test_hostile_schema_toml(registered, wb_home, case):
    text, key = SCHEMAS[case]
    schema = registered / "schema.toml"
    schema.write_text(text)

    result = wb_inprocess("data", "validate", "hostile", str(registered / "train.csv"))

    _assert_refused(result, schema, key)
    assert schema.read_text() == text
    assert _rows(wb_home, "data_reports") == 0 and _rows(wb_home, "dataset_versions") == 0


def test_a_schema_that_is_not_utf8_is_refused(registered, wb_home):
    schema = registered / "schema.toml"
    schema.write_bytes(b"[dataset]\n# caf\xe9\n")

    result = wb_inprocess("data", "schema", "hostile")

    _assert_refused(result, schema, None)
    assert "UTF-8" in result.stderr
    assert schema.read_bytes() == b"[dataset]\n# caf\xe9\n"


# id -> (config.toml text, the key the error names)
SETTINGS: dict[str, tuple[str, str]] = {
    "keys a list": ('keys = ["s"]\n', "keys"),
    "key binding a number": ('[keys]\n"project.start" = 3\n', "keys.project.start"),
    "key binding empty": ('[keys]\n"project.start" = ""\n', "keys.project.start"),
    "key binding blank": ('[keys]\n"project.start" = "  "\n', "keys.project.start"),
    "plugin settings a string": ('[plugins]\nnotify = "on"\n', "plugins.notify"),
    "max_log_mb zero": ("[runs]\nmax_log_mb = 0\n", "runs.max_log_mb"),
    "max_log_mb nan": ("[runs]\nmax_log_mb = nan\n", "runs.max_log_mb"),
    "theme a number": ("[ui]\ntheme = 1\n", "ui.theme"),
    "ui unknown key": ('[ui]\nfont = "mono"\n', "ui.font"),
}


@pytest.mark.parametrize("case", sorted(SETTINGS))
def test_hostile_user_settings_tables(wb_home, tmp_path, case):
    text, key = SETTINGS[case]
    wb_home.mkdir(parents=True, exist_ok=True)
    config = wb_home / "config.toml"
    config.write_text(text)

    result = wb_inprocess("project", "init", str(tmp_path / "new"))

    _assert_refused(result, config, key)
    assert config.read_text() == text
    assert not (tmp_path / "new").exists()
    assert not (wb_home / "workbench.db").exists()


# id -> (workbench.toml text, the key the error names)
PROJECTS: dict[str, tuple[str, str]] = {
    "task a number": (BASE.replace('name = "hostile"', 'name = "hostile"\ntask = 1') + TRAIN, "project.task"),
    "description a table": (
        BASE.replace('name = "hostile"', 'name = "hostile"\ndescription = { a = 1 }') + TRAIN,
        "project.description",
    ),
    "cv a float": (BASE + TRAIN + "cv = 5.0\n", "train.cv"),
    "params nested inf": (BASE + TRAIN + "params = { a = { b = inf } }\n", "train.params.a.b"),
    "script a list": (BASE + TRAIN + 'script = ["a.py"]\n', "train.script"),
    "gate unknown": (BASE + TRAIN + '[automation]\ngate = "coin"\n', "automation.gate"),
    "retrain_on unknown": (BASE + TRAIN + '[automation]\nretrain_on = "always"\n', "automation.retrain_on"),
    "export not a list": (BASE + TRAIN + '[automation]\nexport = "bundle"\n', "automation.export"),
    "export of numbers": (BASE + TRAIN + "[automation]\nexport = [1]\n", "automation.export"),
    "drift column unknown key": (
        BASE + TRAIN + "[drift]\ncolumns = { age = { bins = 3 } }\n",
        "drift.columns.age.bins",
    ),
    "drift column not a table": (BASE + TRAIN + "[drift]\ncolumns = { age = 3 }\n", "drift.columns.age"),
    "drift share 2": (BASE + TRAIN + "[drift]\nshare = 2\n", "drift.share"),
    "sweep without space": (BASE + TRAIN + '[sweep]\nsampler = "tpe"\n', "sweep.space"),
    "sweep sampler unknown": (
        BASE + TRAIN + '[sweep]\nsampler = "grid"\nspace = { lr = { type = "float", low = 0.1, high = 1 } }\n',
        "sweep.sampler",
    ),
    "sweep trials 0": (
        BASE + TRAIN + '[sweep]\ntrials = 0\nspace = { lr = { type = "float", low = 0.1, high = 1 } }\n',
        "sweep.trials",
    ),
    "sweep unknown key": (BASE + TRAIN + "[sweep]\nbudget = 3\n", "sweep.budget"),
    "sweep space empty": (BASE + TRAIN + "[sweep]\nspace = {}\n", "sweep.space"),
    "train path with NUL": (BASE.replace('"train.csv"', '"a\\u0000.csv"') + TRAIN, "data.train"),
    "watch path with NUL": (
        BASE.replace('target = "churned"', 'target = "churned"\nwatch = ["in\\u0000"]') + TRAIN,
        "data.watch",
    ),
    "script path with NUL": (
        BASE + TRAIN.replace('"lightgbm"', '"script"\nscript = "t\\u0000.py"'),
        "train.script",
    ),
    "train path a symlink loop": (BASE.replace('"train.csv"', '"loop/x.csv"') + TRAIN, "data.train"),
    "sweep low above high": (
        BASE + TRAIN + '[sweep]\nspace = { lr = { type = "float", low = 2, high = 1 } }\n',
        "sweep.space.lr.high",
    ),
}


@pytest.mark.parametrize("case", sorted(PROJECTS))
def test_hostile_project_tables(wb_home, tmp_path, case):
    text, key = PROJECTS[case]
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "train.csv").write_text(CSV)
    (folder / "workbench.toml").write_text(text)
    (folder / "loop").symlink_to(folder / "loop2")
    (folder / "loop2").symlink_to(folder / "loop")

    result = wb_inprocess("project", "add", str(folder))

    _assert_refused(result, (folder / "workbench.toml").resolve(), key)
    assert (folder / "workbench.toml").read_text() == text
    assert _rows(wb_home, "projects") == 0


# --- the files themselves: too big, nested too deeply, not a regular file -------------

DEEP = "x = " + "[" * 3000 + "]" * 3000 + "\n"
DEEP_TABLES = "x = " + "{ a = " * 3000 + "1" + " }" * 3000 + "\n"
HUGE = "# padding\n" * 120_000  # 1.2 MB of comments: valid TOML, too big to read


def _make(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_text({"deep arrays": DEEP, "deep tables": DEEP_TABLES, "huge": HUGE}[kind])


FILE_KINDS = ["deep arrays", "deep tables", "huge"]
SPECIAL_KINDS = ["fifo", "folder"]


@pytest.mark.parametrize("kind", FILE_KINDS + SPECIAL_KINDS)
def test_hostile_schema_file(registered, wb_home, kind):
    schema = registered / "schema.toml"
    _make(schema, kind)

    result = wb_inprocess("data", "validate", "hostile", str(registered / "train.csv"))

    _assert_refused(result, schema, None)
    assert _rows(wb_home, "data_reports") == 0


@pytest.mark.parametrize("kind", FILE_KINDS + SPECIAL_KINDS)
def test_hostile_settings_file(wb_home, tmp_path, kind):
    wb_home.mkdir(parents=True, exist_ok=True)
    config = wb_home / "config.toml"
    _make(config, kind)

    result = wb_inprocess("project", "init", str(tmp_path / "new"))

    _assert_refused(result, config, None)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_hostile_project_file(wb_home, tmp_path, kind):
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "train.csv").write_text(CSV)
    _make(folder / "workbench.toml", kind)
    before = (folder / "workbench.toml").read_bytes()

    result = wb_inprocess("project", "add", str(folder))

    _assert_refused(result, (folder / "workbench.toml").resolve(), None)
    assert (folder / "workbench.toml").read_bytes() == before
    assert _rows(wb_home, "projects") == 0
