"""Hostile export format names in a project's `[automation] export`.

The names are checked against the one list of formats (the built-ins and the
plugins' exporters) when the config is read. Every case: `project add` exits
2 with one line naming the file and `automation.export`, no traceback, the
user's files unchanged, and no project registered.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from wbtest import wb_inprocess

CSV = "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(12))
BASE = """[project]
name = "hostile"

[data]
train = "data/train.csv"
target = "y"

[train]
trainer = "lightgbm"

[automation]
export = [EXPORTS]
"""

# id -> the TOML array's items
EXPORTS: dict[str, str] = {
    "unknown name": '"zip"',
    "case differs": '"BUNDLE"',
    "padded": '" bundle"',
    "empty name": '""',
    "path traversal": '"../../bundle"',
    "shell text": '"bundle; rm -rf ~"',
    "newline inside": '"bundle\\nonnx"',
    "a number": "3",
    "a table": "{ name = \"bundle\" }",
    "a nested list": '["bundle"]',
    "huge name": '"' + "b" * 100_000 + '"',
    "one bad among good": '"bundle", "onnx", "tarball"',
}


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def _registered(home: Path) -> list[str]:
    if not (home / "workbench.db").exists():
        return []
    conn = sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True, timeout=10)
    try:
        return [row[0] for row in conn.execute("SELECT name FROM projects")]
    finally:
        conn.close()


@pytest.fixture
def cli():
    """`project add` starts no process: the cases run the CLI in this one."""
    return wb_inprocess


@pytest.mark.parametrize("case", sorted(EXPORTS))
def test_hostile_export_format_names(cli, wb_home, tmp_path, case):
    folder = tmp_path / "hostile"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.csv").write_text(CSV)
    (folder / "workbench.toml").write_text(BASE.replace("EXPORTS", EXPORTS[case]))
    before = _digest(folder)

    result = cli("project", "add", str(folder))

    assert result.returncode == 2, (result.stdout, result.stderr[:2000])
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[:2000]
    assert "automation.export" in lines[0] and "workbench.toml" in lines[0]
    assert _digest(folder) == before
    assert _registered(wb_home) == []
