"""Running a sweep: Optuna's ask/tell over child runs dispatched through the queue.

The sweep is a run row of its own (trainer "sweep", owned by this process the
way a supervisor owns a run), and every trial is a real child run with its
own supervisor, resources and log. The study lives in a journal file under
`$WORKBENCH_HOME/sweeps/<sweep run id>/` and the trials' runs in the store,
so a sweep stopped at any point, even by kill -9, resumes where it stopped:
a trial already told is never told again, and a trial whose run is still
going (supervisors are detached) is waited for, not repeated.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.config.project import ProjectConfig
from workbench.core.errors import NotFoundError, UsageError
from workbench.core.metric_rules import CURVE_PREFIXES, higher_is_better, lower_is_better
from workbench.projects import get_project, project_config
from workbench.runs.launch import create_run
from workbench.runs.queries import refresh_liveness
from workbench.store import Store
from workbench.store.metrics import append_points
from workbench.sweeps.space import Param, distributions, parse_space

SWEEP_TRAINER = "sweep"
POLL_S = 0.05  # how often in-flight trials are checked (a few indexed reads)
HEARTBEAT_S = 1.0
DEFAULT_TRIALS = 20


def sweep_dir(run_id: int) -> Path:
    """Where a sweep's Optuna journal lives."""
    return paths.home() / "sweeps" / str(run_id)


@dataclass
class Objective:
    """What the trials are judged by: a metric key of each trial run."""

    key: str  # e.g. "f1", or "cv_f1_mean" when the project cross-validates
    metric: str  # the primary metric the key is made from
    direction: str  # "maximize" or "minimize"

    @property
    def pruning_key(self) -> str | None:
        """The series reported to the pruner: the folds' scores when cross-validating,
        else (None) the trainer's first learning curve (`valid_*` or `val_*`)."""
        return f"cv_fold_{self.metric}" if self.key.startswith("cv_") else None


def objective_for(config: ProjectConfig) -> Objective:
    """The project's primary metric, as cross-validated when `[train] cv` is set."""
    task = config.task
    if task is None and config.metric is None and config.trainer != "script":
        from workbench.trainers.tabular import infer_task, read_table

        task = infer_task(read_table(config.train_file)[config.target].dropna())
    metric = config.primary_metric(task)
    key = f"cv_{metric}_mean" if config.cv else metric
    return Objective(key, metric, "minimize" if lower_is_better(metric) else "maximize")


@dataclass
class InFlight:
    """A trial whose run has not been told to Optuna yet."""

    trial: Any  # optuna.trial.Trial
    run_id: int
    reported: set[int] = field(default_factory=set)  # steps already reported
    read: int = 0  # points of the pruning series already read
    key: str | None = None
    sign: float = 1.0  # -1 when the pruning series runs against the objective


