"""`data validate` keeps the table it read, and `data drift` of the same unchanged
file reads it back instead of parsing the CSV again (`data/reading.py`): the same
frame, never a stale one, and only the newest table kept."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from workbench.core import env
from workbench.data import reading
from workbench.data.reading import read_checked


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(env.CACHE, str(folder))
    return folder / "checked-tables"


def _write(path, seed: int) -> None:
    frame = pd.DataFrame(
        {
            "x": [seed + 0.5, None, 2.25],
            "name": ["a", None, "ü"],
            "n": [1, 2, seed],
        }
    )
    frame.to_csv(path, index=False)


def test_a_kept_table_reads_back_as_the_same_frame(tmp_path, cache, monkeypatch):
    path = tmp_path / "batch.csv"
    _write(path, 1)
    fresh = read_checked(path, ["x", "name", "n"], keep=True)
    assert len(list(cache.glob("*.arrow"))) == 1

    def parsed(*_args, **_kwargs):
        raise AssertionError("the kept table should have been used")

    monkeypatch.setattr(reading, "_check_text", parsed)
    monkeypatch.setattr(reading, "_read_csv", parsed)
    again = read_checked(path, ["x", "name", "n"], reuse=True)
    pd.testing.assert_frame_equal(again, fresh)
    assert list(again.dtypes) == list(fresh.dtypes)


def test_a_changed_file_is_read_again_never_stale(tmp_path, cache):
    path = tmp_path / "batch.csv"
    _write(path, 1)
    read_checked(path, keep=True)
    _write(path, 7)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert read_checked(path, reuse=True)["n"].tolist() == [1, 2, 7]


def test_only_the_newest_table_is_kept(tmp_path, cache):
    for i in range(3):
        path = tmp_path / f"batch-{i}.csv"
        _write(path, i)
        read_checked(path, keep=True)
    assert len(list(cache.glob("*.arrow"))) == reading.KEPT_TABLES
    newest = read_checked(tmp_path / "batch-2.csv", reuse=True)
    assert newest["n"].tolist() == [1, 2, 2]


def test_a_damaged_kept_table_is_ignored(tmp_path, cache):
    path = tmp_path / "batch.csv"
    _write(path, 3)
    read_checked(path, keep=True)
    (kept,) = cache.glob("*.arrow")
    kept.write_bytes(b"not arrow")
    assert read_checked(path, reuse=True)["n"].tolist() == [1, 2, 3]
