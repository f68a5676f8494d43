"""Drift profiles computed when a dataset version is added: stored as a file keyed
by the content's hash and the profile version, reused by the first `data drift`,
computed again when the file is missing, damaged or keyed otherwise, and the
drift report the same either way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from wbtest import REPO, wb_inprocess

import workbench.data.drift as drift_package
from workbench.data import profiles
from workbench.data.reading import read_checked
from workbench.data.versions import register
from workbench.store import open_store


@pytest.fixture
def penguins(tmp_path: Path) -> Path:
    folder = tmp_path / "penguins-lightgbm"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    wb_inprocess("project", "add", str(folder), check=True)
    return folder


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the profiles computed from a table (every caller goes through
    `workbench.data.drift.reference_profile`, looked up when called)."""
    calls: list[int] = []
    real = drift_package.reference_profile

    def counting(frame, columns=None):
        calls.append(len(frame))
        return real(frame, columns)

    monkeypatch.setattr(drift_package, "reference_profile", counting)
    return calls


def _add(folder: Path) -> dict:
    train = folder / "data" / "train.csv"
    return json.loads(wb_inprocess("data", "add", "penguins", str(train), "--json", check=True).stdout)


def _drift(folder: Path, batch: str = "batch_02_shifted.csv") -> dict:
    path = folder / "data" / "incoming" / batch
    result = wb_inprocess("data", "drift", "penguins", str(path), "--json", check=True)
    return json.loads(result.stdout)


def _comparable(report: dict) -> dict:
    """The report less what names the store's rows (ids differ between stores)."""
    return {k: v for k, v in report.items() if k not in ("reference",)}


def test_data_add_stores_the_profile_and_the_first_drift_reuses_it(penguins, computed):
    version = _add(penguins)
    assert len(computed) == 1 and computed[0] == 240
    stored = profiles.profile_file(version["sha256"])
    assert stored.name == f"{version['sha256']}.v{drift_package.PROFILE_VERSION}.json"
    document = json.loads(stored.read_text())
    assert document["sha256"] == version["sha256"]
    assert document["profile_version"] == drift_package.PROFILE_VERSION
    assert set(document["profile"]["columns"]) == {
        "species", "island", "bill_length_mm", "bill_depth_mm",
        "flipper_length_mm", "body_mass_g", "sex", "year",
    }  # fmt: skip
    report = _drift(penguins)
    assert computed == [240]  # the reference was not profiled again
    assert report["reference"]["sha256"] == version["sha256"]
    assert report["dataset_drift"] is True
    # Adding the same content again finds the profile stored.
    _add(penguins)
    assert computed == [240]


def test_drift_is_the_same_with_and_without_a_stored_profile(
    penguins, computed, tmp_path, monkeypatch
):
    without = _drift(penguins)  # no `data add`: drift profiles the reference itself
    assert len(computed) == 1
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "second-home"))
    wb_inprocess("project", "add", str(penguins), check=True)
    shutil.rmtree(profiles.profile_file("0" * 64).parent, ignore_errors=True)
    _add(penguins)
    assert len(computed) == 2
    with_stored = _drift(penguins)
    assert len(computed) == 2
    assert _comparable(with_stored) == _comparable(without)
    # And in process: the profile read back from its file gives the same report.
    train, batch = penguins / "data" / "train.csv", penguins / "data" / "incoming"
    sha = with_stored["reference"]["sha256"]
    fresh = drift_package.profile.reference_profile(read_checked(train))
    for name in ("batch_01_clean.csv", "batch_02_shifted.csv"):
        current = read_checked(batch / name)
        assert drift_package.drift_report(profiles.load(sha), current) == (
            drift_package.drift_report(fresh, current)
        )


@pytest.mark.parametrize(
    "damage",
    ["missing", "cut short", "not json", "another hash", "another version", "no columns"],
)
def test_a_damaged_or_differently_keyed_profile_is_computed_again(penguins, computed, damage):
    version = _add(penguins)
    path, sha = profiles.profile_file(version["sha256"]), version["sha256"]
    good = path.read_bytes()
    document = json.loads(good)
    if damage == "missing":
        path.unlink()
    elif damage == "cut short":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "not json":
        path.write_bytes(b"\xff\x00 not a profile")
    elif damage == "another hash":
        path.write_text(json.dumps({**document, "sha256": "1" * 64}))
    elif damage == "another version":
        document["profile_version"] = document["profile"]["version"] = 999
        path.write_text(json.dumps(document))
    else:
        document["profile"]["columns"] = []
        path.write_text(json.dumps(document))
    assert profiles.load(sha) is None
    assert len(computed) == 1
    report = _drift(penguins)  # the first drift: nothing in the store's table yet
    assert len(computed) == 2  # computed again, not trusted
    assert path.read_bytes() == good  # and stored again as it should be
    assert report["dataset_drift"] is True


def test_another_profile_version_is_another_file(penguins, computed, monkeypatch):
    version = _add(penguins)
    old = profiles.profile_file(version["sha256"])
    monkeypatch.setattr(drift_package.profile, "PROFILE_VERSION", 99)
    assert profiles.profile_file(version["sha256"]).name.endswith(".v99.json")
    assert profiles.load(version["sha256"]) is None
    profile = profiles.profile_for(version["sha256"], penguins / "data" / "train.csv")
    assert profile["version"] == 99 and len(computed) == 2
    assert profiles.load(version["sha256"]) == profile and old.exists()


def test_a_file_no_reader_takes_is_added_without_a_profile(penguins, tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    added = wb_inprocess("data", "add", "penguins", str(ragged), "--json", check=True)
    version = json.loads(added.stdout)
    assert version["rows"] == 2
    assert not profiles.profile_file(version["sha256"]).exists()


def test_registering_without_a_profile_writes_none(penguins):
    store = open_store()
    project_id = json.loads(wb_inprocess("project", "list", "--json", check=True).stdout)[0]["id"]
    version = register(store, project_id, penguins / "data" / "train.csv", profile=False)
    assert not profiles.profile_file(version["sha256"]).exists()
    again = register(store, project_id, penguins / "data" / "train.csv")
    assert again["id"] == version["id"]
    assert profiles.load(version["sha256"]) is not None