class Sweep:
    """One sweep run, driven by this process until its trials are done."""

    def __init__(self, store: Store, run_id: int) -> None:
        row = store.row(
            "SELECT r.*, p.name AS project FROM runs r JOIN projects p ON p.id = r.project_id"
            " WHERE r.id = ?",
            (run_id,),
        )
        if row is None or row["trainer"] != SWEEP_TRAINER:
            raise NotFoundError(f"run {run_id} is not a sweep")
        self.store = store
        self.run_id = run_id
        self.project = row["project"]
        _, self.config = project_config(store, self.project)
        spec = _params(store, run_id)
        self.n_trials: int = spec["_trials"]
        self.parallel: int = spec["_parallel"]
        self.timeout: float | None = spec.get("_timeout")
        self.objective = Objective(spec["_objective"], spec["_metric"], spec["_direction"])
        self.space: tuple[Param, ...] = parse_space(self.config.file, spec["_space"])
        self.sampler_name: str = spec["_sampler"]
        self.pruner_name: str = spec["_pruner"]
        self.seed: int = spec["_seed"]
        self.pending: dict[int, InFlight] = {}
        self.stop_requested = False
        self.events: list[str] = []  # what happened, newest last (for displays)
        self._log = open(paths.run_log(run_id), "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.study = self._open_study()
        self.distributions = distributions(self.space)

    # -- the study ------------------------------------------------------------

    def _open_study(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        study = open_study(self.run_id, self.objective.direction)
        # A sampler's random state is not in the journal: reseed it past the trials
        # already asked, so a resumed sweep does not draw the same params again.
        study.sampler = self._sampler(self.seed + len(study.get_trials(deepcopy=False)))
        study.pruner = (
            optuna.pruners.MedianPruner()
            if self.pruner_name == "median"
            else optuna.pruners.NopPruner()
        )
        return study

    def _sampler(self, seed: int) -> Any:
        import optuna

        if self.sampler_name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        # constant_liar: parallel trials in flight count as bad guesses, so
        # concurrent asks spread out instead of piling on one point.
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)

    @property
    def finished(self) -> int:
        from optuna.trial import TrialState

        done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        return len(self.study.get_trials(deepcopy=False, states=done))

    # -- the loop -------------------------------------------------------------

    def run(self, on_progress: Callable[[Sweep], None] | None = None) -> dict[str, Any]:
        """Run trials until `n_trials` are finished (or the timeout, or a stop);
        returns the summary. SIGINT/SIGTERM stop it: queued trials are stopped,
        running ones finish on their own and are picked up by a resume."""
        from workbench.runs import warm

        warm.ensure_server()  # trials' trainers then start without re-importing their libraries
        restore = self._trap_signals()
        started = time.monotonic()
        next_beat = 0.0
        try:
            self._adopt_in_flight()
            while True:
                self._poll()
                out_of_time = self.timeout is not None and time.monotonic() - started > self.timeout
                if self.stop_requested:
                    return self._stop()
                if not out_of_time:
                    self._fill()
                if not self.pending:
                    break
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + HEARTBEAT_S
                    self._heartbeat()
                if on_progress is not None:
                    on_progress(self)
                time.sleep(POLL_S)
            short = out_of_time and self.finished < self.n_trials
            return self._finish(f"timeout reached after {self.finished} trials" if short else None)
        except KeyboardInterrupt:
            self._end("stopped", "interrupted; in-flight trials were left as they were")
            raise
        except BaseException as exc:
            self._end("failed", f"sweep error: {exc!r}")
            raise
        finally:
            restore()
            self._log.close()

    def _trap_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def request_stop(signum: int, _frame: object) -> None:
            if self.stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now
            self.stop_requested = True

        old = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for signum, handler in old.items():
                signal.signal(signum, handler)

        return restore

    def _adopt_in_flight(self) -> None:
        """Trials asked but not told (a resumed sweep): wait for their runs, or
        start one for a trial whose run never started."""
        import optuna
        from optuna.trial import TrialState

        latest = self._latest_child_runs()
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            row = latest.get(frozen.number)
            if row is None:
                self._launch(trial, frozen.params)
                continue
            self.pending[frozen.number] = InFlight(
                trial, row["id"], reported=set(frozen.intermediate_values)
            )
            self._say(f"trial {frozen.number}: waiting for run {row['id']} ({row['status']})")

    def _latest_child_runs(self) -> dict[int, dict[str, Any]]:
        """Trial number -> its latest run."""
        rows = self.store.rows(
            "SELECT r.id, r.status, p.value AS trial FROM runs r"
            " JOIN params p ON p.run_id = r.id AND p.key = '_trial'"
            " WHERE r.parent_id = ? ORDER BY r.id",
            (self.run_id,),
        )
        return {json.loads(r["trial"]): r for r in rows}

    def _fill(self) -> None:
        while (
            len(self.pending) < self.parallel and self.finished + len(self.pending) < self.n_trials
        ):
            trial = self.study.ask(self.distributions)
            self._launch(trial, trial.params)

    def _launch(self, trial: Any, params: dict[str, Any]) -> None:
        from workbench.runs.queue import dispatch

        run_id = create_run(
            self.store,
            self.project,
            {**params, "_trial": trial.number, "_sweep": self.run_id},
            parent_id=self.run_id,
        )
        trial.set_user_attr("run_id", run_id)
        self.pending[trial.number] = InFlight(trial, run_id)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
        self._say(f"trial {trial.number}: run {run_id} with {shown}")
        dispatch(self.store)

    def _poll(self) -> None:
        if not self.pending:
            return
        ids = [f.run_id for f in self.pending.values()]
        rows = {
            r["id"]: r
            for r in self.store.rows(
                f"SELECT id, status, started_at, message FROM runs"
                f" WHERE id IN ({','.join('?' * len(ids))})",
                tuple(ids),
            )
        }
        for number, flight in list(self.pending.items()):
            row = rows[flight.run_id]
            if row["status"] == "queued":
                continue
            fresh = self.pruner_name != "none" and self._report(flight)
            if row["status"] == "running":
                if fresh and self.pruner_name != "none" and flight.trial.should_prune():
                    self._prune(number, flight)
                continue
            self._conclude(number, flight, row)

    def _report(self, flight: InFlight) -> bool:
        """Report the run's new intermediate scores to the trial; whether there were any."""
        if flight.key is None:
            flight.key = self.objective.pruning_key or self._first_curve(flight.run_id)
            if flight.key is None:
                return False
            higher = higher_is_better(flight.key)
            flight.sign = 1.0 if higher == (self.objective.direction == "maximize") else -1.0
        points = self.store.conn.execute(
            "SELECT m.idx, m.step, m.value FROM metrics m"
            " JOIN metric_series s ON s.id = m.series_id"
            " WHERE s.run_id = ? AND s.key = ? AND m.idx >= ? ORDER BY m.idx",
            (flight.run_id, flight.key, flight.read),
        ).fetchall()
        fresh = False
        for idx, step, value in points:
            flight.read = idx + 1
            if step is None or value is None or step in flight.reported:
                continue
            flight.trial.report(flight.sign * value, step)
            flight.reported.add(step)
            fresh = True
        return fresh

    def _first_curve(self, run_id: int) -> str | None:
        like = " OR ".join("key LIKE ? ESCAPE '\\'" for _ in CURVE_PREFIXES)
        return self.store.scalar(
            f"SELECT key FROM metric_series WHERE run_id = ? AND ({like}) ORDER BY key LIMIT 1",
            (run_id, *(p.replace("_", "\\_") + "_%" for p in CURVE_PREFIXES)),
        )

    def _prune(self, number: int, flight: InFlight) -> None:
        from optuna.trial import TrialState

        from workbench.runs.control import stop_run

        # Recorded before the stop, so a resume after a crash right here still
        # reads the stopped run as pruned, not as failed.
        flight.trial.set_user_attr("pruned", True)
        with contextlib.suppress(UsageError):  # it may have ended on its own meanwhile
            stop_run(self.store, flight.run_id)
        row = self.store.row(
            "SELECT id, status, started_at, message FROM runs WHERE id = ?", (flight.run_id,)
        )
        if row["status"] == "succeeded":  # finished before the stop landed: a real result
            self._conclude(number, flight, row)
            return
        self.study.tell(flight.trial, state=TrialState.PRUNED)
        del self.pending[number]
        step = max(flight.reported, default=0)
        self._record(number, "pruned", None, f"at step {step}")

    def _conclude(self, number: int, flight: InFlight, row: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        status = row["status"]
        if status == "stopped" and row["started_at"] is None and not self.stop_requested:
            # Stopped while queued (an interrupted sweep): it never trained; run it now.
            del self.pending[number]
            self._launch(flight.trial, flight.trial.params)
            return
        value = None
        if status == "succeeded":
            value = self.store.scalar(
                "SELECT value FROM metric_series WHERE run_id = ? AND key = ?",
                (flight.run_id, self.objective.key),
            )
        pruned = status == "stopped" and flight.trial.user_attrs.get("pruned")
        del self.pending[number]
        if value is not None:
            self.study.tell(flight.trial, value)
            self._record(number, "complete", value)
        elif pruned:
            self.study.tell(flight.trial, state=TrialState.PRUNED)
            self._record(number, "pruned", None)
        else:
            reason = (
                f"run logged no {self.objective.key!r}"
                if status == "succeeded"
                else f"run {status}" + (f": {row['message']}" if row["message"] else "")
            )
            flight.trial.set_user_attr("reason", reason)
            self.study.tell(flight.trial, state=TrialState.FAIL)
            self._record(number, "failed", None, reason)

    def _record(self, number: int, state: str, value: float | None, note: str = "") -> None:
        """The trial's outcome on the sweep run: a log line, and the trial's value
        and the best so far as metrics (step = trials finished)."""
        best = self.best_trial()
        done = self.finished
        key = self.objective.key
        text = f"trial {number}: {state}"
        if value is not None:
            text += f" {key}={value:.6g}"
        if note:
            text += f" ({note})"
        if best is not None:
            text += f"; best {best.value:.6g} (trial {best.number})"
        self._say(f"{text} [{done}/{self.n_trials}]")
        now = time.time()
        points: dict[str, list] = {}
        if value is not None:
            points[f"trial_{key}"] = [(number, now, value)]
        if best is not None:
            points[key] = [(done, now, best.value)]
        if points:
            with self.store.write() as conn:
                append_points(conn, self.run_id, points)

    def best_trial(self) -> Any:
        """The best complete trial so far, or None."""
        from optuna.trial import TrialState

        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            return None
        pick = max if self.objective.direction == "maximize" else min
        return pick(complete, key=lambda t: (t.value, -t.number))

    # -- ending ---------------------------------------------------------------

    def _stop(self) -> dict[str, Any]:
        """Stop the trials that have not started; running ones finish on their own."""
        from workbench.runs.control import stop_run

        for flight in list(self.pending.values()):
            status = self.store.scalar("SELECT status FROM runs WHERE id = ?", (flight.run_id,))
            if status == "queued":
                with contextlib.suppress(UsageError):  # it may have started meanwhile
                    stop_run(self.store, flight.run_id)
        running = self.store.scalar(
            "SELECT COUNT(*) FROM runs WHERE parent_id = ? AND status IN ('running', 'queued')",
            (self.run_id,),
        )
        message = (
            f"interrupted after {self.finished} of {self.n_trials} trials"
            + (f"; {running} still running will be picked up" if running else "")
            + f"; continue with `workbench sweep {self.project} --resume {self.run_id}`"
        )
        self._say(message)
        self._end("stopped", message)
        return summary(self.store, self.run_id)

    def _finish(self, note: str | None) -> dict[str, Any]:
        from workbench.models.registry import register_run

        best = self.best_trial()
        if best is None:
            self._end("failed", "no trial completed" + (f" ({note})" if note else ""))
            return summary(self.store, self.run_id)
        run_id = self._latest_child_runs()[best.number]["id"]
        version = register_run(self.store, run_id, self.config)
        counts = self._state_counts()
        now = time.time()
        params = {
            **best.params,
            "_best_trial": best.number,
            "_best_run": run_id,
            "_registered_version": version.version if version else None,
        }
        with self.store.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(self.run_id, k, json.dumps(v)) for k, v in params.items()],
            )
            append_points(
                conn,
                self.run_id,
                {
                    self.objective.key: [(self.finished, now, best.value)],
                    **{f"trials_{state}": [(None, now, n)] for state, n in counts.items()},
                },
            )
        registered = f"; registered as {version.ref}" if version else ""
        message = f"best {self.objective.key}={best.value:.6g} (trial {best.number}, run {run_id})"
        self._say(message + registered + (f"; {note}" if note else ""))
        self._end("succeeded", message + (f"; {note}" if note else ""))
        return summary(self.store, self.run_id)

    def _state_counts(self) -> dict[str, int]:
        counts = {"complete": 0, "pruned": 0, "failed": 0}
        names = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
        for trial in self.study.get_trials(deepcopy=False):
            if trial.state.name in names:
                counts[names[trial.state.name]] += 1
        return counts

    def _end(self, status: str, message: str) -> None:
        now = time.time()
        with self.store.write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, exit_code = ?, message = ?, ended_at = ?,"
                " heartbeat_at = ? WHERE id = ?",
                (status, 0 if status == "succeeded" else 1, message, now, now, self.run_id),
            )
            self.store.add_event(
                f"run.{status}",
                f"sweep {self.run_id} {status}: {message}",
                ts=now,
                project_id=get_project(self.store, self.project)["id"],
                run_id=self.run_id,
            )

    def _heartbeat(self) -> None:
        with self.store.write() as conn:
            conn.execute(
                "UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), self.run_id)
            )
        refresh_liveness(self.store)  # a trial whose supervisor died reads as lost

    def _say(self, text: str) -> None:
        self.events.append(text)
        del self.events[:-50]
        self._log.write(f"{time.strftime('%H:%M:%S')} {text}\n")


