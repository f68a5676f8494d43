"""Dataset versions: registered by content hash, and linked to the runs that used them."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil

import pandas as pd
import pytest
from wbtest import wb_auto


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto


def _project(cli, tmp_path):
    cli("project", "init", str(tmp_path / "p"), "--template", "lightgbm", check=True)
    return tmp_path / "p" / "data" / "train.csv"


def test_same_content_is_one_version_whatever_the_path(cli, tmp_path):
    train = _project(cli, tmp_path)
    before = train.read_bytes()
    first = json.loads(cli("data", "add", "p", str(train), "--json", check=True).stdout)
    assert first["sha256"] == hashlib.sha256(before).hexdigest()
    assert first["rows"] == 569 and len(first["columns"]) == 31 and first["format"] == "csv"
    copy = tmp_path / "copy.csv"
    shutil.copy(train, copy)
    again = json.loads(cli("data", "add", "p", str(copy), "--json", check=True).stdout)
    assert again["id"] == first["id"]
    assert train.read_bytes() == before  # never changed
    versions = json.loads(cli("data", "list", "p", "--json", check=True).stdout)
    assert [v["id"] for v in versions] == [first["id"]]


def test_gzip_and_parquet_versions(cli, tmp_path):
    train = _project(cli, tmp_path)
    frame = pd.read_csv(train).head(100)
    gz = tmp_path / "batch.csv.gz"
    with gzip.open(gz, "wt") as fh:
        frame.to_csv(fh, index=False)
    parquet = tmp_path / "batch.parquet"
    frame.to_parquet(parquet)
    for path, fmt in ((gz, "csv.gz"), (parquet, "parquet")):
        version = json.loads(cli("data", "add", "p", str(path), "--json", check=True).stdout)
        assert version["format"] == fmt and version["rows"] == 100
    assert len(json.loads(cli("data", "list", "p", "--json", check=True).stdout)) == 2


def test_bad_paths_are_clear_errors(cli, tmp_path):
    _project(cli, tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    for path, message in (
        (tmp_path / "missing.csv", "no such file"),
        (tmp_path, "no such file"),
        (tmp_path / "notes.txt", "expected a .csv, .csv.gz or .parquet file"),
    ):
        result = cli("data", "add", "p", str(path))
        assert result.returncode == 2, path
        assert message in result.stderr and "Traceback" not in result.stderr
    assert cli("data", "add", "nope", str(tmp_path / "x.csv")).returncode == 2


def test_a_run_points_at_the_data_version_it_trained_on(cli, tmp_path):
    train = _project(cli, tmp_path)
    added = json.loads(cli("data", "add", "p", str(train), "--json", check=True).stdout)
    run_id = cli("run", "start", "p", "--wait", check=True).stdout.split()[0]
    info = json.loads(cli("run", "show", run_id, "--json", check=True).stdout)
    assert [(d["id"], d["role"]) for d in info["datasets"]] == [(added["id"], "train")]
    versions = json.loads(cli("data", "list", "p", "--json", check=True).stdout)
    assert versions[0]["runs"] == 1
    # New content is a new version, and the next run points at it.
    frame = pd.read_csv(train)
    frame.head(400).to_csv(train, index=False)
    second = cli("run", "start", "p", "--wait", check=True).stdout.split()[0]
    info = json.loads(cli("run", "show", second, "--json", check=True).stdout)
    assert info["datasets"][0]["id"] != added["id"]
    assert info["datasets"][0]["rows"] == 400
