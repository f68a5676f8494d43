"""Hostile inputs to the tracking API: bad points mixed with good ones.

Documented behaviour (README, Tracking API): a bad point is refused with one
warning per kind of problem (`workbench.tracking.MetricWarning`, one line),
NaN and infinities are kept as points without a value, and the run's good
points are all kept: the script exits 0 and its run ends `succeeded`. No
traceback, the project's files are unchanged, nothing half-made is left in the
store's artifacts folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.templates import init_project

# (case id, the hostile call(s), what the one warning says; None: accepted silently)
CASES = [
    ("step-2**63", "wb.log_metric('loss', 1.0, step=2**63)", "64-bit range"),
    ("step-below-min", "wb.log_metric('loss', 1.0, step=-(2**63) - 1)", "64-bit range"),
    ("step-googol", "wb.log_metric('loss', 1.0, step=10**100)", "64-bit range"),
    ("step-fraction", "wb.log_metric('loss', 1.0, step=1.5)", "not a whole number"),
    ("step-string", "wb.log_metric('loss', 1.0, step='12')", "not a whole number"),
    ("step-nan", "wb.log_metric('loss', 1.0, step=float('nan'))", "not a whole number"),
    ("step-inf", "wb.log_metric('loss', 1.0, step=float('inf'))", "not a whole number"),
    ("step-evil-index", "wb.log_metric('loss', 1.0, step=EvilIndex())", "not a whole number"),
    ("value-none", "wb.log_metric('loss', None, step=5)", "is not a number"),
    ("value-text", "wb.log_metric('loss', 'abc', step=5)", "is not a number"),
    ("value-huge-int", "wb.log_metric('loss', 10**400, step=5)", "is not a number"),
    ("value-list", "wb.log_metric('loss', [1, 2], step=5)", "is not a number"),
    ("value-evil-float", "wb.log_metric('loss', EvilFloat(), step=5)", "is not a number"),
    ("value-inf", "wb.log_metric('loss', float('inf'), step=5)", "stored as missing"),
    ("value-nan", "wb.log_metric('loss', float('nan'), step=5)", "stored as missing"),
    ("key-none", "wb.log_metric(None, 1.0, step=5)", "keys are strings"),
    ("key-tuple", "wb.log_metric(('a',), 1.0, step=5)", "keys are strings"),
    ("key-bool", "wb.log_metric(True, 1.0, step=5)", "keys are strings"),
    ("key-evil-repr", "wb.log_metric(EvilRepr(), 1.0, step=5)", "keys are strings"),
    ("key-empty", "wb.log_metric('', 1.0, step=5)", "empty"),
    ("key-blank", "wb.log_metric('   ', 1.0, step=5)", "empty"),
    ("key-huge", "wb.log_metric('k' * 1_000_000, 1.0, step=5)", "at most 250"),
    ("key-nul", "wb.log_metric('a\\x00b', 1.0, step=5)", "control characters"),
    ("key-newline", "wb.log_metric('a\\nb', 1.0, step=5)", "control characters"),
    ("key-escape", "wb.log_metric('\\x1b[2J', 1.0, step=5)", "control characters"),
    ("metrics-not-a-mapping", "wb.log_metrics([('a', 1.0)], step=5)", "takes a mapping"),
    ("metrics-bad-step", "wb.log_metrics({'a': 1.0, 'b': 2.0}, step=2**64)", "64-bit range"),
    ("metrics-one-bad-value", "wb.log_metrics({'a': 1.0, 'b': None}, step=5)", "is not a number"),
    (
        "many-bad-points",
        "for i in range(10_000): wb.log_metric('loss', 1.0, step=2**63 + i)",
        "64-bit range",
    ),
    ("key-number", "wb.log_metric(7, 1.0, step=5)", None),
    # a str subclass whose hash and == raise: stored as its plain string, never hashed
    ("key-evil-str", "wb.log_metrics({'a': 1.0}); wb.log_metric(EvilStr('k'), 1.0)", None),
]

# Every case in one interpreter (one start-up, not thirty), each in a run of its
# own with its own stderr, so that "one warning per kind" is checked per case.
SCRIPT = """\
import contextlib, io, json, sys, traceback, warnings
import workbench as wb

class EvilFloat:
    def __float__(self):
        raise RuntimeError("no float for you")

class EvilIndex:
    def __index__(self):
        raise RuntimeError("no index for you")

class EvilRepr:
    def __repr__(self):
        raise RuntimeError("no repr for you")

class EvilStr(str):
    def __hash__(self):
        raise RuntimeError("no hash for you")
    def __eq__(self, other):
        raise RuntimeError("no eq for you")

