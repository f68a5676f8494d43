"""Hostile project configs, user settings and `project init` arguments.

Every case: exit 2, a one-line reason naming the file and key (or the
argument), no traceback, the user's files unchanged, and nothing half-made
left behind (no folder, no registered project, no store row).
"""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
from pathlib import Path

import pytest
from wbtest import wb_inprocess

ROWS = "".join(
    f"{20 + i},{30000 + 997 * i},{'Oslo' if i % 3 else 'Bergen'},{'yes' if i % 2 else 'no'}\n"
    for i in range(24)
)
CSV = "age,income,city,churned\n" + ROWS
AMOUNTS = "x,amount\n" + "".join(f"{i},{i * 1.5 + 0.25}\n" for i in range(24))

BASE = """[project]
name = "hostile"

[data]
train = "data/train.csv"
target = "churned"

[train]
trainer = "lightgbm"
"""


def _with(train: str = "", *, project: str = "", tail: str = "") -> str:
    """BASE with extra lines in [project] and [train], and extra text at the end."""
    text = BASE.replace('name = "hostile"\n', 'name = "hostile"\n' + project)
    return text + train + tail


# id -> (workbench.toml text, the key the error names, data file text)
CONFIGS: dict[str, tuple[str, str, str]] = {
    "margin nan": (_with(tail="[automation]\nmargin = nan\n"), "automation.margin", CSV),
    "margin inf": (_with(tail="[automation]\nmargin = inf\n"), "automation.margin", CSV),
    "margin negative": (_with(tail="[automation]\nmargin = -1\n"), "automation.margin", CSV),
    "margin huge": (_with(tail="[automation]\nmargin = 1e308\n"), "automation.margin", CSV),
    "margin a string": (_with(tail='[automation]\nmargin = "big"\n'), "automation.margin", CSV),
    "test_size nan": (_with("test_size = nan\n"), "train.test_size", CSV),
    "test_size -inf": (_with("test_size = -inf\n"), "train.test_size", CSV),
    "test_size 1": (_with("test_size = 1\n"), "train.test_size", CSV),
    "seed negative": (_with("seed = -5\n"), "train.seed", CSV),
    "seed huge": (_with("seed = 9223372036854775807\n"), "train.seed", CSV),
    "seed a float": (_with("seed = 1.5\n"), "train.seed", CSV),
    "cv 0": (_with("cv = 0\n"), "train.cv", CSV),
    "cv huge": (_with("cv = 100000000\n"), "train.cv", CSV),
    "param nan": (_with("params = { learning_rate = nan }\n"), "train.params.learning_rate", CSV),
    "param inf": (_with("params = { max_depth = inf }\n"), "train.params.max_depth", CSV),
    "drift threshold inf": (_with(tail="[drift]\nthreshold = inf\n"), "drift.threshold", CSV),
    "drift threshold 0": (_with(tail="[drift]\nthreshold = 0\n"), "drift.threshold", CSV),
    "drift share nan": (_with(tail="[drift]\nshare = nan\n"), "drift.share", CSV),
    "project as a string": (
        'project = "x"\n' + BASE.replace("[project]\n", "[extra]\n"),
        "project",
        CSV,
    ),
    "train as a number": (
        "train = 3\n" + BASE.replace('[train]\ntrainer = "lightgbm"\n', ""),
        "train",
        CSV,
    ),
    "automation as a list": (
        _with(tail="automation = [1, 2]\n")
        .replace("automation = [1, 2]", "")
        .replace("[project]", "automation = [1, 2]\n[project]"),
        "automation",
        CSV,
    ),
    "data as a bool": (
        "data = true\n"
        + BASE.replace('[data]\ntrain = "data/train.csv"\ntarget = "churned"\n', ""),
        "data",
        CSV,
    ),
    "params as a string": (_with('params = "fast"\n'), "train.params", CSV),
    "watch as a string": (
        BASE.replace('target = "churned"', 'target = "churned"\nwatch = "in"'),
        "data.watch",
        CSV,
    ),
    "unknown key": (_with("epochs = 3\n"), "train.epochs", CSV),
    "name path traversal": (BASE.replace('"hostile"', '"../../evil"'), "project.name", CSV),
    "name with a newline": (BASE.replace('"hostile"', '"a\\nb"'), "project.name", CSV),
    "name injected quote": (BASE.replace('"hostile"', "'x\" # injected'"), "project.name", CSV),
    "metric for the wrong explicit task": (
        _with('metric = "rmse"\n', project='task = "classification"\n'),
        "train.metric",
        CSV,
    ),
    "metric for the wrong inferred task": (
        _with('metric = "roc_auc"\n').replace('"churned"', '"amount"'),
        "train.metric",
        AMOUNTS,
    ),
    "no such estimator": (
        BASE.replace('"lightgbm"', '"sklearn:sklearn.ensemble.NoSuchThing"'),
        "train.trainer",
        CSV,
    ),
    "no such estimator package": (
        BASE.replace('"lightgbm"', '"sklearn:evilpkg.Model"'),
        "train.trainer",
        CSV,
    ),
    "estimator not a class": (
        BASE.replace('"lightgbm"', '"sklearn:os.path.join"'),
        "train.trainer",
        CSV,
    ),
    "class not an estimator": (
        BASE.replace('"lightgbm"', '"sklearn:subprocess.Popen"'),
        "train.trainer",
        CSV,
    ),
    "regressor for classes": (
        BASE.replace('"lightgbm"', '"sklearn:sklearn.linear_model.Ridge"'),
        "train.trainer",
        CSV,
    ),
    "target not a column": (
        BASE.replace('target = "churned"', 'target = "left"'),
        "data.target",
        CSV,
    ),
    "train outside suffixes": (BASE.replace("train.csv", "train.exe"), "data.train", CSV),
    "train data empty": (BASE, "data.train", ""),
}


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def _assert_refused(result, *names: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, the reason
    assert lines[0].startswith("error: ")
    for name in names:
        assert name in lines[0], (name, lines[0])


@pytest.fixture
def cli():
    """`project add` and `project init` start no process: the cases run the CLI in this one."""
    return wb_inprocess


def _registered(home: Path) -> list[str]:
    """The projects in the store, read straight from its SQLite file."""
    if not (home / "workbench.db").exists():
        return []
    conn = sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True, timeout=10)
    try:
        return [row[0] for row in conn.execute("SELECT name FROM projects ORDER BY name")]
    finally:
        conn.close()


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_hostile_project_config(cli, wb_home, tmp_path, case):
    toml, key, data = CONFIGS[case]
    folder = tmp_path / "hostile"
    (folder / "data").mkdir(parents=True)
    target = "train.exe" if "train.exe" in toml else "train.csv"
    (folder / "data" / target).write_text(data)
    (folder / "workbench.toml").write_text(toml)
    before = _digest(folder)

    result = cli("project", "add", str(folder))

    _assert_refused(result, str((folder / "workbench.toml").resolve()), key)
    assert _digest(folder) == before
    assert _registered(wb_home) == []


