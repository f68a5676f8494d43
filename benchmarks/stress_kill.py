"""kill -9 fault injection: SIGKILL the trainer and/or the supervisor of real runs.

Reliability requirement: after a kill -9 at a random moment of the trainer or of
the supervisor, `PRAGMA integrity_check` is ok, every point from a returned
`wb.flush()` is in the store, and no run is left `running` (or `queued`).

Each iteration starts a supervised run (`workbench run start PROJECT`) of a
script project whose train.py logs two metric series ("x" and "y", one
`log_metrics` call per point) and, each time `wb.flush()` returns, appends the
number of points logged so far to `witness/<run id>.txt` in the project folder
(fsync'ed): that number of points is durable. After a random delay it SIGKILLs

  kind                when (after `run start` returned)           expected status
  trainer             the trainer (pid from the runs table),      failed
                      after 0.1-2.0 s
  supervisor          the supervisor, after 0.1-2.0 s             lost, on the next read
  both                both, in random order, at once or 0-50 ms   failed or lost
                      apart, after 0.1-2.0 s
  startup-trainer     the trainer as soon as its pid is recorded  failed
  startup-supervisor  the supervisor after 0-0.12 s: importing,   lost; or, killed before
                      claiming the run, spawning the trainer      it claimed the run, the
                                                                  run goes back in the
                                                                  queue, the next command
                                                                  re-runs it: succeeded

Each run is drawn to last from half to all of `--batches` flushes (1.5-3 s),
so a few kills land just as the run ends by itself (the supervisor recording
the outcome, or already gone): such a run may also end `succeeded`.

After a supervisor is killed, its trainer must die with it (the kernel kills
it: PR_SET_PDEATHSIG): the harness waits up to ORPHAN_DEADLINE_S for every
process of the supervisor's session to be gone, measures how long that took,
and kills (and reports) any that is still alive. Then it checks:

  integrity    `PRAGMA integrity_check` is "ok" (and `foreign_key_check` is empty)
  points       both series hold at least the last witnessed count, and the
               witnessed points themselves (values 0 .. count-1)
  consistency  series count == points decoded == chunk counts, x == y
               (one flush writes both series in one transaction)
  status       no run is `running` or `queued` once things settle (10 s); the
               killed run has its `ended_at`
  outcome      the final status is one of those expected for the kind of kill
  orphans      nothing of a killed supervisor's session outlives it
  processes    no process of this store is left alive afterwards

Not a test: always exits 0, ending with "all invariants held" or "violations: N".

    python benchmarks/stress_kill.py [--iterations 50] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from workbench.runs import process_tree

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, sandbox  # noqa: E402

TRAIN_PY = """\
import os
import time

import workbench as wb

params = wb.params()
batches = int(params.get("batches", 150))
batch_size = int(params.get("batch_size", 100))
pause = float(params.get("pause", 0.02))

