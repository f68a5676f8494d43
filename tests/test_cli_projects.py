"""Project commands, doctor and demo through the real CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from wbtest import REPO, wb, wb_inprocess


@pytest.fixture
def cli():
    """In this process, but for `demo`, which starts runs and a watcher."""

    def run(*args: str, **options):
        return (wb if args[:1] == ("demo",) else wb_inprocess)(*args, **options)

    return run


def test_init_add_list_show(cli, tmp_path):
    for template in ("lightgbm", "sklearn", "script"):
        created = cli(
            "project",
            "init",
            str(tmp_path / template),
            "--template",
            template,
            "--json",
            check=True,
        )
        assert json.loads(created.stdout)["name"] == template
    assert (tmp_path / "script" / "train.py").is_file()
    listed = json.loads(cli("project", "list", "--json", check=True).stdout)
    assert sorted(p["name"] for p in listed) == ["lightgbm", "script", "sklearn"]
    assert all(p["runs"] == 0 and not p["missing"] for p in listed)
    info = json.loads(cli("project", "show", "sklearn", "--json", check=True).stdout)
    assert info["task"] == "regression"  # inferred from the target: templates do not fix it
    assert "distinct values" in info["task_reason"]
    assert info["trainer"] == "sklearn:sklearn.ensemble.HistGradientBoostingRegressor"
    assert info["target"] == "progression"
    assert info["best"] is None
    human = cli("project", "list", check=True).stdout
    assert "lightgbm" in human and "sklearn" in human


def test_add_is_idempotent_and_names_are_unique(cli, tmp_path):
    cli("project", "init", str(tmp_path / "a"), "--name", "same", check=True)
    again = cli("project", "add", str(tmp_path / "a"), "--json", check=True)
    assert json.loads(again.stdout)["name"] == "same"
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    clash = cli("project", "add", str(tmp_path / "b"))
    assert clash.returncode == 2
    assert "already registered" in clash.stderr and "Traceback" not in clash.stderr


def test_init_refuses_a_non_empty_folder(cli, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = cli("project", "init", str(tmp_path / "busy"))
    assert result.returncode == 2
    assert "not an empty folder" in result.stderr
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_a_deleted_project_folder_is_reported_not_crashed(cli, tmp_path):
    cli("project", "init", str(tmp_path / "gone"), check=True)
    shutil.rmtree(tmp_path / "gone")
    listed = json.loads(cli("project", "list", "--json", check=True).stdout)
    assert listed[0]["missing"] is True
    info = json.loads(cli("project", "show", "gone", "--json", check=True).stdout)
    assert "no longer exists" in info["config_error"]
    start = cli("run", "start", "gone")
    assert start.returncode == 2 and "no longer exists" in start.stderr


def test_broken_config_after_registration_blocks_the_run(cli, tmp_path):
    cli("project", "init", str(tmp_path / "p"), check=True)
    config = tmp_path / "p" / "workbench.toml"
    config.write_text(config.read_text().replace('trainer = "lightgbm"', 'trainer = "xgboostt"'))
    result = cli("run", "start", "p")
    assert result.returncode == 2
    assert str(config) in result.stderr and "train.trainer" in result.stderr
    assert json.loads(cli("run", "list", "--json", check=True).stdout) == []


def test_doctor_reports_store_and_missing_gpu(cli):
    info = json.loads(cli("doctor", "--json", check=True).stdout)
    assert info["store"]["integrity"] == "ok"
    assert info["store"]["journal_mode"] == "wal"
    assert info["store"]["pending_migrations"] == []
    assert info["gpu"]["available"] is False
    assert info["gpu"]["reason"]  # says why, e.g. no driver
    assert info["libraries"]["lightgbm"]
    assert "max_user_watches" in info["inotify"]
    assert "integrity ok" in cli("doctor", check=True).stdout


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_demo_trains_every_sample_project(cli, wb_home):
    before = _tree_digest(REPO / "sample_projects")
    result = cli("demo", "--headless", "--json", check=True, timeout=300)
    results = json.loads(result.stdout)
    assert sorted(r["project"] for r in results) == ["autompg", "cancer", "penguins"]
    for r in results:
        assert r["status"] == "succeeded", r
        assert r["value"] is not None
        assert r["rss_bytes_max"] and r["rss_bytes_max"] > 0
    assert (wb_home / "workspace" / "penguins-lightgbm" / "workbench.toml").is_file()
    assert _tree_digest(REPO / "sample_projects") == before  # the repo is never modified
    # The loop: every batch dropped into the watched folder went through a pipeline.
    batches = {(r["project"], b["file"]): b for r in results for b in r["batches"]}
    assert len(batches) == 10
    for project in ("autompg", "cancer", "penguins"):
        malformed = batches[(project, "batch_03_malformed.csv")]
        assert malformed["outcome"] == "rejected" and malformed["exit_code"] == 1
        shifted = batches[(project, "batch_02_shifted.csv")]
        assert [s["step"] for s in shifted["steps"]][:4] == [
            "register",
            "validate",
            "drift",
            "retrain",
        ]
    assert batches[("cancer", "batch_04_empty.csv")]["outcome"] == "rejected"
    assert any(s["status"] == "alert" for b in batches.values() for s in b["steps"])
    promoted = [b for b in batches.values() if b["outcome"] == "promoted"]
    assert promoted and all(b["steps"][-1]["step"] == "export" for b in promoted)
    # The demo stops the watcher it started.
    assert json.loads(cli("watch", "status", "--json", check=True).stdout)["running"] is False
    retrains = sum(any(s["step"] == "retrain" for s in b["steps"]) for b in batches.values())

    table = cli("demo", "--headless", check=True, timeout=300).stdout
    assert "penguins" in table and "succeeded" in table
    runs = json.loads(cli("run", "list", "--json", check=True).stdout)
    # A second demo reuses the workspace: three more baselines, no batch twice.
    assert len(runs) == 3 + retrains + 3
    cancer = next(r for r in runs if r["project"] == "cancer")
    assert {"val_loss", "val_accuracy", "roc_auc"} <= set(cancer["metrics"])


def test_init_leaves_nothing_when_the_name_is_taken(cli, tmp_path):
    cli("project", "init", str(tmp_path / "a"), "--name", "same", check=True)

    clash = cli("project", "init", str(tmp_path / "deep" / "b"), "--name", "same")

    assert clash.returncode == 2 and "already registered" in clash.stderr
    assert not (tmp_path / "deep").exists()


def test_a_bad_user_config_stops_every_store_command(cli, wb_home, tmp_path):
    wb_home.mkdir(parents=True, exist_ok=True)
    (wb_home / "config.toml").write_text("runs = 3\n")

    for args in (("project", "list"), ("run", "list"), ("project", "init", str(tmp_path / "x"))):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "config.toml" in result.stderr and "[runs]" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()
