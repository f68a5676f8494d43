"""`workbench pipeline`: the automation pipeline once, in the foreground, on the
real sample projects: rejected data, drift alerts, better and worse challengers,
exports, and a pipeline killed mid-way that finishes exactly once."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _data_fixtures import train_inline
from _runs_fixtures import train_template
from wbtest import REPO, wb_auto, wb_inprocess


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto

pytestmark = pytest.mark.slow


def _template(tmp_path_factory, shared_cache: Path, *train_args: str):
    """The penguins sample registered and trained once for the module; each test
    gets a copy of it. The weak champion is trained by `run start --wait` with
    `train_args` (its tests check what a lone run leaves behind); the default one
    by the project's trainer in this process (what the pipeline reads of it, its
    run and registered champion, is the same)."""

    def baseline(cli, folder: Path) -> None:
        if train_args:
            cli("run", "start", "penguins", "--wait", *train_args, check=True, timeout=300)
        else:
            train_inline(folder)

    return train_template(
        tmp_path_factory,
        shared_cache,
        REPO / "sample_projects" / "penguins-lightgbm",
        baseline,
        name="default" if not train_args else "weak",
        folder="penguins",
    )


@pytest.fixture(scope="module")
def default_template(tmp_path_factory, shared_cache):
    return _template(tmp_path_factory, shared_cache)


@pytest.fixture(scope="module")
def weak_template(tmp_path_factory, shared_cache):
    # A deliberately weak champion: one tree. A lone run starts no warm server.
    template = _template(tmp_path_factory, shared_cache, "--set", "n_estimators=1")
    assert not (template.home / "warm.log").exists()
    return template


@pytest.fixture
def trained(default_template, wb_home: Path) -> Path:
    """The penguins project with one run of its own params, in this test's store."""
    return default_template.install(wb_home)


@pytest.fixture
def weakly_trained(weak_template, wb_home: Path) -> Path:
    """The penguins project with one run of a single tree, in this test's store."""
    return weak_template.install(wb_home)


def _set_params(folder: Path, params: str) -> None:
    config = folder / "workbench.toml"
    lines = [
        f"params = {params}" if line.startswith("params =") else line
        for line in config.read_text().splitlines()
    ]
    config.write_text("\n".join(lines) + "\n")


def _events(kind_prefix: str) -> list[dict]:
    from workbench.store import open_store

    store = open_store()
    try:
        return store.rows(
            "SELECT kind, message, data FROM events WHERE kind LIKE ? ORDER BY id",
            (kind_prefix + "%",),
        )
    finally:
        store.close()