def open_study(run_id: int, direction: str | None = None) -> Any:
    """The sweep's study from its journal; created when `direction` is given."""
    import optuna
    from optuna.storages import JournalStorage

    folder = sweep_dir(run_id)
    journal = folder / "journal.log"
    if direction is None and not journal.exists():
        raise NotFoundError(f"sweep {run_id} has no study at {journal}")
    folder.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(_journal_class()(str(journal)))
    name = f"sweep-{run_id}"
    if direction is None:
        return optuna.load_study(study_name=name, storage=storage)
    return optuna.create_study(
        storage=storage, study_name=name, direction=direction, load_if_exists=True
    )


@functools.cache
def _journal_class() -> type:
    """Defined on first use: Optuna is imported only when a sweep is opened."""
    from optuna.storages.journal import JournalFileBackend

    class Journal(JournalFileBackend):
        """Optuna's journal file without an fsync per record. Every report, ask
        and tell is a record, and at ~4 ms an fsync they were a tenth of a
        short trial. What is written survives the process being killed (it is
        in the OS's cache), not a power loss: the same promise as the store's
        (WAL with synchronous=NORMAL)."""

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            self._lock.acquire()
            try:
                # One write of whole lines, as the parent class does, minus the fsync.
                with open(self._file_path, "ab") as fh:
                    fh.write(text.encode("utf-8"))
            finally:
                self._lock.release()

    return Journal


