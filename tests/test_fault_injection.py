"""kill -9 fault injection, a handful of deterministic cases of benchmarks/stress_kill.py.

Each case starts a real supervised run of a script that logs metrics and, each
time `wb.flush()` returns, records how many points it has logged; then it
SIGKILLs the trainer, the supervisor, or both. Afterwards the store passes
`PRAGMA integrity_check`, holds every point of a returned flush, no run is left
`running` or `queued`, and no process of the store is left alive. The stress
script does the same 50+ times at random moments.
"""

from __future__ import annotations

import sys

import pytest
from test_runs_e2e import script_project
from wbtest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import stress_kill  # noqa: E402

pytestmark = pytest.mark.slow

BATCHES = 150  # flushes of 100 points: about 3 s of training when left alone
AFTER = 1000  # kill once the trainer has flushed this many points (mid-training)


@pytest.fixture
def harness(cli, tmp_path, wb_home, fast_sampling) -> stress_kill.Harness:
    project = script_project(tmp_path / "stress", stress_kill.TRAIN_PY, name="stress")
    cli("project", "add", str(project), check=True)
    return stress_kill.Harness(wb_home, project, "stress", cli, batches=BATCHES)


def run_case(harness: stress_kill.Harness, kind: str, **kwargs) -> stress_kill.Outcome:
    outcome = harness.iteration(kind, **kwargs)
    assert not outcome.violations, outcome.describe()
    assert not outcome.missed, f"the kill came too late to test anything: {outcome.describe()}"
    return outcome


def test_killed_trainer_fails_and_keeps_its_flushed_points(harness):
    outcome = run_case(harness, "trainer", after_points=AFTER)
    assert outcome.killed == ["trainer"]
    assert outcome.status == "failed" and outcome.exit_code == -9
    assert outcome.witnessed >= AFTER
    assert outcome.stored["x"] >= outcome.witnessed


def test_killed_supervisor_makes_the_run_lost(harness):
    outcome = run_case(harness, "supervisor", after_points=AFTER)
    assert outcome.killed == ["supervisor"]
    assert outcome.first_status == "lost"  # on the very next read
    assert outcome.orphans_killed == 0  # its trainer died with it: nothing to clean up
    assert outcome.orphans_gone_s is not None
    assert outcome.witnessed >= AFTER
    assert outcome.stored["x"] >= outcome.witnessed


def test_both_killed_at_once(harness):
    outcome = run_case(harness, "both", after_points=AFTER, trainer_first=True, gap=0.0)
    assert outcome.killed == ["trainer", "supervisor"]
    assert outcome.status in ("failed", "lost")
    assert outcome.witnessed >= AFTER


def test_trainer_killed_during_start_up(harness):
    outcome = run_case(harness, "startup-trainer")
    assert outcome.killed == ["trainer"]
    assert outcome.status == "failed" and outcome.exit_code == -9


def test_supervisor_killed_during_start_up(harness):
    # Killed right after `run start` returns, the supervisor has usually not
    # claimed the run yet: it goes back in the queue and the next command
    # re-dispatches it, so it ends `succeeded`. A slower kill finds it lost.
    outcome = run_case(harness, "startup-supervisor", batches=40)
    assert outcome.killed == ["supervisor"]
    assert outcome.status in ("succeeded", "lost")
    if outcome.status == "succeeded":
        assert outcome.witnessed == 40 * 100
