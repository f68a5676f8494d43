"""Hostile data files and arguments for `project init --data FILE --target COLUMN`
and `data add PROJECT FILE`: empty, binary, non-UTF-8 and ragged files, broken
gzip and Parquet, folders and missing files named as data, targets that cannot
be learned, and names and destinations that must not be used.

Documented exit code: 2 for every case. Every case: no traceback, one line on
stderr naming the file or argument and what was expected, the user's file
unchanged, no project folder made, nothing registered in the store.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from wbtest import wb_inprocess


def _rows(n: int, label: Callable[[int], str] = lambda i: "pq"[i % 2]) -> str:
    return "".join(f"{i},{i * 0.5},{label(i)}\n" for i in range(n))


HEADER = "x,y,label\n"
GOOD = HEADER + _rows(40)


def _text(text: str, name: str = "data.csv") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_text(text)
        return path

    return make


def _bytes(data: bytes, name: str = "data.csv") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _folder(folder: Path) -> Path:
    path = folder / "folder.csv"
    path.mkdir()
    return path


def _missing(folder: Path) -> Path:
    return folder / "missing.csv"


def _dangling_link(folder: Path) -> Path:
    path = folder / "link.csv"
    path.symlink_to(folder / "gone.csv")
    return path


LATIN1 = (HEADER + _rows(40, lambda i: "été" if i % 2 else "hiver")).encode("latin-1")
RAGGED = HEADER + "".join(f"{i},{i},{'pq'[i % 2]},extra,more\n" for i in range(40))

# id -> (make the data file, --target, extra arguments, a phrase of the one-line reason)
INIT: dict[str, tuple[Callable[[Path], Path], str, list[str], str]] = {
    "empty file": (_text(""), "label", [], "is empty"),
    "NUL bytes": (_bytes(b"x,label\n1,\x00\n" * 20), "label", [], "binary data"),
    "not UTF-8": (_bytes(LATIN1), "label", [], "utf-8"),
    "ragged rows": (_text(RAGGED), "label", [], "more fields than the header"),
    "header only": (_text(HEADER), "label", [], "need at least 10"),
    "too few rows": (_text(HEADER + _rows(5)), "label", [], "need at least 10"),
    "target all empty": (_text(HEADER + _rows(40, lambda i: "")), "label", [], "need at least"),
    "one class": (_text(HEADER + _rows(40, lambda i: "p")), "label", [], "single value"),
    "only the target": (_text("label\n" + "p\nq\n" * 20), "label", [], "no column besides"),
    "no such target": (_text(GOOD), "nope", [], "--target: no column 'nope'"),
    "target 10k characters": (_text(GOOD), "t" * 10_000, [], "--target: no column"),
    "broken gzip": (_bytes(b"not gzip at all", "data.csv.gz"), "label", [], "as gzip"),
    "truncated gzip": (
        _bytes(gzip.compress(GOOD.encode())[:30], "data.csv.gz"),
        "label",
        [],
        "--data",
    ),
    "CSV named parquet": (_text(GOOD, "data.parquet"), "label", [], "--data"),
    "wrong suffix": (_text(GOOD, "data.txt"), "label", [], "expected a CSV or Parquet"),
    "a folder": (_folder, "label", [], "is not a file"),
    "missing file": (_missing, "label", [], "no such file"),
    "dangling link": (_dangling_link, "label", [], "no such file"),
    "name traversal": (_text(GOOD), "label", ["--name", "../evil"], "--name"),
    "name newline": (_text(GOOD), "label", ["--name", "a\nb"], "--name"),
    "name 65 characters": (_text(GOOD), "label", ["--name", "n" * 65], "--name"),
    "unknown template": (_text(GOOD), "label", ["--template", "evil"], "--template"),
}

# id -> (make the data file, a phrase of the one-line reason)
ADD: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty file": (_text(""), "is empty (0 bytes)"),
    "blank header": (_text("\n1,2\n"), "first line is empty; expected the column names"),
    "NUL bytes": (_bytes(b"x,label\n1,\x00\n"), "binary data"),
    "not UTF-8": (_bytes(LATIN1), "not UTF-8 text"),
    "broken gzip": (_bytes(b"not gzip at all", "data.csv.gz"), "cannot read it as csv.gz"),
    "CSV named parquet": (_text(GOOD, "data.parquet"), "cannot read it as parquet"),
    "wrong suffix": (_text(GOOD, "data.txt"), "expected a .csv, .csv.gz or .parquet"),
    "a folder": (_folder, "no such file"),
    "missing file": (_missing, "no such file"),
}


def _fingerprint(path: Path) -> str | None:
    if not path.exists() or path.is_dir():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused_in_one_line(result, phrase: str) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, (result.returncode, output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert phrase.lower() in lines[0].lower(), lines[0]


def _registered() -> list:
    listed = wb_inprocess("project", "list", "--json", check=True)
    return json.loads(listed.stdout)


@pytest.mark.parametrize("case", INIT)
def test_hostile_project_init_data_is_refused_in_one_line(case: str, tmp_path: Path) -> None:
    make, target, extra, phrase = INIT[case]
    source = make(tmp_path)
    before = _fingerprint(source)
    dest = tmp_path / "made" / "proj"

    result = wb_inprocess(
        "project", "init", str(dest), "--data", str(source), "--target", target, *extra
    )

    _refused_in_one_line(result, phrase)
    assert _fingerprint(source) == before
    assert not (tmp_path / "made").exists()
    assert _registered() == []


@pytest.mark.parametrize("place", ["a file", "a folder with files"])
def test_project_init_into_a_place_in_use_is_refused(place: str, tmp_path: Path) -> None:
    source = _text(GOOD)(tmp_path)
    dest = tmp_path / "dest"
    if place == "a file":
        dest.write_text("keep me")
    else:
        dest.mkdir()
        (dest / "notes.txt").write_text("keep me")
    before = sorted(str(p) for p in dest.parent.glob("dest*"))

    result = wb_inprocess(
        "project", "init", str(dest), "--data", str(source), "--target", "label"
    )

    _refused_in_one_line(result, "already exists")
    assert sorted(str(p) for p in dest.parent.glob("dest*")) == before
    kept = dest if place == "a file" else dest / "notes.txt"
    assert kept.read_text() == "keep me"
    assert not dest.is_dir() or [p.name for p in dest.iterdir()] == ["notes.txt"]
    assert _registered() == []


@pytest.mark.parametrize("case", ADD)
def test_hostile_data_add_is_refused_in_one_line(case: str, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    wb_inprocess(
        "project", "init", str(project), "--data", str(_text(GOOD, "good.csv")(tmp_path)),
        "--target", "label", "--name", "proj", check=True,
    )  # fmt: skip
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    make, phrase = ADD[case]
    source = make(incoming)
    before = _fingerprint(source)

    result = wb_inprocess("data", "add", "proj", str(source))

    _refused_in_one_line(result, phrase)
    assert _fingerprint(source) == before
    listed = json.loads(wb_inprocess("data", "list", "proj", "--json", check=True).stdout)
    assert listed == []


def test_data_add_for_an_unknown_project_is_refused(tmp_path: Path) -> None:
    source = _text(GOOD)(tmp_path)
    result = wb_inprocess("data", "add", "ghost", str(source))
    _refused_in_one_line(result, "no project named 'ghost'")


def test_the_corpus_is_large_enough() -> None:
    assert len(INIT) + 2 + len(ADD) + 1 >= 30