# id -> (config.toml text, the key the error names)
SETTINGS: dict[str, tuple[str, str]] = {
    "sample_interval nan": ("[runs]\nsample_interval = nan\n", "runs.sample_interval"),
    "sample_interval inf": ("[runs]\nsample_interval = inf\n", "runs.sample_interval"),
    "sample_interval zero": ("[runs]\nsample_interval = 0\n", "runs.sample_interval"),
    "sample_interval tiny": ("[runs]\nsample_interval = 1e-9\n", "runs.sample_interval"),
    "sample_interval a day": ("[runs]\nsample_interval = 86400\n", "runs.sample_interval"),
    "sample_interval text": ('[runs]\nsample_interval = "fast"\n', "runs.sample_interval"),
    "sample_interval bool": ("[runs]\nsample_interval = true\n", "runs.sample_interval"),
    "stop_grace nan": ("[runs]\nstop_grace = nan\n", "runs.stop_grace"),
    "stop_grace negative": ("[runs]\nstop_grace = -3\n", "runs.stop_grace"),
    "stop_grace inf": ("[runs]\nstop_grace = inf\n", "runs.stop_grace"),
    "max_parallel zero": ("[runs]\nmax_parallel = 0\n", "runs.max_parallel"),
    "max_parallel fraction": ("[runs]\nmax_parallel = 2.5\n", "runs.max_parallel"),
    "max_parallel huge": ("[runs]\nmax_parallel = 1000000000\n", "runs.max_parallel"),
    "runs as a number": ("runs = 3\n", "runs"),
    "ui as a string": ('ui = "dark"\n', "ui"),
    "keys as a number": ("keys = 3\n", "keys"),
    "plugins as a list": ("plugins = [1]\n", "plugins"),
    "unknown theme": ('[ui]\ntheme = "blue"\n', "ui.theme"),
    "unknown section": ("[gpu]\nuse = true\n", "gpu"),
    "unknown key": ("[runs]\nturbo = true\n", "runs.turbo"),
}


