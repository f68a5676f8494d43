"""The detached process that owns one run: `python -m workbench.runs.supervisor RUN_ID`.

It starts the trainer, samples its process tree, writes heartbeats, captures
the trainer's output into a size-capped log, and records how the run ended.
It runs in its own session with stdin from /dev/null, so it outlives the
terminal (and SSH session) that launched it.

No process of a run outlives it: the trainer dies with its supervisor (the
kernel kills it, see `lifeline`); the supervisor is a child subreaper, so
processes the trainer orphans (daemons) stay in its view; it records every
process it sees, and when the trainer ends, or on `run stop`, it stops them all.
A busy store delays its writes but never fails the run: it waits for the lock
for as long as the run lives (samples are kept and written later).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from workbench.config.project import load_config
from workbench.config.settings import load_settings
from workbench.core import env, paths
from workbench.core.errors import StoreError, WorkbenchError
from workbench.core.gpu import GpuMonitor
from workbench.core.spawn import child_env
from workbench.runs import lifeline, process_log, process_tree, warm
from workbench.runs.log_capture import LogCapture
from workbench.runs.sampler import Sample, TreeSampler
from workbench.store import Store, open_store
from workbench.store import runs as run_store
from workbench.store.runs import IfNull, Run, RunStatus
from workbench.trainers import failure

# What only runs after the trainer has started (the environment, the data's
# lineage, the model registry) is imported there: each import before the spawn
# delays every run's start.
logger = logging.getLogger("workbench.runs.supervisor")  # also when run as __main__


MAX_UNSAVED_SAMPLES = 3600  # kept while the store is busy; the oldest go first


def trainer_command(trainer: str, script: Path | None) -> list[str]:
    if trainer == "script":
        return [sys.executable, "-u", str(script)]
    return [sys.executable, "-u", "-m", "workbench.trainers"]


class Supervisor:
    def __init__(self, store: Store, run_id: int) -> None:
        self.store = store
        self.run_id = run_id
        self.settings = load_settings()
        self.gpu = GpuMonitor()
        self.wake = threading.Event()  # set on trainer exit or on a stop request
        self.stop_requested = False
        self.seen: dict[int, float] = {}  # every process of the run: pid -> create time
        self.unsaved: list[dict[str, Any]] = []  # samples the busy store has not taken yet
        self.sampler: TreeSampler | None = None

    def run(self) -> int:
        run = run_store.get(self.store, self.run_id)
        if run is None:
            logger.error("run %s is not in the store", self.run_id)
            return 2
        log_path = paths.run_log(self.run_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = LogCapture(
            log_path,
            paths.rotated_run_log(self.run_id),
            int(self.settings.max_log_mb * 1024 * 1024),
        )
        try:
            try:
                config = load_config(Path(run.project_path or "."))
            except WorkbenchError as exc:
                log.write(f"workbench: cannot start: {exc.message}\n".encode())
                self._finish(status="failed", exit_code=None, message=exc.message)
                return 1
            return self._supervise(run, config, log)
        finally:
            log.close()

    def _supervise(self, run: Run, config: Any, log: LogCapture) -> int:
        params = run_store.params(self.store, self.run_id)
        environ = child_env(
            **{
                env.RUN_ID: str(self.run_id),
                env.PROJECT_DIR: str(config.root),
                env.PARAMS: json.dumps(params),
                env.SUPERVISOR_PID: str(os.getpid()),
            },
            PYTHONUNBUFFERED="1",
        )
        command = trainer_command(config.trainer, config.script)
        try:
            # Its own process group, so a stop reaches descendants that were
            # re-parented after their parent exited; forked warm when it can be.
            trainer = warm.start_trainer(command, cwd=config.root, env=environ, output=log.write_fd)
        except OSError as exc:
            log.write(f"workbench: cannot start {command[0]}: {exc}\n".encode())
            self._finish(status="failed", exit_code=None, message=str(exc))
            return 1
        log.start()
        proc = process_tree.find(trainer.pid, None)
        if proc is not None:
            process_tree.record(self.run_id, [proc], self.seen)
        now = time.time()
        run_store.update(
            self.store,
            self.run_id,
            pid=trainer.pid,
            pid_started_at=proc.create_time() if proc else None,
            started_at=now,
            heartbeat_at=now,
        )
        threading.Thread(target=self._wait_for, args=(trainer,), daemon=True).start()
        self._record_environment(config, params, run.project_id)
        self._sample_until_exit(trainer)
        # On a stop: the whole run. After the trainer's own end: whatever it left
        # running (a daemon, a worker): nothing of the run outlives it.
        self._stop_everything(trainer, proc)
        code = trainer.wait()
        log.close()
        cpu_time_s, max_rss_bytes = warm.child_usage(trainer)
        if self.stop_requested:
            status, message = "stopped", "stopped on request"
        elif code == 0:
            status, message = "succeeded", None
        else:
            status = "failed"
            message = (
                f"killed by {signal.Signals(-code).name}"
                if code < 0
                else failure.read(self.run_id) or f"exited with code {code}"
            )
        # A sweep's trials are not registered: the sweep registers its best one.
        if status == "succeeded" and run.parent_id is None:
            self._register_model(config)
        self._finish(
            status=status,
            exit_code=code,
            message=message,
            cpu_time_s=cpu_time_s,
            max_rss_bytes=max_rss_bytes,
        )
        return 0

    def _record_environment(self, config: Any, params: dict[str, Any], project_id: int) -> None:
        """The run's environment and the version of its training data (lineage);
        after the trainer has started, so that neither delays it."""
        from workbench.data.versions import link_run, register
        from workbench.runs.environment import capture

        try:
            environment = capture(config.root, params, config.seed, self.gpu)
        except Exception as exc:  # a missing git or /proc must not cost the run
            environment = {"error": repr(exc)}
        run_store.update(self.store, self.run_id, environment=json.dumps(environment))
        try:
            train_file = Path(params.get("_train_file") or config.train_file)
            # No drift profile here: it would read the data beside the trainer.
            version = register(self.store, project_id, train_file, profile=False)
        except WorkbenchError as exc:  # the trainer reports an unreadable file itself
            logger.warning("cannot register the training data: %s", exc.message)
        else:
            link_run(self.store, self.run_id, version["id"], "train")

    def _register_model(self, config: Any) -> None:
        """A version in the registry for the saved model, before the run reads as
        succeeded, so whoever waits on the run finds the version there."""
        if not any(
            a.name == "feature_schema.json" or a.kind == "model"
            for a in run_store.artifacts(self.store, self.run_id)
        ):
            return  # it saved no model (what `register_run` looks for first)
        from workbench.models.registry import register_run

        try:
            register_run(self.store, self.run_id, config, trainer_succeeded=True)
        except Exception as exc:  # the run itself succeeded; say why the model is missing
            logger.warning("cannot register the model: %r", exc)

    def _wait_for(self, trainer: subprocess.Popen) -> None:
        trainer.wait()
        self.wake.set()

    def _sample_until_exit(self, trainer: subprocess.Popen) -> None:
        if self.wake.is_set():
            # Ended (or stopped) before the first reading: nothing to sample, and
            # `_stop_everything` finds whatever it left (we are their subreaper).
            self.gpu.close()
            return
        # Processes the trainer orphans are re-parented to us: they are the run's too.
        sampler = self.sampler = TreeSampler(trainer.pid, self.gpu, adopter=os.getpid())
        interval = self.settings.sample_interval
        # The first reading comes early so that short runs still get one.
        self.wake.wait(min(0.25, interval))
        while trainer.poll() is None and not self.stop_requested:
            sample = sampler.sample()
            process_tree.record(self.run_id, sampler.processes(), self.seen)
            self._reap_orphans(trainer.pid)
            self._record(sample)
            self.wake.wait(interval)
        sampler.gpu.close()

    def _record(self, sample: Sample) -> None:
        """Write a sample and the heartbeat. A busy store keeps them for the next
        try (a run's liveness is its supervisor's pid, not the heartbeat), so
        the sampling loop never stalls behind someone else's lock."""
        row = sample.as_row()
        row["run_id"] = self.run_id
        row["gpu"] = json.dumps(row["gpu"]) if row["gpu"] is not None else None
        self.unsaved.append(row)
        del self.unsaved[:-MAX_UNSAVED_SAMPLES]
        patience = max(0.5, min(2.0, self.settings.sample_interval))
        try:
            with self.store.write(patience=patience) as conn:
                run_store.add_samples(conn, self.unsaved)
                run_store.update(self.store, self.run_id, heartbeat_at=sample.ts)
        except (StoreError, sqlite3.OperationalError) as exc:
            if not self.unsaved[:-1]:  # say it once, when the first sample waits
                logger.warning("resource samples wait for the store: %s", exc)
            return
        self.unsaved.clear()

    def _reap_orphans(self, trainer_pid: int) -> None:
        """Collect the exit status of adopted processes that ended, never the
        trainer's (its Popen waits for it): peek first (WNOWAIT), no /proc scan."""
        while True:
            try:
                ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except (ChildProcessError, OSError, AttributeError):
                return
            if ended is None or ended.si_pid == trainer_pid:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(ended.si_pid, 0)

    def _stop_everything(self, trainer: Any, proc: psutil.Process | None) -> None:
        """Stop every live process of the run: the trainer's tree when it still
        runs (a stop), what we adopted, what we ever recorded (checked by pid
        and create time)."""
        procs: dict[int, psutil.Process] = {}
        if trainer.poll() is None and proc is not None:
            procs.update((p.pid, p) for p in process_tree.tree(proc))
        with contextlib.suppress(psutil.Error):
            procs.update((p.pid, p) for p in psutil.Process().children(recursive=True))
        if self.sampler is not None:
            process_tree.record(self.run_id, self.sampler.processes(), self.seen)
        procs.update((p.pid, p) for p in process_tree.recorded(self.run_id))
        live = [
            p for p in procs.values() if process_tree.alive(p) and not process_tree.another_run(p)
        ]
        if not live:
            return
        groups = []
        with contextlib.suppress(OSError):
            if any(os.getpgid(p.pid) == trainer.pid for p in live):
                groups.append(trainer.pid)  # the trainer's group, by a live member
        process_tree.terminate_all(live, self.settings.stop_grace, groups)

    def request_stop(self, *_: object) -> None:
        self.stop_requested = True
        self.wake.set()

    def _finish(
        self,
        *,
        status: str,
        exit_code: int | None,
        message: str | None,
        cpu_time_s: float | None = None,
        max_rss_bytes: int | None = None,
    ) -> None:
        now = time.time()
        run_store.transition(
            self.store,
            self.run_id,
            status,
            exit_code=exit_code,
            message=message,
            ended_at=now,
            heartbeat_at=now,
            cpu_time_s=cpu_time_s,
            max_rss_bytes=max_rss_bytes,
            started_at=IfNull(now),
        )