def _params(store: Store, run_id: int) -> dict[str, Any]:
    return {
        r["key"]: json.loads(r["value"])
        for r in store.rows("SELECT key, value FROM params WHERE run_id = ?", (run_id,))
    }


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# -- starting and resuming ---------------------------------------------------


def start_sweep(
    store: Store,
    project: str,
    trials: int | None = None,
    parallel: int | None = None,
    timeout: float | None = None,
) -> Sweep:
    """Record a new sweep run of `project`, owned by this process."""
    row, config = project_config(store, project)
    if config.sweep is None:
        raise UsageError(
            f"{config.file} has no [sweep.space]; add the parameters to search, e.g.\n"
            "[sweep.space]\n"
            'learning_rate = { type = "log-uniform", low = 0.01, high = 0.3 }\n'
            'num_leaves = { type = "int", low = 8, high = 64 }'
        )
    objective = objective_for(config)
    spec = {
        "_trials": trials or config.sweep.trials or DEFAULT_TRIALS,
        "_parallel": parallel or config.sweep.parallel or 1,
        "_timeout": timeout,
        "_objective": objective.key,
        "_metric": objective.metric,
        "_direction": objective.direction,
        "_space": {p.name: p.describe() for p in config.sweep.space},
        "_sampler": config.sweep.sampler,
        "_pruner": config.sweep.pruner,
        "_seed": config.sweep.seed if config.sweep.seed is not None else config.seed,
    }
    now = time.time()
    with store.write() as conn:
        run_id = conn.execute(
            "INSERT INTO runs (project_id, status, trainer, created_at, started_at, heartbeat_at,"
            " supervisor_pid, supervisor_started_at, hostname)"
            " VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)",
            (row["id"], SWEEP_TRAINER, now, now, now, *_me()),
        ).lastrowid
        conn.executemany(
            "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
            [(run_id, k, json.dumps(v)) for k, v in spec.items()],
        )
        store.add_event(
            "run.running",
            f"sweep {run_id} started: {spec['_trials']} trials of {config.name}",
            ts=now,
            project_id=row["id"],
            run_id=run_id,
            data={"space": spec["_space"]},
        )
    paths.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    return Sweep(store, run_id)