@pytest.mark.parametrize("case", sorted(SETTINGS))
def test_hostile_user_settings(cli, wb_home, tmp_path, case):
    text, key = SETTINGS[case]
    wb_home.mkdir(parents=True, exist_ok=True)
    config = wb_home / "config.toml"
    config.write_text(text)

    result = cli("project", "init", str(tmp_path / "new"))

    _assert_refused(result, str(config), key)
    assert config.read_text() == text
    assert not (tmp_path / "new").exists()
    assert not (wb_home / "workbench.db").exists()  # refused before the store was touched


def _listing(folder: Path, home: Path) -> list[str]:
    """What is in `folder`, but the store (which any command may create)."""
    return sorted(p.name for p in folder.iterdir() if p != home)


def _data(tmp: Path) -> Path:
    folder = tmp / "mydata"
    folder.mkdir()
    (folder / "ok.csv").write_text(CSV)
    (folder / "empty.csv").write_text("")
    (folder / "header_only.csv").write_text("age,income,city,churned\n")
    (folder / "binary.csv").write_bytes(b"age,churned\n\x00\x01\x02\xff\xfe" * 50)
    (folder / "notes.txt").write_text(CSV)
    (folder / "fake.parquet").write_text(CSV)
    (folder / "fake.csv.gz").write_text(CSV)
    (folder / "ragged.csv").write_text(CSV + "1,2,3,4,5,6,7\n" + ROWS)
    (folder / "latin1.csv").write_bytes(("name,churned\n" + "Zoë,yes\n" * 12).encode("latin-1"))
    (folder / "single.csv").write_text("x,y\n" + "".join(f"{i},same\n" for i in range(20)))
    (folder / "few.csv").write_text("x,y\n1,a\n2,b\n3,a\n")
    (folder / "no_target_values.csv").write_text("x,y\n" + "".join(f"{i},\n" for i in range(20)))
    (folder / "only_target.csv").write_text("y\n" + "".join(f"{i % 2}\n" for i in range(20)))
    (folder / "huge_header.csv").write_text("a," + "b" * 200_000 + "\n" + "1,2\n" * 20)
    with gzip.open(folder / "bomb.csv.gz", "wb") as fh:
        fh.write(b"\x00" * 1000)
    (folder / "sub").mkdir()
    return folder