def _take(store: Store, run_id: int) -> bool:
    """Mark the run running and owned by this process, if it is still queued and
    nobody asked to stop it; the queued event already announced it, and the
    log records the outcome, so no event for the start."""
    me = psutil.Process()
    with store.write():
        run = run_store.get(store, run_id)
        if run is None or run.stop_requested_at is not None:
            return False
        return run_store.transition(
            store,
            run_id,
            RunStatus.RUNNING,
            expect=RunStatus.QUEUED,
            event=False,
            supervisor_pid=me.pid,
            supervisor_started_at=me.create_time(),
            heartbeat_at=time.time(),
            hostname=socket.gethostname(),
        )


def main(argv: list[str]) -> int:
    run_id = int(argv[0])
    process_log.setup()
    store = open_store(migrate=False)
    store.patience = math.inf  # for as long as the run lives; see _record for samples
    lifeline.become_subreaper()
    supervisor = Supervisor(store, run_id)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    # A hang-up of the terminal that started us is not a reason to stop.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if not _take(store, run_id):
        return 2  # someone else owns it, or it was stopped while queued
    try:
        return supervisor.run()
    except BaseException as exc:
        # Never leave the run marked running behind us.
        supervisor._finish(status="failed", exit_code=None, message=f"supervisor error: {exc!r}")
        raise
    finally:
        # This run's slot is free: start whatever is next in the queue.
        from workbench.runs.reconcile import reconcile

        reconcile(store)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