def resume_sweep(
    store: Store,
    project: str,
    sweep_id: int | None = None,
    trials: int | None = None,
    parallel: int | None = None,
    timeout: float | None = None,
) -> Sweep:
    """Take over an interrupted sweep (default: the project's latest unfinished
    one); `trials`, `parallel` and `timeout` replace the recorded ones when given."""
    project_id = get_project(store, project)["id"]
    refresh_liveness(store)
    if sweep_id is None:
        sweep_id = store.scalar(
            "SELECT id FROM runs WHERE project_id = ? AND trainer = ? AND status != 'succeeded'"
            " ORDER BY id DESC LIMIT 1",
            (project_id, SWEEP_TRAINER),
        )
        if sweep_id is None:
            raise NotFoundError(f"{project} has no unfinished sweep to resume")
    row = store.row(
        "SELECT id, status, trainer, project_id, supervisor_pid FROM runs WHERE id = ?",
        (sweep_id,),
    )
    if row is None or row["trainer"] != SWEEP_TRAINER or row["project_id"] != project_id:
        raise NotFoundError(f"{project} has no sweep {sweep_id}")
    if row["status"] == "running":
        raise UsageError(
            f"sweep {sweep_id} is running (process {row['supervisor_pid']}); "
            f"stop it first with `workbench run stop {sweep_id}`"
        )
    if row["status"] == "succeeded":
        raise UsageError(f"sweep {sweep_id} has finished; start a new one")
    changes = {"_trials": trials, "_parallel": parallel, "_timeout": timeout}
    now = time.time()
    with store.write() as conn:
        taken = conn.execute(
            "UPDATE runs SET status = 'running', exit_code = NULL, message = NULL,"
            " ended_at = NULL, stop_requested_at = NULL, heartbeat_at = ?,"
            " supervisor_pid = ?, supervisor_started_at = ?, hostname = ?"
            " WHERE id = ? AND status = ?",
            (now, *_me(), sweep_id, row["status"]),
        ).rowcount
        if not taken:
            raise UsageError(f"sweep {sweep_id} was just taken over by another process")
        conn.executemany(
            "INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?, ?, ?)",
            [(sweep_id, k, json.dumps(v)) for k, v in changes.items() if v is not None],
        )
        store.add_event(
            "run.running",
            f"sweep {sweep_id} resumed",
            ts=now,
            project_id=project_id,
            run_id=sweep_id,
        )
    return Sweep(store, sweep_id)