def _runs(cli) -> list[dict]:
    return json.loads(cli("run", "list", "--json", check=True).stdout)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_malformed_data_is_rejected_without_retraining(cli, trained):
    folder = trained
    bad = folder / "data" / "incoming" / "batch_03_malformed.csv"
    before = (_sha(bad), bad.stat().st_mtime_ns)

    # Rejected data retrains nothing, so the pipeline starts no process: run in this one.
    result = wb_inprocess("pipeline", "run", "penguins", str(bad), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "rejected"
    assert [(s["step"], s["status"]) for s in report["steps"]] == [
        ("register", "ok"),
        ("validate", "rejected"),
    ]
    assert "semicolons" in report["steps"][1]["summary"]
    assert len(_runs(cli)) == 1  # nothing retrained
    assert (_sha(bad), bad.stat().st_mtime_ns) == before  # the file is untouched
    assert bad.exists()
    rejected = _events("notify.data.rejected")
    assert len(rejected) == 1 and "batch_03_malformed.csv" in rejected[0]["message"]

    # The same content again: recognised by its hash, nothing to do.
    copy = folder / "data" / "incoming" / "copy.csv"
    shutil.copy(bad, copy)
    again = wb_inprocess("pipeline", "run", "penguins", str(copy), "--json")
    assert again.returncode == 0
    report = json.loads(again.stdout)
    assert report["outcome"] == "nothing to do"
    assert report["steps"][0]["status"] == "skipped"
    assert "already rejected" in report["steps"][0]["summary"]


def test_a_better_challenger_is_promoted_and_exported(cli, weakly_trained):
    folder = weakly_trained  # a deliberately weak champion: one tree
    clean = folder / "data" / "incoming" / "batch_01_clean.csv"

    result = cli("pipeline", "run", "penguins", str(clean), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "promoted"
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == [
        "register",
        "validate",
        "drift",
        "retrain",
        "evaluate",
        "promote",
        "export",
    ]
    run_id = steps["retrain"]["detail"]["run"]
    assert steps["promote"]["detail"]["promoted"] is True
    assert (
        steps["promote"]["detail"]["challenger_score"]
        > steps["promote"]["detail"]["champion_score"]
    )
    versions = json.loads(cli("model", "list", "penguins", "--json", check=True).stdout)
    assert versions[0]["run_id"] == run_id and versions[0]["aliases"] == ["champion"]

    # Trained on the reference plus the accepted batch.
    shown = json.loads(cli("run", "show", str(run_id), "--json", check=True).stdout)
    assert shown["params"]["_rows_total"] == 240 + 52
    exported = Path(steps["export"]["detail"]["path"])
    assert exported == folder / "exports" / "penguins-v2-bundle"
    assert (exported / "manifest.json").is_file()
    assert cli("model", "verify", str(exported)).returncode == 0
    promoted = _events("notify.model.promoted")
    assert len(promoted) == 1


def test_a_pipelines_retrain_is_forked_ready_by_the_warm_server(cli, weakly_trained, wb_home):
    """Batches come in series, so a pipeline's retrain starts the warm server: its
    trainer (and the next ones) are forked with the libraries already imported.
    A quick fit may end before its first resource sample; it still reports a peak."""
    from workbench.runs import warm

    folder = weakly_trained
    assert not (wb_home / "warm.log").exists()  # a lone run starts no server
    clean = folder / "data" / "incoming" / "batch_01_clean.csv"

    report = json.loads(cli("pipeline", "run", "penguins", str(clean), "--json").stdout)
    retrain = {s["step"]: s for s in report["steps"]}["retrain"]
    assert retrain["status"] == "ok", retrain
    assert warm._server_alive()  # it stays for the next batch (until idle)
    log = (wb_home / "warm.log").read_text()
    assert "forked a trainer" in log, log
    shown = json.loads(cli("run", "show", str(retrain["detail"]["run"]), "--json").stdout)
    assert shown["status"] == "succeeded"
    assert shown["resources"]["rss_bytes_max"] > 0


def test_a_worse_challenger_keeps_the_champion_and_drift_raises_an_alert(cli, trained):
    folder = trained
    _set_params(folder, "{ n_estimators = 1, num_leaves = 2 }")  # retrains weaker
    shifted = folder / "data" / "incoming" / "batch_02_shifted.csv"

    result = cli("pipeline", "run", "penguins", str(shifted), "--json")
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "kept champion"
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["drift"]["status"] == "alert"
    assert "body_mass_g" in steps["drift"]["detail"]["drifted_columns"]
    assert steps["promote"]["status"] == "kept"
    assert "export" not in steps
    versions = json.loads(cli("model", "list", "penguins", "--json", check=True).stdout)
    assert [v["aliases"] for v in versions] == [["challenger"], ["champion"]]
    assert len(_events("notify.data.drift")) == 1


def test_unlabelled_drift_alerts_without_retraining(cli, trained):
    import pandas as pd

    folder = trained
    incoming = folder / "data" / "incoming"
    shifted = pd.read_csv(incoming / "batch_02_shifted.csv")
    for other in incoming.iterdir():
        other.unlink()
    unlabelled = incoming / "unlabelled.csv"
    shifted.drop(columns=["species"]).to_csv(unlabelled, index=False)

    # Unlabelled rows retrain nothing: no process is started, so in this one.
    result = wb_inprocess("pipeline", "run", "penguins", "--json")  # picks up the new file itself
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["files"] == [str(unlabelled)] and report["outcome"] == "drift alert"
    steps = [(s["step"], s["file"] and Path(s["file"]).name, s["status"]) for s in report["steps"]]
    assert ("drift", "unlabelled.csv", "alert") in steps
    assert all(step != "retrain" for step, _, _ in steps)
    assert len(_runs(cli)) == 1


def test_a_pipeline_killed_mid_training_finishes_exactly_once(cli, weakly_trained):
    folder = weakly_trained
    # Training long enough that the kill lands while the retraining run is going
    # (it is killed as soon as that run is seen running); one thread, as the
    # trainer would choose for this small table.
    _set_params(folder, "{ n_estimators = 500, learning_rate = 0.01, num_leaves = 15, n_jobs = 1 }")
    clean = folder / "data" / "incoming" / "batch_01_clean.csv"
    for other in clean.parent.iterdir():  # the resume below must find no other new file
        if other != clean:
            other.unlink()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "pipeline", "run", "penguins", str(clean)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    from workbench.store import open_store

    store = open_store()
    training = (
        "SELECT COUNT(*) FROM runs JOIN params ON params.run_id = runs.id"
        " WHERE params.key = '_pipeline' AND runs.status = 'running'"
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if store.scalar(training):
            break
        assert proc.poll() is None, "the pipeline ended before its retraining run started"
        time.sleep(0.1)
    else:
        pytest.fail("the pipeline's retraining run never started")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.scalar("SELECT state FROM pipelines") == "running"

    # The resume waits out the run and evaluates, promotes and exports: it starts
    # no process, so it runs in this one.
    resumed = wb_inprocess("pipeline", "run", "penguins", "--json", timeout=600)
    assert "resumed pipeline 1" in resumed.stderr
    row = store.row("SELECT state, outcome FROM pipelines WHERE id = 1")
    assert row == {"state": "done", "outcome": "promoted"}
    retrains = store.scalar("SELECT COUNT(*) FROM params WHERE key = '_pipeline'")
    assert retrains == 1  # the run the killed pipeline started was waited for, not repeated
    assert store.scalar("SELECT COUNT(*) FROM promotions WHERE promoted = 1") == 2
    steps = store.rows("SELECT step, COUNT(*) AS n FROM pipeline_steps GROUP BY step")
    assert all(s["n"] == 1 for s in steps)
    store.close()
