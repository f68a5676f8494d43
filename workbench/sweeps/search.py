"""A sweep's search loop: Optuna's ask/tell over child runs dispatched
through the queue, driven by this process until its trials are done (or a
stop, or the timeout), resumable after any interruption."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from workbench.core import paths
from workbench.core.errors import NotFoundError, UsageError
from workbench.projects import project_config
from workbench.runs.launch import create_run
from workbench.runs.reconcile import reconcile
from workbench.store import Store
from workbench.store import runs
from workbench.store import sweeps as rows
from workbench.store.runs import RunStatus
from workbench.store.sweeps import SWEEP_TRAINER, TrialRun
from workbench.sweeps.journal import open_study
from workbench.sweeps.objective import Objective
from workbench.sweeps.report import summary
from workbench.sweeps.space import Param, distributions, parse_space
from workbench.sweeps.trials import InFlight, make_pruner, make_sampler, report_scores, short

POLL_S = 0.05  # how often in-flight trials are checked (a few indexed reads)
HEARTBEAT_S = 1.0
# From this many trials a script sweep starts the warm server (see _wants_warm_server).
WARM_SCRIPT_TRIALS = 12


class Sweep:
    """One sweep run, driven by this process until its trials are done."""

    def __init__(self, store: Store, run_id: int) -> None:
        row = runs.get(store, run_id)
        if row is None or row.trainer != SWEEP_TRAINER:
            raise NotFoundError(f"run {run_id} is not a sweep")
        self.store = store
        self.run_id = run_id
        self.project = str(row.project)
        self.project_id = row.project_id
        _, self.config = project_config(store, self.project)
        spec = rows.params(store, run_id)
        self.n_trials: int = spec["_trials"]
        self.parallel: int = spec["_parallel"]
        self.timeout: float | None = spec.get("_timeout")
        self.objective = Objective(spec["_objective"], spec["_metric"], spec["_direction"])
        self.space: tuple[Param, ...] = parse_space(self.config.file, spec["_space"])
        self.sampler_name: str = spec["_sampler"]
        self.pruner_name: str = spec["_pruner"]
        self.seed: int = spec["_seed"]
        # Where trials run: "local" (the run queue) or another executor (Slurm),
        # which takes each trial as a job at once, `parallel` of them at a time.
        self.executor: str = spec.get("_executor") or "local"
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
        study.sampler = make_sampler(
            self.sampler_name, self.seed + len(study.get_trials(deepcopy=False))
        )
        study.pruner = make_pruner(self.pruner_name)
        return study

    @property
    def finished(self) -> int:
        from optuna.trial import TrialState

        done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        return len(self.study.get_trials(deepcopy=False, states=done))

    def _wants_warm_server(self) -> bool:
        """Whether the trials are worth the warm server. A script trainer is always
        started afresh; the server would only fork its supervisors, and its imports
        (pandas, scikit-learn, LightGBM: seconds of CPU) cost as much as a dozen
        fresh supervisors, so a short script sweep does without it."""
        if self.executor != "local":
            return False
        return self.config.trainer != "script" or self.n_trials >= WARM_SCRIPT_TRIALS

    # -- the loop -------------------------------------------------------------

    def run(self, on_progress: Callable[[Sweep], None] | None = None) -> dict[str, Any]:
        """Run trials until `n_trials` are finished (or the timeout, or a stop);
        returns the summary. SIGINT/SIGTERM stop it: queued trials are stopped,
        running ones finish on their own and are picked up by a resume."""
        from workbench.runs import warm
        from workbench.sweeps.arrays import ArrayDriver, array_executor

        if self._wants_warm_server():
            warm.ensure_server()  # trials' trainers then start without re-importing their libraries
        # An executor that takes arrays (Slurm) gets the whole sweep as one.
        runner = array_executor(self.executor, self.config.root)
        restore = self._trap_signals()
        started = time.monotonic()
        next_beat = 0.0
        try:
            if runner is not None:
                return ArrayDriver(self, runner).run(on_progress)
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
            cut_short = out_of_time and self.finished < self.n_trials
            note = f"timeout reached after {self.finished} trials" if cut_short else None
            return self._finish(note)
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

        latest = rows.trial_runs(self.store, self.run_id)
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            row = latest.get(frozen.number)
            if row is None:
                self._launch(trial, frozen.params)
                continue
            self.pending[frozen.number] = InFlight(
                trial, row.id, reported=set(frozen.intermediate_values)
            )
            self._say(f"trial {frozen.number}: waiting for run {row.id} ({row.status.value})")

    def _fill(self) -> None:
        while (
            len(self.pending) < self.parallel and self.finished + len(self.pending) < self.n_trials
        ):
            trial = self.study.ask(self.distributions)
            self._launch(trial, trial.params)

    def _launch(self, trial: Any, params: dict[str, Any]) -> None:
        from workbench.runs import warm
        from workbench.runs.queue import dispatch

        overrides = {**params, "_trial": trial.number, "_sweep": self.run_id}
        if self.executor != "local":
            self._submit(trial, params, overrides)
            return
        run_id = create_run(self.store, self.project, overrides, parent_id=self.run_id)
        trial.set_user_attr("run_id", run_id)
        self.pending[trial.number] = InFlight(trial, run_id)
        shown = ", ".join(f"{k}={short(v)}" for k, v in params.items())
        self._say(f"trial {trial.number}: run {run_id} with {shown}")
        # The server started with the sweep may have gone idle before the first
        # trial (a slow start on a busy machine) or between trials: start it again,
        # so this trial's trainer is forked rather than importing on its own.
        if self._wants_warm_server():
            warm.ensure_server()
        dispatch(self.store)

    def _submit(self, trial: Any, params: dict[str, Any], overrides: dict[str, Any]) -> None:
        """A trial handed to the sweep's executor (a Slurm job); a refused
        submission fails the trial, not the sweep."""
        from workbench.core.errors import WorkbenchError
        from workbench.runs.launch import submit_run

        loaded = project_config(self.store, self.project)
        try:
            run_id = submit_run(
                self.store, self.project, overrides, 0, self.executor, loaded, self.run_id
            )
        except WorkbenchError as exc:
            self._say(f"trial {trial.number}: not submitted: {exc.message}")
            self.study.tell(trial, state=_failed_state())
            return
        trial.set_user_attr("run_id", run_id)
        self.pending[trial.number] = InFlight(trial, run_id)
        shown = ", ".join(f"{k}={short(v)}" for k, v in params.items())
        self._say(f"trial {trial.number}: run {run_id} ({self.executor}) with {shown}")

    def _poll(self) -> None:
        if not self.pending:
            return
        if self.executor != "local":
            from workbench.runs import executors

            executors.poll(self.store)  # rate-limited: one squeue for every trial
        found = rows.runs_by_id(self.store, (f.run_id for f in self.pending.values()))
        for number, flight in list(self.pending.items()):
            row = found[flight.run_id]
            if row.status is RunStatus.QUEUED:
                continue
            fresh = self.pruner_name != "none" and report_scores(
                self.store, flight, self.objective
            )
            if row.status is RunStatus.RUNNING:
                if fresh and self.pruner_name != "none" and flight.trial.should_prune():
                    self._prune(number, flight)
                continue
            self._conclude(number, flight, row)

    def _prune(self, number: int, flight: InFlight) -> None:
        from optuna.trial import TrialState

        from workbench.runs.control import stop_run

        # Recorded before the stop, so a resume after a crash right here still
        # reads the stopped run as pruned, not as failed.
        flight.trial.set_user_attr("pruned", True)
        with contextlib.suppress(UsageError):  # it may have ended on its own meanwhile
            stop_run(self.store, flight.run_id)
        row = rows.runs_by_id(self.store, [flight.run_id])[flight.run_id]
        if row.status is RunStatus.SUCCEEDED:  # finished before the stop landed: a real result
            self._conclude(number, flight, row)
            return
        self.study.tell(flight.trial, state=TrialState.PRUNED)
        del self.pending[number]
        step = max(flight.reported, default=0)
        self._record(number, "pruned", None, f"at step {step}")

    def _conclude(self, number: int, flight: InFlight, row: TrialRun) -> None:
        from optuna.trial import TrialState

        status = row.status.value
        if status == "stopped" and row.started_at is None and not self.stop_requested:
            # Stopped while queued (an interrupted sweep): it never trained; run it now.
            del self.pending[number]
            self._launch(flight.trial, flight.trial.params)
            return
        value = None
        if status == "succeeded":
            value = rows.latest_value(self.store, flight.run_id, self.objective.key)
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
                else f"run {status}" + (f": {row.message}" if row.message else "")
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
            rows.add_points(self.store, self.run_id, points)

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
            if runs.status_of(self.store, flight.run_id) is RunStatus.QUEUED:
                with contextlib.suppress(UsageError):  # it may have started meanwhile
                    stop_run(self.store, flight.run_id)
        running = rows.active_trials(self.store, self.run_id)
        message = (
            f"interrupted after {self.finished} of {self.n_trials} trials"
            + (f"; {running} still running will be picked up" if running else "")
            + f"; continue with `workbench sweep resume {self.project} {self.run_id}`"
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
        run_id = rows.trial_runs(self.store, self.run_id)[best.number].id
        version = register_run(self.store, run_id, self.config)
        counts = self._state_counts()
        now = time.time()
        params = {
            **best.params,
            "_best_trial": best.number,
            "_best_run": run_id,
            "_registered_version": version.version if version else None,
        }
        points: dict[str, list] = {
            self.objective.key: [(self.finished, now, best.value)],
            **{f"trials_{state}": [(None, now, n)] for state, n in counts.items()},
        }
        rows.record_best(self.store, self.run_id, params, points)
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
        rows.end(self.store, self.run_id, status, message, time.time())

    def _heartbeat(self) -> None:
        rows.heartbeat(self.store, self.run_id, time.time())
        reconcile(self.store)  # a trial whose supervisor died is marked lost

    def _say(self, text: str) -> None:
        self.events.append(text)
        del self.events[:-50]
        self._log.write(f"{time.strftime('%H:%M:%S')} {text}\n")


def _failed_state() -> Any:
    from optuna.trial import TrialState

    return TrialState.FAIL