# id -> (arguments after `project init`, words the one-line reason must hold)
INIT: dict[str, tuple[list[str], list[str]]] = {
    "name path traversal": (["{new}", "--name", "../../evil"], ["--name", "../../evil"]),
    "name injected quote": (["{new}", "--name", 'x" # injected'], ["--name"]),
    "name with a newline": (["{new}", "--name", "a\nb"], ["--name"]),
    "name empty": (["{new}", "--name", ""], ["--name"]),
    "name too long": (["{new}", "--name", "x" * 65], ["--name"]),
    "name taken": (["{new}", "--name", "taken"], ["'taken'", "already registered"]),
    "folder not empty": (["{data}"], ["not an empty folder"]),
    "path is a file": (["{data}/ok.csv"], ["not a folder"]),
    "path under a file": (["{data}/ok.csv/deeper"], ["not a folder"]),
    "data missing": (
        ["{new}", "--data", "{data}/nope.csv", "--target", "churned"],
        ["--data", "nope.csv"],
    ),
    "data a folder": (
        ["{new}", "--data", "{data}/sub", "--target", "churned"],
        ["--data", "not a file"],
    ),
    "data empty": (
        ["{new}", "--data", "{data}/empty.csv", "--target", "churned"],
        ["--data", "empty"],
    ),
    "data header only": (
        ["{new}", "--data", "{data}/header_only.csv", "--target", "churned"],
        ["--data", "need at least"],
    ),
    "data binary": (
        ["{new}", "--data", "{data}/binary.csv", "--target", "churned"],
        ["--data", "binary"],
    ),
    "data wrong suffix": (
        ["{new}", "--data", "{data}/notes.txt", "--target", "churned"],
        ["--data", ".csv"],
    ),
    "data fake parquet": (
        ["{new}", "--data", "{data}/fake.parquet", "--target", "churned"],
        ["--data", "cannot read"],
    ),
    "data fake gzip": (
        ["{new}", "--data", "{data}/fake.csv.gz", "--target", "churned"],
        ["--data", "cannot read"],
    ),
    "data gzip of zeros": (
        ["{new}", "--data", "{data}/bomb.csv.gz", "--target", "churned"],
        ["--data"],
    ),
    "data ragged rows": (
        ["{new}", "--data", "{data}/ragged.csv", "--target", "churned"],
        ["--data", "cannot read"],
    ),
    "data not utf-8": (
        ["{new}", "--data", "{data}/latin1.csv", "--target", "churned"],
        ["--data", "cannot read"],
    ),
    "target missing": (
        ["{new}", "--data", "{data}/ok.csv", "--target", "left"],
        ["--target", "'left'", "'churned'"],
    ),
    "header field huge": (
        ["{new}", "--data", "{data}/huge_header.csv", "--target", "a"],
        ["--data", "field larger than field limit"],
    ),
    "target without data": (["{new}", "--target", "churned"], ["--data", "--target"]),
    "data without target": (["{new}", "--data", "{data}/ok.csv"], ["--data", "--target"]),
    "target one value": (
        ["{new}", "--data", "{data}/single.csv", "--target", "y"],
        ["--target", "single value"],
    ),
    "target too few rows": (
        ["{new}", "--data", "{data}/few.csv", "--target", "y"],
        ["--data", "at least"],
    ),
    "target all missing": (
        ["{new}", "--data", "{data}/no_target_values.csv", "--target", "y"],
        ["--data", "at least"],
    ),
    "target the only column": (
        ["{new}", "--data", "{data}/only_target.csv", "--target", "y"],
        ["--data", "no column besides"],
    ),
}


@pytest.mark.parametrize("case", sorted(INIT))
def test_hostile_project_init(cli, wb_home, tmp_path, case):
    args, words = INIT[case]
    data = _data(tmp_path)
    if case == "name taken":
        cli("project", "init", str(tmp_path / "first"), "--name", "taken", check=True)
    registered = _registered(wb_home)
    before = _digest(data)
    listing = _listing(tmp_path, wb_home)
    new = tmp_path / "new"
    argv = [a.format(new=new, data=data) for a in args]

    result = cli("project", "init", *argv)

    _assert_refused(result, *words)
    assert not new.exists()
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()
    assert _listing(tmp_path, wb_home) == listing  # nothing else made either
    assert _digest(data) == before
    assert _registered(wb_home) == registered
