"""Real writers under a real watcher: a file is taken only once complete, and a
file that changes after it was taken supersedes its earlier version.

Each test registers a small project, starts the real watcher daemon
(`workbench watch start --detach`), and has a separate Python process write into the
watched folder the way real tools do: pausing with the file open, appending in
open-append-close steps, dying mid-line under SIGKILL, or replacing a file a
pipeline already took. The outcome is read back from the store.

A writer killed mid-file is taken once it is gone (its descriptor closed with
it) and the quiet period has passed: there is no way to know it meant to write
more. Its cut-off last row then has too few fields, and validation rejects the
file with that reason; nothing is trained on it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wbtest import wb_auto, wb_inprocess

pytestmark = pytest.mark.slow


@pytest.fixture
def cli():
    """The watcher and the pipeline start real processes; the other commands
    (registering a project, the watcher's status and stop) run in this one."""
    return wb_auto

QUIET = "1.0"  # seconds; the writers below pause for longer than this, file open
START = ("--detach", "--quiet", QUIET, "--debounce", "0.2")

PROJECT_TOML = """\
[project]
name = "{name}"
task = "classification"
[data]
train = "data/train.csv"
target = "y"
watch = ["data/incoming"]
[train]
trainer = "script"
script = "train.py"
metric = "accuracy"
[automation]
on_new_data = "{on_new_data}"
promote = "if-better"
export = []
"""

# Trains a logistic regression on whatever the workbench hands it; waits for a
# `go` file first, so a test can change data while the pipeline is training.
TRAIN_PY = """\
import time
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
import workbench as wb

gate = wb.project_dir() / "go"
deadline = time.monotonic() + 120
while not gate.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
target = wb.project_config()["data"]["target"]
path = wb.train_file()
frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
x, y = frame.drop(columns=[target]), frame[target].astype(str)
x_train, x_val, y_train, y_val = wb.holdout_split(x, y)
model = LogisticRegression().fit(x_train, y_train)
wb.log_metrics({"accuracy": accuracy_score(y_val, model.predict(x_val))})
wb.log_model(model, x_val, y_val, x_train=x_train)
"""

# The writers: real processes, pausing on purpose (that is what is under test).
PAUSING_WRITER = """\
import sys, time
path, lines, pause = sys.argv[1], sys.argv[2].split("|"), float(sys.argv[3])
half = len(lines) // 2
with open(path, "w") as out:
    out.write("".join(lines[:half]))
    out.flush()
    time.sleep(pause)  # longer than the quiet period, the file still open
    out.write("".join(lines[half:]))
"""

APPENDING_WRITER = """\
import sys, time
path, lines = sys.argv[1], sys.argv[2].split("|")
steps, pause = int(sys.argv[3]), float(sys.argv[4])
size = -(-len(lines) // steps)
for start in range(0, len(lines), size):
    with open(path, "a") as out:  # open, append, close
        out.write("".join(lines[start:start + size]))
    time.sleep(pause)  # shorter than the quiet period
"""

DYING_WRITER = """\
import sys, time
path, lines = sys.argv[1], sys.argv[2].split("|")
with open(path, "w") as out:
    out.write("".join(lines))
    out.write("0.25,")  # a row cut short: the rest never comes
    out.flush()
    time.sleep(600)  # killed here
"""


def rows(count: int, seed: int = 0, header: bool = True) -> list[str]:
    """CSV lines of a learnable two-feature problem."""
    import random

    rng = random.Random(seed)
    out = ["x1,x2,y\n"] if header else []
    for _ in range(count):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        out.append(f"{a:.4f},{b:.4f},{int(a + b + rng.gauss(0, 0.3) > 0)}\n")
    return out


def make_project(root: Path, name: str, on_new_data: str = "validate") -> Path:
    folder = root / name
    (folder / "data" / "incoming").mkdir(parents=True)
    (folder / "data" / "train.csv").write_text("".join(rows(120, seed=1)))
    (folder / "workbench.toml").write_text(
        PROJECT_TOML.format(name=name, on_new_data=on_new_data)
    )
    (folder / "train.py").write_text(TRAIN_PY)
    return folder


def query(sql: str, params: tuple = ()) -> list[tuple]:
    db = Path(os.environ["WORKBENCH_HOME"]) / "workbench.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_until(predicate, timeout: float, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    return predicate()


def watcher_log() -> str:
    log = Path(os.environ["WORKBENCH_HOME"]) / "watcher" / "watcher.log"
    return log.read_text() if log.exists() else "(no log)"


def pipelines() -> list[dict]:
    out = []
    for pid, state, outcome, files in query(
        "SELECT id, state, outcome, files FROM pipelines ORDER BY id"
    ):
        steps = {
            (step, Path(file).name if file else ""): (status, summary, json.loads(detail or "{}"))
            for step, file, status, summary, detail in query(
                "SELECT step, file, status, summary, detail FROM pipeline_steps"
                " WHERE pipeline_id = ?",
                (pid,),
            )
        }
        out.append(
            {
                "id": pid,
                "state": state,
                "outcome": outcome,
                "files": json.loads(files),
                "steps": steps,
            }
        )
    return out


def done(count: int) -> list[dict] | None:
    found = pipelines()
    finished = [p for p in found if p["state"] in ("done", "failed")]
    return found if len(finished) >= count and len(finished) == len(found) else None


@pytest.fixture
def watching(cli, tmp_path):
    """A registered project under a running watcher daemon; stopped afterwards."""

    def start(name: str, on_new_data: str = "validate") -> Path:
        folder = make_project(tmp_path, name, on_new_data)
        cli("project", "add", str(folder), check=True)
        cli("watch", "start", name, *START, check=True)
        return folder

    yield start
    cli("watch", "stop", timeout=60)


def spawn(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_a_writer_pausing_with_the_file_open_gives_one_pipeline_on_the_full_file(
    watching, cli
):
    folder = watching("pausing")
    target = folder / "data" / "incoming" / "batch.csv"
    lines = rows(60)
    writer = spawn(PAUSING_WRITER, str(target), "|".join(lines), "3.0")
    # During the pause the watcher sees the writer, and waits.
    assert wait_until(lambda: "batch.csv is still open for writing" in watcher_log(), 20), (
        watcher_log()
    )
    assert writer.wait(timeout=60) == 0, writer.stderr.read()
    found = wait_until(lambda: done(1), 60)
    assert found, watcher_log()
    # Exactly one pipeline, on the full file: none was ever queued on the half.
    [only] = found
    assert only["files"] == [str(target)] and only["outcome"] == "validated", only
    assert only["steps"][("register", "batch.csv")][2]["rows"] == 60
    assert target.read_text() == "".join(lines)  # the user's file is untouched
    status = json.loads(cli("watch", "status", "--json", check=True).stdout)
    assert status["writer_check"] is True
    assert "open for writing" in status["complete_when"]


def test_an_append_in_steps_writer_gives_one_pipeline_with_every_row(watching):
    folder = watching("appending")
    target = folder / "data" / "incoming" / "steps.csv"
    lines = rows(80)
    # Eight open-append-close steps, 0.4 s apart: each close is not the end.
    writer = spawn(APPENDING_WRITER, str(target), "|".join(lines), "8", "0.4")
    assert writer.wait(timeout=60) == 0, writer.stderr.read()
    found = wait_until(lambda: done(1), 60)
    assert found, watcher_log()
    [only] = found
    assert only["outcome"] == "validated", only
    assert only["steps"][("register", "steps.csv")][2]["rows"] == 80
    assert watcher_log().count("steps.csv is complete") == 1


def test_a_writer_killed_mid_line_is_taken_once_gone_and_rejected_with_the_reason(watching):
    folder = watching("killed")
    target = folder / "data" / "incoming" / "cut.csv"
    writer = spawn(DYING_WRITER, str(target), "|".join(rows(40)))
    assert wait_until(lambda: "cut.csv is still open for writing" in watcher_log(), 20), (
        watcher_log()
    )
    assert not pipelines()  # nothing taken while the writer lives
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    found = wait_until(lambda: done(1), 60)
    assert found, watcher_log()
    [only] = found
    assert only["outcome"] == "rejected", only
    status, summary, _ = only["steps"][("validate", "cut.csv")]
    assert status == "rejected" and "wrong number of fields" in summary, summary
    assert target.read_text().endswith("0.25,")  # left as it is
    assert query("SELECT COUNT(*) FROM runs") == [(0,)]


def test_a_file_replaced_after_it_was_taken_supersedes_the_earlier_batch(
    watching, tmp_path
):
    folder = watching("replaced", on_new_data="validate-and-retrain")
    incoming = folder / "data" / "incoming"
    staging = tmp_path / "staging"
    staging.mkdir()
    half, full = rows(50, seed=7), rows(100, seed=7)  # the half is the full file's start
    (staging / "batch.csv").write_text("".join(half))
    os.replace(staging / "batch.csv", incoming / "batch.csv")

    # Pipeline 1 trains on the half; while it trains, the finished file replaces it.
    training = wait_until(
        lambda: query(
            "SELECT COUNT(*) FROM pipeline_steps WHERE pipeline_id = 1 AND step = 'retrain'"
        )
        == [(1,)],
        60,
    )
    assert training, watcher_log()
    (staging / "batch.csv").write_text("".join(full))
    os.replace(staging / "batch.csv", incoming / "batch.csv")
    assert wait_until(lambda: len(pipelines()) == 2, 30), watcher_log()
    (folder / "go").touch()  # let the training runs finish

    found = wait_until(lambda: done(2), 120)
    assert found, watcher_log()
    first, second = found
    # The model trained on the superseded half is not promoted, and says why.
    assert first["outcome"] == "not promoted: trained on superseded data", first
    status, summary, detail = first["steps"][("promote", "")]
    assert status == "skipped" and "batch.csv changed after it was taken" in summary
    assert detail["promoted"] is False
    # The full file supersedes the half: its rows replace the half's, not add to them.
    register = second["steps"][("register", "batch.csv")][2]
    assert register["rows"] == 100
    half_version = first["steps"][("register", "batch.csv")][2]["version"]
    assert register["supersedes"] == [{"version": half_version, "pipeline": 1}]
    run_1, run_2 = (p["steps"][("retrain", "")][2]["run"] for p in (first, second))
    totals = dict(
        query(
            "SELECT run_id, value FROM params WHERE key = '_rows_total' AND run_id IN (?, ?)",
            (run_1, run_2),
        )
    )
    assert json.loads(totals[run_1]) == 120 + 50
    assert json.loads(totals[run_2]) == 120 + 100  # not 120 + 50 + 100
    assert second["outcome"] == "promoted", second
    champion = query(
        "SELECT v.run_id FROM model_aliases a JOIN model_versions v ON v.id = a.version_id"
        " WHERE a.alias = 'champion'"
    )
    assert champion == [(run_2,)]
    kinds = [k for (k,) in query("SELECT kind FROM events ORDER BY id")]
    assert "data.superseded" in kinds and "pipeline.superseded" in kinds


def test_the_pipeline_command_leaves_a_file_still_being_written_for_later(cli, tmp_path):
    folder = make_project(tmp_path, "cron")
    cli("project", "add", str(folder), check=True)
    incoming = folder / "data" / "incoming"
    (incoming / "done.csv").write_text("".join(rows(30, seed=3)))
    writer = spawn(DYING_WRITER, str(incoming / "open.csv"), "|".join(rows(30, seed=4)))
    try:
        partial = incoming / "open.csv"
        assert wait_until(lambda: partial.exists() and partial.read_text().endswith("0.25,"), 20)
        # `on_new_data = "validate"` retrains nothing: no process, so in this one.
        first = wb_inprocess("pipeline", "run", "cron", "--json")
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["files"] == [str(incoming / "done.csv")]
        assert f"skipped open.csv: still open for writing (pid {writer.pid})" in first.stderr
    finally:
        writer.kill()
        writer.wait(timeout=10)
    second = wb_inprocess("pipeline", "run", "cron", "--json")  # its writer is gone: taken, judged
    assert second.returncode == 1, second.stderr
    report = json.loads(second.stdout)
    assert report["files"] == [str(incoming / "open.csv")] and report["outcome"] == "rejected"