os.makedirs("witness", exist_ok=True)
witness = os.open(os.path.join("witness", os.environ["WORKBENCH_RUN_ID"] + ".txt"),
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
logged = 0
for _ in range(batches):
    for _ in range(batch_size):
        wb.log_metrics({"x": logged, "y": logged}, step=logged)
        logged += 1
    wb.flush()  # durable once it returns: record how many points that covers
    os.write(witness, b"%d\\n" % logged)
    os.fsync(witness)
    time.sleep(pause)
"""

KEYS = ("x", "y")
TERMINAL = ("succeeded", "failed", "stopped", "lost")
EXPECTED = {
    "trainer": {"failed"},
    "supervisor": {"lost"},
    "both": {"failed", "lost"},
    "startup-trainer": {"failed"},
    "startup-supervisor": {"lost", "succeeded"},
}
KINDS = tuple(EXPECTED)
WEIGHTS = (3, 3, 2, 1, 1)
CHECKS = (
    "integrity",
    "points",
    "consistency",
    "status",
    "outcome",
    "orphans",
    "processes",
    "harness",
)
SETTLE_S = 10.0
ORPHAN_DEADLINE_S = 20.0  # generous; the kernel kills the trainer at once


@dataclass
class Outcome:
    """What one iteration did and found."""

    kind: str
    delay: float
    batches: int = 0  # flushes of 100 points the trainer would do if left alone
    run_id: int | None = None
    killed: list[str] = field(default_factory=list)  # "trainer", "supervisor"
    missed: list[str] = field(default_factory=list)  # targets that had exited before the kill
    trainer_ended: bool = False  # the trainer had finished by itself before the kill
    first_status: str | None = None  # `run show` right after the kill
    status: str | None = None  # once settled
    exit_code: int | None = None
    message: str | None = None
    witnessed: int = 0  # last count written after a returned flush
    stored: dict[str, int] = field(default_factory=dict)  # points per key in the store
    orphans: list[str] = field(default_factory=list)  # left alive by a killed supervisor
    orphans_killed: int = 0
    orphans_gone_s: float | None = None  # supervisor's kill -> its session empty
    untracked_orphans: int = 0  # orphans whose pid is not the run's recorded trainer pid
    redispatched: bool = False  # a new supervisor took the run over
    seconds: float = 0.0
    violations: list[tuple[str, str]] = field(default_factory=list)  # (check, detail)

    def fail(self, check: str, detail: str) -> None:
        self.violations.append((check, detail))

    def describe(self) -> str:
        head = (
            f"{self.kind} kill after {self.delay:.2f}s: run {self.run_id} "
            f"{self.first_status} -> {self.status} (exit {self.exit_code}, {self.message!r}); "
            f"witnessed {self.witnessed}, stored {self.stored}"
        )
        return "\n".join([head, *(f"  {check}: {detail}" for check, detail in self.violations)])


_process = process_tree.find  # the live process with this pid and create time


def _kill(proc: psutil.Process | None) -> bool:
    if proc is None:
        return False
    try:
        proc.kill()
        return True
    except psutil.Error:
        return False


def _gone(proc: psutil.Process) -> bool:
    try:  # is_running() also compares the create time, so a reused pid counts as gone
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(procs: list[psutil.Process], timeout: float = 5.0) -> list[psutil.Process]:
    """Wait until each process has exited (or is a zombie); returns those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if not _gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if not _gone(p)]
    return alive


