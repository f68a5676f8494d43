"""`data drift` on the sample projects: shifted batches flagged, malformed refused,
the model's metric on labelled batches reported next to its training metric."""

from __future__ import annotations

import json
import shutil

import pytest
from _data_fixtures import train_inline
from wbtest import REPO, wb_inprocess


@pytest.fixture
def cli():
    """The CLI in this process: `data drift` and `data list` start no process, and
    the one model is trained here too (`train_inline`): what is checked is what
    drift makes of a trained model, not the processes that train it."""
    return wb_inprocess


pytestmark = pytest.mark.slow


def _sample(cli, tmp_path, folder: str, name: str, train: bool = False):
    shutil.copytree(REPO / "sample_projects" / folder, tmp_path / folder)
    cli("project", "add", str(tmp_path / folder), check=True)
    if train:
        train_inline(tmp_path / folder)
    return tmp_path / folder / "data" / "incoming"


def _drift(cli, name, path):
    return json.loads(cli("data", "drift", name, str(path), "--json", check=True).stdout)


def test_shifted_batch_drifts_and_clean_batch_does_not(cli, tmp_path):
    incoming = _sample(cli, tmp_path, "penguins-lightgbm", "penguins")
    clean = _drift(cli, "penguins", incoming / "batch_01_clean.csv")
    assert clean["dataset_drift"] is False
    shifted = _drift(cli, "penguins", incoming / "batch_02_shifted.csv")
    assert shifted["dataset_drift"] is True
    drifted = {c["column"] for c in shifted["columns"] if c["drifted"]}
    assert {"body_mass_g", "flipper_length_mm"} <= drifted
    mass = next(c for c in shifted["columns"] if c["column"] == "body_mass_g")
    assert mass["method"] == "ks" and mass["p_value"] < 0.05 and mass["threshold"] == 0.05
    assert mass["reference_size"] > 200 and mass["current_size"] == 52
    assert "Kolmogorov" in mass["reason"]
    assert shifted["performance"] == {
        "available": False,
        "reason": "no model version yet",
    }
    reports = cli("data", "list", "penguins", "--json", check=True)
    assert len(json.loads(reports.stdout)) == 3  # reference + two batches registered


def test_malformed_batch_is_refused_with_the_reason(cli, tmp_path):
    incoming = _sample(cli, tmp_path, "penguins-lightgbm", "penguins")
    result = cli("data", "drift", "penguins", str(incoming / "batch_03_malformed.csv"))
    assert result.returncode == 1
    assert "separated by semicolons" in result.stderr and "Traceback" not in result.stderr


def test_degraded_model_is_reported_on_a_labelled_batch(cli, tmp_path):
    incoming = _sample(cli, tmp_path, "autompg-sklearn", "autompg", train=True)
    clean = _drift(cli, "autompg", incoming / "batch_01_clean.csv")["performance"]
    assert clean["available"] and clean["metric"] == "rmse"
    assert clean["degraded"] is False and clean["rows"] == 62
    shifted = _drift(cli, "autompg", incoming / "batch_02_shifted.csv")["performance"]
    assert shifted["degraded"] is True
    assert shifted["batch"] > 1.5 * shifted["training"]
    human = cli("data", "drift", "autompg", str(incoming / "batch_02_shifted.csv"), check=True)
    assert "(degraded)" in human.stderr


def test_drift_settings_from_workbench_toml(cli, tmp_path):
    incoming = _sample(cli, tmp_path, "penguins-lightgbm", "penguins")
    config = tmp_path / "penguins-lightgbm" / "workbench.toml"
    config.write_text(
        config.read_text() + '\n[drift]\nshare = 0.9\nmethod = "psi"\n'
        "[drift.columns.year]\nthreshold = 5.0\n"
    )
    result = _drift(cli, "penguins", incoming / "batch_02_shifted.csv")
    assert result["share_threshold"] == 0.9
    assert {c["method"] for c in result["columns"]} == {"psi"}
    assert next(c for c in result["columns"] if c["column"] == "year")["threshold"] == 5.0
    config.write_text(config.read_text().replace('method = "psi"', 'method = "magic"'))
    bad = cli("data", "drift", "penguins", str(incoming / "batch_02_shifted.csv"))
    assert bad.returncode == 2 and "drift.method" in bad.stderr