def _me() -> tuple[int, float, str]:
    import psutil

    me = psutil.Process()
    return os.getpid(), me.create_time(), socket.gethostname()


# -- reading sweeps back -----------------------------------------------------


def list_sweeps(store: Store, project: str) -> list[dict[str, Any]]:
    """A project's sweeps, newest first, with their trials' progress."""
    project_id = get_project(store, project)["id"]
    refresh_liveness(store)
    out = []
    for row in store.rows(
        "SELECT id, status, created_at, ended_at, message FROM runs"
        " WHERE project_id = ? AND trainer = ? ORDER BY id DESC",
        (project_id, SWEEP_TRAINER),
    ):
        spec = _params(store, row["id"])
        counts = dict(
            store.conn.execute(
                "SELECT status, COUNT(*) FROM runs WHERE parent_id = ? GROUP BY status",
                (row["id"],),
            ).fetchall()
        )
        best = store.scalar(
            "SELECT value FROM metric_series WHERE run_id = ? AND key = ?",
            (row["id"], spec.get("_objective")),
        )
        out.append(
            {
                "id": row["id"],
                "status": row["status"],
                "trials": spec.get("_trials"),
                "runs": counts,
                "objective": spec.get("_objective"),
                "direction": spec.get("_direction"),
                "best_value": best,
                "best_run": spec.get("_best_run"),
                "message": row["message"],
            }
        )
    return out


def importances(sweep_id: int) -> dict[str, float]:
    """Each parameter's share of the objective's variance over the complete
    trials (Optuna's fANOVA), largest first; {} before two trials complete."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(sweep_id)
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):  # e.g. every trial had the same params
        return {}


def summary(store: Store, sweep_id: int) -> dict[str, Any]:
    """The sweep's document: its best trial, the registered version, every trial."""
    from workbench.runs.queries import get_run, iso

    row = get_run(store, sweep_id)
    if row["trainer"] != SWEEP_TRAINER:
        raise NotFoundError(f"run {sweep_id} is not a sweep")
    spec = _params(store, sweep_id)
    study = open_study(sweep_id)
    runs = {
        json.loads(r["trial"]): r
        for r in store.rows(
            "SELECT r.id, r.status, p.value AS trial FROM runs r"
            " JOIN params p ON p.run_id = r.id AND p.key = '_trial'"
            " WHERE r.parent_id = ? ORDER BY r.id",
            (sweep_id,),
        )
    }
    trials = [
        {
            "number": t.number,
            "state": t.state.name.lower(),
            "value": t.value,
            "run_id": runs[t.number]["id"] if t.number in runs else None,
            "run_status": runs[t.number]["status"] if t.number in runs else None,
            "params": t.params,
            "duration_s": t.duration.total_seconds() if t.duration else None,
            "reason": t.user_attrs.get("reason"),
        }
        for t in study.get_trials(deepcopy=False)
    ]
    complete = [t for t in trials if t["state"] == "complete"]
    best = None
    if complete:
        pick = max if spec["_direction"] == "maximize" else min
        top = pick(complete, key=lambda t: (t["value"], -t["number"]))
        best = {k: top[k] for k in ("number", "run_id", "value", "params")}
    version = (
        store.row("SELECT version, id FROM model_versions WHERE run_id = ?", (best["run_id"],))
        if best
        else None
    )
    registered = None
    if version:
        from workbench.models.registry import get_version_by_id

        found = get_version_by_id(store, version["id"])
        registered = {"version": found.version, "ref": found.ref, "aliases": found.aliases}
    return {
        "sweep_run_id": sweep_id,
        "project": row["project"],
        "status": row["status"],
        "message": row["message"],
        "objective": spec["_objective"],
        "direction": spec["_direction"],
        "trials_requested": spec["_trials"],
        "parallel": spec["_parallel"],
        "space": spec["_space"],
        "started_at": iso(row["started_at"]),
        "ended_at": iso(row["ended_at"]),
        "best": best,
        "registered_version": registered,
        "trials": trials,
    }
