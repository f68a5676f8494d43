"""Job journals: what the tracking API writes inside a job, and ingestion that
adds each record once, whatever the cut points of the reads (Hypothesis), and
never a record whose line is not complete yet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core import paths
from workbench.runs.executors import journal
from workbench.runs.executors.journal import JOURNAL_ENV, JournalRun, ingest, whole_lines
from workbench.store import jobs as job_store
from workbench.store import metrics as metric_store
from workbench.store import open_store
from workbench.store import runs as run_store
from workbench.store.runs import RunStatus


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (root / "train.py").write_text("print('hi')\n")
    (root / "workbench.toml").write_text(
        textwrap.dedent("""\
        [project]
        name = "journaled"
        [data]
        train = "data/train.csv"
        target = "y"
        [train]
        trainer = "script"
        script = "train.py"
        """)
    )
    return root


def new_job(store, folder: Path) -> job_store.Job:
    """A queued run handed to Slurm, its journal in `folder`."""
    from workbench.projects import add_project
    from workbench.store import projects as project_records

    known = project_records.by_name(store, "journaled")
    pid = known.id if known else add_project(store, make_project(folder.parent / "project"))["id"]
    rid = run_store.insert_queued(store, pid, "script", {}, project_name="journaled")
    folder.mkdir(parents=True, exist_ok=True)
    job_store.mark_submitted(
        store, rid, executor="slurm", job_id="42", journal_path=str(folder / "journal.jsonl")
    )
    job = job_store.job_of(store, rid)
    assert job is not None
    return job


def records(n_points: int) -> list[dict]:
    lines: list[dict] = [
        {"t": "start", "ts": 1000.0, "node": "node07", "job_id": "42", "pid": 1},
        {"t": "params", "v": {"lr": "0.1", "depth": "3"}},
    ]
    for chunk in range(0, n_points, 7):
        pts = [[i, 1000.0 + i, i / 2] for i in range(chunk, min(n_points, chunk + 7))]
        lines.append({"t": "m", "k": "loss", "p": pts})
        lines.append(
            {"t": "res", "ts": 1000.0 + chunk, "cpu_percent": 50.0, "rss_bytes": 1 << 20,
             "num_threads": 2, "num_procs": 1, "read_bytes": 0, "write_bytes": 0,
             "sys_cpu_percent": 10.0, "sys_mem_percent": 20.0, "sys_mem_used": 1 << 30,
             "gpu": None}  # fmt: skip
        )
    lines.append({"t": "exit", "ts": 2000.0, "status": "succeeded", "code": 0, "message": None})
    return lines


def encoded(lines: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in lines)


def counts(store, rid: int) -> tuple[int, int, dict]:
    samples = run_store.resource_totals(store, rid)["samples"]
    return point_counts(store, rid).get("loss", 0), samples, run_store.params(store, rid)


def point_counts(store, rid: int) -> dict[str, int]:
    return {s["key"]: s["count"] for s in metric_store.series_list(store.conn, rid)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), n_points=st.integers(0, 40))
def test_reading_at_any_cut_points_adds_every_record_once(tmp_path, data, n_points):
    store = open_store()
    folder = tmp_path / f"job-{os.urandom(4).hex()}"
    job = new_job(store, folder)
    blob = encoded(records(n_points))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=6)))
    path = folder / "journal.jsonl"
    written = 0
    for cut in [*cuts, len(blob)]:
        with open(path, "ab") as f:
            f.write(blob[written:cut])
        written = max(written, cut)
        ingest(store, job)
        # Never a partial line's record, never a record twice.
        offset = job_store.journal_offset(store, job.run_id)
        assert offset == 0 or blob[offset - 1 : offset] == b"\n"
    ingest(store, job)
    ingest(store, job)
    n, samples, params = counts(store, job.run_id)
    assert n == n_points
    assert samples == (n_points + 6) // 7
    assert params == {"lr": 0.1, "depth": 3}
    run = run_store.get(store, job.run_id)
    assert run.status is RunStatus.SUCCEEDED
    assert run.started_at == 1000.0 and run.ended_at == 2000.0
    assert job_store.job_of(store, job.run_id).node == "node07"
    assert job_store.journal_offset(store, job.run_id) == len(blob)
    store.close()


def test_a_truncated_last_line_waits_until_it_is_complete(tmp_path):
    store = open_store()
    folder = tmp_path / "job"
    job = new_job(store, folder)
    first = encoded([{"t": "m", "k": "acc", "p": [[0, 1.0, 0.5]]}])
    second = encoded([{"t": "m", "k": "acc", "p": [[1, 2.0, 0.7]]}])
    path = folder / "journal.jsonl"
    path.write_bytes(first + second[:-9])
    result = ingest(store, job)
    assert result.records == 1 and result.bytes == len(first)
    assert metric_store.latest_values(store.conn, [job.run_id])[job.run_id]["acc"] == 0.5
    with open(path, "ab") as f:
        f.write(second[-9:])
    assert ingest(store, job).records == 1
    assert ingest(store, job).records == 0
    assert metric_store.latest_values(store.conn, [job.run_id])[job.run_id]["acc"] == 0.7
    store.close()


def test_a_damaged_line_is_skipped_and_the_rest_kept(tmp_path):
    store = open_store()
    folder = tmp_path / "job"
    job = new_job(store, folder)
    (folder / "journal.jsonl").write_bytes(
        b'{"t": "m", "k": "a", "p": [[0, 1.0, 1.0]]}\n'
        b"\x00\x00garbage\n"
        b'{"t": "m", "k": "", "p": [[0, 1.0, 1.0]]}\n'
        b'{"t": "m", "k": "b", "p": [["x", 1.0, 1.0]]}\n'
        b'{"t": "a", "name": "x", "sha256": "../../etc/passwd", "size": 1}\n'
        b'[1, 2]\n'
        b'{"t": "m", "k": "c", "p": [[0, 1.0, 3.0]]}\n'
    )
    result = ingest(store, job)
    assert result.skipped == 2
    latest = metric_store.latest_values(store.conn, [job.run_id])[job.run_id]
    assert latest == {"a": 1.0, "c": 3.0}
    assert run_store.artifacts(store, job.run_id) == []
    store.close()


def test_the_tracking_api_in_a_job_writes_the_journal_and_never_the_store(tmp_path):
    """A trainer with WORKBENCH_JOURNAL set: params, metrics (NaN kept as a point
    with no value), an artifact; ingestion brings them, and the artifact's bytes,
    into the store."""
    store = open_store()
    folder = tmp_path / "job"
    job = new_job(store, folder)
    (tmp_path / "model.txt").write_text("weights")
    script = textwrap.dedent(f"""\
        import workbench as wb
        wb.log_params({{"lr": 0.5}})
        for i in range(100):
            wb.log_metric("loss", 1 / (i + 1), step=i)
        wb.log_metric("loss", float("nan"), step=100)
        wb.log_metrics({{"acc": 0.9, "f1": 0.8}}, step=1)
        wb.log_artifact({str(tmp_path / "model.txt")!r}, kind="model")
        """)
    env = {
        **os.environ,
        "WORKBENCH_HOME": str(tmp_path / "node-home"),  # the job's, never the store's
        "WORKBENCH_RUN_ID": str(job.run_id),
        JOURNAL_ENV: str(folder / "journal.jsonl"),
    }
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    assert not (tmp_path / "node-home" / "workbench.db").exists()
    ingest(store, job)
    latest = metric_store.latest_values(store.conn, [job.run_id])[job.run_id]
    assert latest["acc"] == 0.9 and latest["f1"] == 0.8
    assert point_counts(store, job.run_id)["loss"] == 101
    assert run_store.params(store, job.run_id) == {"lr": 0.5}
    (artifact,) = run_store.artifacts(store, job.run_id)
    assert artifact.kind == "model" and artifact.size == 7
    assert paths.artifact_file(artifact.sha256).read_text() == "weights"
    store.close()


def test_a_blob_whose_bytes_do_not_match_is_refused(tmp_path):
    store = open_store()
    folder = tmp_path / "job"
    job = new_job(store, folder)
    sha = "ab" * 32
    (folder / "blobs").mkdir()
    (folder / "blobs" / sha).write_text("not what the hash says")
    (folder / "journal.jsonl").write_text(
        json.dumps({"t": "a", "name": "m.bin", "sha256": sha, "size": 3, "ts": 1.0}) + "\n"
    )
    ingest(store, job)
    assert run_store.artifacts(store, job.run_id) == []
    assert not paths.artifact_file(sha).exists()
    store.close()


@pytest.mark.parametrize(
    ("data", "lines", "used"),
    [(b"", [], 0), (b"abc", [], 0), (b"a\nb", [b"a"], 2), (b"a\nb\n", [b"a", b"b"], 4)],
)
def test_whole_lines(data, lines, used):
    assert whole_lines(data) == (lines, used)


def test_a_signalled_job_leaves_its_outcome_to_slurm(tmp_path):
    store = open_store()
    folder = tmp_path / "job"
    job = new_job(store, folder)
    (folder / "journal.jsonl").write_bytes(
        encoded(
            [
                {"t": "start", "ts": 5.0, "node": "n1"},
                {"t": "exit", "ts": 9.0, "status": journal.SIGNALLED, "code": -15},
            ]
        )
    )
    ingest(store, job)
    run = run_store.get(store, job.run_id)
    assert run.status is RunStatus.RUNNING and run.exit_code == -15
    store.close()
