"""Hostile batches given to `workbench data check`: a named pipe that would block
any reader, a folder named like a CSV, a file rewritten while it is read, a CSV
whose header repeats a column. Every case ends in a reason (exit 1, one line, no
traceback) or in a report about the bytes the file really holds."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from wbtest import REPO, wb_inprocess

from workbench.data import reading


@pytest.fixture
def penguins(tmp_path: Path) -> Path:
    folder = tmp_path / "penguins-lightgbm"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    wb_inprocess("project", "add", str(folder), check=True)
    return folder / "data" / "incoming"


def _check(path: Path):
    return wb_inprocess("data", "check", "penguins", str(path), "--json")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_without_opening_it(penguins, tmp_path):
    fifo = tmp_path / "batch.csv"
    os.mkfifo(fifo)  # nobody writes: opening it to read would wait for ever
    done = _check(fifo)
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert "is empty (0 bytes)" in result["drift_error"]
    assert result["validation"]["passed"] is False


def test_a_folder_named_like_a_csv_is_refused(penguins, tmp_path):
    folder = tmp_path / "batch.csv"
    folder.mkdir()
    done = _check(folder)
    assert done.returncode == 1
    assert "is a directory" in json.loads(done.stdout)["drift_error"]


def test_a_header_naming_a_column_twice_is_refused(penguins, tmp_path):
    batch = tmp_path / "twice.csv"
    text = (penguins / "batch_01_clean.csv").read_text().splitlines()
    header = text[0].split(",")
    header[1] = header[0]
    batch.write_text("\n".join([",".join(header), *text[1:]]) + "\n")
    done = wb_inprocess("data", "check", "penguins", str(batch))
    assert done.returncode == 1
    assert "more than once" in done.stderr and "Traceback" not in done.stderr


def test_a_file_rewritten_while_it_is_read_is_registered_by_its_final_bytes(
    penguins, tmp_path, monkeypatch
):
    batch = tmp_path / "batch.csv"
    shutil.copy(penguins / "batch_01_clean.csv", batch)
    parsed = threading.Event()
    check_text, read_csv = reading._check_text, reading._read_csv

    def parse(path):
        try:
            return read_csv(path)
        finally:
            parsed.set()

    def hash_then_rewrite(path, fmt):
        digest = check_text(path, fmt)  # the hash of the first content...
        assert parsed.wait(60)
        lines = batch.read_text().splitlines()
        grown = tmp_path / "grown.csv"
        grown.write_text("\n".join([*lines, lines[1]]) + "\n")
        os.replace(grown, batch)  # ...then another file takes its name
        return digest

    monkeypatch.setattr(reading, "_read_csv", parse)
    monkeypatch.setattr(reading, "_check_text", hash_then_rewrite)
    done = _check(batch)
    assert done.returncode == 0, done.stderr
    version = json.loads(done.stdout)["validation"]["dataset_version"]
    # The read's hash no longer names the file's bytes: the version is hashed again.
    assert version["sha256"] == hashlib.sha256(batch.read_bytes()).hexdigest()
    assert version["sha256"] != hashlib.sha256(
        (penguins / "batch_01_clean.csv").read_bytes()
    ).hexdigest()