def _session(sid: int) -> list[psutil.Process]:
    """Live processes of session `sid` (a supervisor is a session leader; the
    trainer and its children stay in its session)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if (
                proc.pid != sid
                and os.getsid(proc.pid) == sid
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


class Harness:
    """Runs kill iterations against one store and one registered script project.

    `wb(*args, check=False)` runs the CLI against that store (WORKBENCH_HOME is
    in its environment) and returns the `CompletedProcess`.
    """

    def __init__(
        self,
        home: Path,
        project_dir: Path,
        project: str,
        wb: Callable[..., subprocess.CompletedProcess],
        batches: int = 150,
    ) -> None:
        self.home = Path(home)
        self.project_dir = Path(project_dir)
        self.project = project
        self.wb = wb
        self.batches = batches

    # -- the store, read directly -------------------------------------------------

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = sqlite3.connect(self.home / "workbench.db", timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def run_row(self, run_id: int) -> dict:
        cols = (
            "status",
            "pid",
            "pid_started_at",
            "supervisor_pid",
            "supervisor_started_at",
            "exit_code",
            "message",
            "ended_at",
        )
        row = self.query(f"SELECT {', '.join(cols)} FROM runs WHERE id = ?", (run_id,))[0]
        return dict(zip(cols, row, strict=True))

    def show(self, run_id: int) -> dict | None:
        """`run show --json`: a run whose supervisor is gone shows as lost (not recorded)."""
        done = self.wb("run", "show", str(run_id), "--json", check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None

    # -- one iteration ---------------------------------------------------------------

    def iteration(
        self,
        kind: str,
        delay: float = 0.0,
        trainer_first: bool = True,
        batches: int | None = None,
        gap: float = 0.0,
        after_points: int = 0,
    ) -> Outcome:
        """Start a run, SIGKILL `kind` `delay` seconds after `run start` returned, check.

        With `after_points`, the kill also waits until the trainer has witnessed that
        many flushed points (deterministic tests on a loaded machine). For "both",
        `trainer_first` orders the two kills and `gap` seconds separate them.
        """
        out = Outcome(kind=kind, delay=round(delay, 3), batches=batches or self.batches)
        t0 = time.monotonic()
        try:
            self._iteration(out, trainer_first, gap, after_points)
        finally:
            out.seconds = round(time.monotonic() - t0, 2)
        return out

    def _iteration(self, out: Outcome, trainer_first: bool, gap: float, after_points: int) -> None:
        kind = out.kind
        started = self.wb(
            "run", "start", self.project, "--json", "--set", f"batches={out.batches}", check=False
        )
        t_started = time.monotonic()
        if started.returncode != 0:
            out.fail("harness", f"run start exited {started.returncode}: {started.stderr.strip()}")
            return
        info = json.loads(started.stdout)
        run_id = out.run_id = int(info["id"])
        if info["status"] != "running":
            out.fail("harness", f"run start left the run {info['status']} (a slot is still busy)")

        # Wait for the moment, then pick the victims.
        time.sleep(max(0.0, t_started + out.delay - time.monotonic()))
        deadline = time.monotonic() + 20
        while after_points and self._witnessed(run_id) < after_points:
            if time.monotonic() > deadline:
                out.fail("harness", f"the trainer never flushed {after_points} points")
                break
            time.sleep(0.01)
        if kind == "startup-supervisor":
            row = self.run_row(run_id)  # whatever it has got to: importing, spawning...
        else:
            row = self._wait_for_trainer(run_id)
            if row is None:
                out.fail("harness", "the trainer's pid never appeared in the runs table")
                self._cleanup(out)
                return
        supervisor = _process(row["supervisor_pid"], row["supervisor_started_at"])
        trainer = _process(row["pid"], row["pid_started_at"])
        # The training may have finished by itself just before the kill (a short run).
        out.trainer_ended = kind != "startup-supervisor" and trainer is None
        victims: list[tuple[str, psutil.Process | None]] = []
        if kind in ("trainer", "startup-trainer"):
            victims = [("trainer", trainer)]
        elif kind in ("supervisor", "startup-supervisor"):
            victims = [("supervisor", supervisor)]
        else:
            victims = [("trainer", trainer), ("supervisor", supervisor)]
            if not trainer_first:
                victims.reverse()
        for i, (name, proc) in enumerate(victims):
            if i:
                time.sleep(gap)
            if _kill(proc):
                out.killed.append(name)
            else:
                out.missed.append(name)  # it had exited already: the run ended by itself
        _wait_gone([p for _, p in victims if p is not None])

        # The first read after the kill: a dead supervisor must show as lost right away.
        first = self.show(run_id)
        out.first_status = first["status"] if first else None
        if "supervisor" in out.killed and kind != "startup-supervisor":
            allowed = (
                {"lost"}
                | ({"failed"} if "trainer" in out.killed else set())
                | ({"succeeded"} if out.trainer_ended else set())
            )
            if out.first_status not in allowed:
                out.fail(
                    "outcome",
                    "the first `run show` after the supervisor's kill said"
                    f" {out.first_status}, expected {'/'.join(sorted(allowed))}",
                )

        # A killed supervisor takes its trainer along: wait for its session to empty,
        # then kill (and report) whatever is left.
        if "supervisor" in out.killed and supervisor is not None:
            t_kill = time.monotonic()
            orphans = _session(supervisor.pid)
            while orphans and time.monotonic() - t_kill < ORPHAN_DEADLINE_S:
                time.sleep(0.02)
                orphans = _session(supervisor.pid)
            if not orphans:
                out.orphans_gone_s = round(time.monotonic() - t_kill, 3)
            tracked = self.run_row(run_id)["pid"]
            for proc in orphans:
                with contextlib.suppress(psutil.Error):
                    out.orphans.append(
                        f"{proc.pid} {' '.join(proc.cmdline()[-2:])}"
                        + ("" if proc.pid == tracked else " (not in runs.pid)")
                    )
                out.orphans_killed += _kill(proc)
                out.untracked_orphans += proc.pid != tracked
            if orphans:
                out.fail(
                    "orphans",
                    f"{len(orphans)} processes outlived their supervisor by"
                    f" {ORPHAN_DEADLINE_S:.0f} s: {'; '.join(out.orphans)}",
                )
            _wait_gone(orphans)

        self._settle(out)
        self._check_points(out)
        self._check_integrity(out)
        self._cleanup(out)

    def _wait_for_trainer(self, run_id: int, timeout: float = 15.0) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.run_row(run_id)
            if row["pid"]:
                return row
            if row["status"] in TERMINAL:
                return None
            time.sleep(0.01)
        return None

    def _settle(self, out: Outcome) -> None:
        """Wait for the run's outcome, then for every run to leave running/queued."""
        run_id = out.run_id
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            # `run show` only reads (it shows a dead run lost without recording it); any
            # other command reconciles: records lost runs and restarts re-queued ones.
            self.wb("project", "list", "--json", check=False)
            info = self.show(run_id)
            if info and info["status"] in TERMINAL:
                break
            time.sleep(0.2)
        row = self.run_row(run_id)
        out.status, out.exit_code, out.message = row["status"], row["exit_code"], row["message"]
        if out.status in TERMINAL and row["ended_at"] is None:
            out.fail("status", f"run {run_id} is {out.status} but has no ended_at")
        out.redispatched = out.first_status in ("queued", "running") and "supervisor" in out.killed
        allowed = EXPECTED[out.kind] | ({"succeeded"} if out.trainer_ended else set())
        if out.status not in allowed:
            out.fail(
                "outcome",
                f"expected {'/'.join(sorted(allowed))}, got {out.status}"
                f" (exit {out.exit_code}, {out.message!r})",
            )
        if "trainer" in out.killed and out.status == "failed" and out.exit_code != -9:
            out.fail("outcome", f"failed with exit code {out.exit_code}, expected -9 (SIGKILL)")
        deadline = max(deadline, time.monotonic() + 3.0)
        while True:
            # Listings only read; any other command reconciles (records lost runs, dispatches).
            self.wb("project", "list", "--json", check=False)
            open_runs = self.query(
                "SELECT id, status FROM runs WHERE status IN ('running', 'queued') ORDER BY id"
            )
            if not open_runs or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if open_runs:
            out.fail(
                "status",
                "still "
                + ", ".join(f"run {i} {s}" for i, s in open_runs)
                + f" {SETTLE_S:.0f} s after the kill",
            )

    def _witnessed(self, run_id: int) -> int:
        path = self.project_dir / "witness" / f"{run_id}.txt"
        if not path.exists():
            return 0
        text = path.read_text()
        lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
        return int(lines[-1]) if lines else 0

    def _check_points(self, out: Outcome) -> None:
        run_id = out.run_id
        out.witnessed = witnessed = self._witnessed(run_id)
        for key in KEYS:
            found = self.query(
                "SELECT id, count FROM metric_series WHERE run_id = ? AND key = ?", (run_id, key)
            )
            series_id, count = found[0] if found else (None, 0)
            out.stored[key] = count
            rows, present, bucketed = self.query(
                "SELECT (SELECT COUNT(*) FROM metrics WHERE series_id = ?),"
                " (SELECT COUNT(DISTINCT value) FROM metrics WHERE series_id = ? AND value < ?),"
                " (SELECT COALESCE(SUM(count), 0) FROM metric_chunks WHERE series_id = ?)",
                (series_id, series_id, witnessed, series_id),
            )[0]
            if count < witnessed:
                out.fail("points", f"{key}: {count} points stored, {witnessed} were flushed")
            if present != witnessed:
                out.fail(
                    "points",
                    f"{key}: {present} of the {witnessed} flushed points (values"
                    f" 0..{witnessed - 1}) are in the store",
                )
            if rows != count or bucketed != count:
                out.fail(
                    "consistency",
                    f"{key}: metric_series.count {count}, points decoded {rows},"
                    f" chunks hold {bucketed}",
                )
        if len(set(out.stored.values())) > 1:
            out.fail("consistency", f"series written in the same flushes differ: {out.stored}")

    def _check_integrity(self, out: Outcome) -> None:
        result = [r[0] for r in self.query("PRAGMA integrity_check")]
        if result != ["ok"]:
            out.fail("integrity", "integrity_check: " + "; ".join(map(str, result[:5])))
        broken = self.query("PRAGMA foreign_key_check")
        if broken:
            out.fail("integrity", f"foreign_key_check: {broken[:5]}")

    def store_processes(self) -> list[psutil.Process]:
        """Live processes started for this store (their WORKBENCH_HOME is ours)."""
        me, home = os.getpid(), str(self.home)
        found = []
        for proc in psutil.process_iter():
            if proc.pid == me:
                continue
            try:
                if (
                    proc.environ().get("WORKBENCH_HOME") == home
                    and proc.status() != psutil.STATUS_ZOMBIE
                ):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def _cleanup(self, out: Outcome) -> None:
        """Every process of the run should be gone by now; kill and report any that is not."""
        deadline = time.monotonic() + 5.0  # a supervisor exits shortly after recording
        left = self.store_processes()
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = self.store_processes()
        if left:
            names = ", ".join(f"{p.pid} {' '.join(p.cmdline()[1:4])}" for p in left)
            out.fail("processes", f"still alive after the run ended: {names}")
            for proc in left:
                _kill(proc)
            _wait_gone(left)