warnings.simplefilter("default")
folder, cases = sys.argv[1], json.loads(sys.argv[2])
out = {}
for case, call in cases.items():
    warnings.resetwarnings()
    warnings.simplefilter("default")
    err, run_id, error = io.StringIO(), None, None
    with contextlib.redirect_stderr(err):
        try:
            with wb.start_run(project=folder) as run:
                run_id = run.id
                wb.log_metric("good", 1.0, step=0)
                exec(call, dict(globals()))
                wb.log_metric("good", 2.0, step=1)
        except BaseException:
            error = traceback.format_exc()
    out[case] = {"run_id": run_id, "stderr": err.getvalue(), "error": error}
print(json.dumps(out))
"""


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every case run against one project and store of this module's own."""
    root = tmp_path_factory.mktemp("hostile-tracking")
    home = root / "home"
    project = init_project(root / "p", "script")
    before = _digests(project)
    env = dict(os.environ, WORKBENCH_HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(project), json.dumps({c[0]: c[1] for c in CASES})],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    return {
        "done": done,
        "cases": json.loads(done.stdout) if done.returncode == 0 else {},
        "home": home,
        "unchanged": _digests(project) == before,
    }


@pytest.mark.parametrize(
    ("case", "reason"), [(c[0], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_hostile_points_are_refused_and_the_good_ones_kept(outcome, case, reason):
    done = outcome["done"]
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    found = outcome["cases"][case]
    assert found["error"] is None, found["error"]
    assert "Traceback" not in found["stderr"]
    warned = [line for line in found["stderr"].splitlines() if "MetricWarning" in line]
    if reason is None:
        assert warned == []
    else:
        assert len(warned) == 1, found["stderr"]  # one warning, not one per point
        assert reason in warned[0]
        assert len(warned[0]) < 400  # one short line, even for a megabyte key
    conn = sqlite3.connect(outcome["home"] / "workbench.db")
    try:
        run_id = found["run_id"]
        status = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        good = conn.execute(
            "SELECT m.step, m.value FROM metrics m JOIN metric_series s ON s.id = m.series_id"
            " WHERE s.run_id = ? AND s.key = 'good' ORDER BY m.idx",
            (run_id,),
        ).fetchall()
        keys = {
            k for (k,) in conn.execute("SELECT key FROM metric_series WHERE run_id = ?", (run_id,))
        }
    finally:
        conn.close()
    assert status == "succeeded"
    assert good == [(0, 1.0), (1, 2.0)]
    assert all(k and len(k) <= 250 and k.isprintable() for k in keys)
    assert outcome["unchanged"]  # the project's files
    artifacts = outcome["home"] / "artifacts"
    assert not artifacts.exists() or not list(artifacts.rglob("tmp*"))  # nothing half-made


# A store whose chunks were damaged or edited by hand: reading the series is
# one line on stderr naming the chunk, never a traceback.
DAMAGE = [
    ("truncated-values", "UPDATE metric_chunks SET vals = substr(vals, 1, 100)"),
    ("unknown-value-format", "UPDATE metric_chunks SET vals = CAST(X'7a' || vals AS BLOB)"),
    ("unknown-steps-format", "UPDATE metric_chunks SET steps = CAST('z' || steps AS BLOB)"),
    ("short-step-bitmap", "UPDATE metric_chunks SET steps = CAST('m' || substr(steps, 2) AS BLOB)"),
    ("count-too-big", "UPDATE metric_chunks SET count = 5000"),
    ("times-not-a-blob", "UPDATE metric_chunks SET ts = 'text'"),
]


@pytest.mark.parametrize("how", [d[1] for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_a_damaged_chunk_is_one_line_not_a_traceback(how, wb_home):
    from wbtest import wb_inprocess

    from workbench.store import metrics, open_store

    store = open_store()
    try:
        with store.write() as conn:
            conn.execute("INSERT INTO projects (name, path, created_at) VALUES ('p', '/p', 0)")
            conn.execute(
                "INSERT INTO runs (project_id, status, trainer, created_at)"
                " VALUES (1, 'succeeded', 'script', 0)"
            )
            points = [(i, 1.0 + i, i * 0.5) for i in range(3000)]
            metrics.append_points(conn, 1, {"loss": points})
            conn.execute(how)
    finally:
        store.close()
    for points in ("5000", "60"):  # point by point; in buckets
        args = ["run", "metrics", "1", "loss", "--points", points]
        result = wb_inprocess(*args)
        assert result.returncode != 0, result.stdout
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "metric chunk" in lines[0] and "fsck" in lines[0], lines