def pick(rng: random.Random, kinds: tuple[str, ...], batches: int) -> dict:
    """One iteration's plan: the kind of kill, its delay after `run start` returned,
    the order for "both", and the run's length (from half to all of `batches`, so
    that some kills land as the run ends by itself)."""
    kind = rng.choices(kinds, [WEIGHTS[KINDS.index(k)] for k in kinds])[0]
    delay = {"startup-trainer": 0.0, "startup-supervisor": rng.uniform(0.0, 0.12)}.get(
        kind, rng.uniform(0.1, 2.0)
    )
    return {
        "kind": kind,
        "delay": delay,
        "trainer_first": rng.random() < 0.5,
        "gap": rng.choice((0.0, rng.uniform(0.0, 0.05))),
        "batches": rng.randint(max(1, batches // 2), batches),
    }


def summarize(outcomes: list[Outcome]) -> dict:
    by_kind = {}
    for kind in KINDS:
        mine = [o for o in outcomes if o.kind == kind]
        by_kind[kind] = {
            "iterations": len(mine),
            "statuses": dict(Counter(o.status for o in mine)),
            "violations": sum(len(o.violations) for o in mine),
        }
    per_check = Counter(check for o in outcomes for check, _ in o.violations)
    return {
        "iterations": len(outcomes),
        "by_kind": by_kind,
        "kills": dict(Counter(k for o in outcomes for k in o.killed)),
        "violations": sum(per_check.values()),
        "violations_by_check": {check: per_check.get(check, 0) for check in CHECKS},
        "iterations_with_violations": sum(1 for o in outcomes if o.violations),
        "orphans_killed": sum(o.orphans_killed for o in outcomes),
        "orphans_gone_s_max": max(
            (o.orphans_gone_s for o in outcomes if o.orphans_gone_s is not None), default=None
        ),
        "untracked_orphans": sum(o.untracked_orphans for o in outcomes),
        "redispatched": sum(o.redispatched for o in outcomes),
        "missed": sum(bool(o.missed) for o in outcomes),
        "witnessed_points": sum(o.witnessed for o in outcomes),
    }


def print_table(summary: dict, outcomes: list[Outcome], seed: int, seconds: float) -> None:
    print(f"kill -9 stress: {summary['iterations']} iterations, seed {seed}, {seconds:.1f} s")
    print()
    header = (
        f"{'kill':<20} {'runs':>5} {'failed':>7} {'lost':>5} {'succeeded':>10}"
        f" {'other':>6} {'violations':>11}"
    )
    print(header)
    print("-" * len(header))
    for kind, row in summary["by_kind"].items():
        st = row["statuses"]
        other = row["iterations"] - sum(st.get(s, 0) for s in ("failed", "lost", "succeeded"))
        print(
            f"{kind:<20} {row['iterations']:>5} {st.get('failed', 0):>7} {st.get('lost', 0):>5}"
            f" {st.get('succeeded', 0):>10} {other:>6} {row['violations']:>11}"
        )
    print()
    print(
        f"processes SIGKILLed: {summary['kills'].get('trainer', 0)} trainers,"
        f" {summary['kills'].get('supervisor', 0)} supervisors;"
        f" {summary['orphans_killed']} orphans of killed supervisors had to be killed"
        f" ({summary['untracked_orphans']} not in the runs table);"
        f" a killed supervisor's session empty within {summary['orphans_gone_s_max']} s at most;"
        f" {summary['redispatched']} runs re-dispatched after a start-up kill;"
        f" {summary['missed']} kills landed after the run had ended by itself"
    )
    print(f"points witnessed after a returned flush: {summary['witnessed_points']}")
    print()
    print(f"{'invariant':<62} {'violations':>10}")
    labels = {
        "integrity": "PRAGMA integrity_check ok, foreign_key_check empty",
        "points": "every point from a returned flush is in the store",
        "consistency": "series count = points decoded = chunk counts; x = y",
        "status": f"no run left running/queued ({SETTLE_S:.0f} s to settle)",
        "outcome": "status as expected for the kill (failed / lost)",
        "orphans": f"a killed supervisor's processes gone ({ORPHAN_DEADLINE_S:.0f} s)",
        "processes": "no process of the store left alive",
        "harness": "harness (run start worked, trainer pid recorded)",
    }
    for check in CHECKS:
        print(f"{labels[check]:<62} {summary['violations_by_check'][check]:>10}")
    print()
    for o in outcomes:
        if o.violations:
            print(o.describe())
    print(
        "all invariants held"
        if not summary["violations"]
        else f"violations: {summary['violations']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--batches",
        type=int,
        default=150,
        help="flushes of 100 points per run, at most (150: about 3 s of"
        " training); each run draws from half that to all of it",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help="comma-separated kinds of kill to draw from (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args()
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = set(kinds) - set(KINDS)
    if unknown or not kinds:
        parser.error(f"--kinds: unknown {sorted(unknown)}; choose from {', '.join(KINDS)}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rng = random.Random(args.seed)
    outcomes: list[Outcome] = []
    t0 = time.monotonic()
    with sandbox(TRAIN_PY, name="stress") as box:
        box.set_sample_interval(0.2)
        harness = Harness(
            box.home,
            box.project_dir,
            box.project,
            lambda *a, check=False: box.wb(*a, check=check),
            args.batches,
        )
        for i in range(args.iterations):
            plan = pick(rng, kinds, args.batches)
            outcome = harness.iteration(**plan)
            outcomes.append(outcome)
            log(
                f"[{i + 1}/{args.iterations}] {outcome.kind:<18} delay {outcome.delay:4.2f}s "
                f"run {outcome.run_id}: {outcome.first_status} -> {outcome.status}, "
                f"witnessed {outcome.witnessed}, stored {outcome.stored.get('x', 0)}"
                f" ({outcome.seconds:.1f}s)"
                + (f", orphans killed: {'; '.join(outcome.orphans)}" if outcome.orphans else "")
                + (f"  VIOLATIONS: {outcome.violations}" if outcome.violations else "")
            )
    seconds = time.monotonic() - t0
    summary = summarize(outcomes)
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "stress_kill",
                    "seed": args.seed,
                    "seconds": round(seconds, 1),
                    "summary": summary,
                    "iterations": [asdict(o) for o in outcomes],
                    "machine": machine_info(),
                },
                indent=2,
            )
        )
    else:
        print_table(summary, outcomes, args.seed, seconds)
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a stress script reports, it never fails CI
        print(f"stress_kill: {exc!r}", file=sys.stderr)
    sys.exit(0)
