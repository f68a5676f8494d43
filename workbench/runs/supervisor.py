"""The detached process that owns one run: `python -m workbench.runs.supervisor RUN_ID`.

It starts the trainer, samples its process tree, writes heartbeats, and
records how the run ended. It runs in its own session with stdin from
/dev/null, so it outlives the terminal (and SSH session) that launched it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from workbench import paths
from workbench.config import load_config
from workbench.data.versions import link_run, register
from workbench.errors import WorkbenchError
from workbench.gpu import GpuMonitor
from workbench.runs import process_tree, warm
from workbench.runs.environment import capture
from workbench.runs.sampler import Sample, TreeSampler
from workbench.settings import load_settings
from workbench.store import Store, open_store
from workbench.trainers import failure

_SAMPLE_SQL = """
INSERT INTO resource_samples (run_id, ts, cpu_percent, rss_bytes, num_threads, num_procs,
    read_bytes, write_bytes, sys_cpu_percent, sys_mem_percent, sys_mem_used, gpu)
VALUES (:run_id, :ts, :cpu_percent, :rss_bytes, :num_threads, :num_procs,
    :read_bytes, :write_bytes, :sys_cpu_percent, :sys_mem_percent, :sys_mem_used, :gpu)
"""


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

    def run(self) -> int:
        run = self.store.row(
            "SELECT r.*, p.path AS project_path, p.name AS project FROM runs r"
            " JOIN projects p ON p.id = r.project_id WHERE r.id = ?",
            (self.run_id,),
        )
        if run is None:
            print(f"run {self.run_id} is not in the store", file=sys.stderr)
            return 2
        log_path = paths.run_log(self.run_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab", buffering=0) as log:
            try:
                config = load_config(Path(run["project_path"]))
            except WorkbenchError as exc:
                log.write(f"workbench: cannot start: {exc.message}\n".encode())
                self._finish(status="failed", exit_code=None, message=exc.message)
                return 1
            return self._supervise(run, config, log)

    def _supervise(self, run: dict[str, Any], config: Any, log: Any) -> int:
        params = {
            row["key"]: json.loads(row["value"])
            for row in self.store.rows(
                "SELECT key, value FROM params WHERE run_id = ?", (self.run_id,)
            )
        }
        env = dict(os.environ)
        env.update(
            WORKBENCH_RUN_ID=str(self.run_id),
            WORKBENCH_HOME=str(paths.home()),
            WORKBENCH_PROJECT_DIR=str(config.root),
            WORKBENCH_PARAMS=json.dumps(params),
            PYTHONUNBUFFERED="1",
        )
        command = trainer_command(config.trainer, config.script)
        try:
            # Its own process group, so a stop reaches descendants that were
            # re-parented after their parent exited; forked warm when it can be.
            trainer = warm.start_trainer(command, cwd=config.root, env=env, log=log)
        except OSError as exc:
            log.write(f"workbench: cannot start {command[0]}: {exc}\n".encode())
            self._finish(status="failed", exit_code=None, message=str(exc))
            return 1
        proc = process_tree.find(trainer.pid, None)
        now = time.time()
        with self.store.write() as conn:
            conn.execute(
                "UPDATE runs SET pid = ?, pid_started_at = ?, started_at = ?, heartbeat_at = ?"
                " WHERE id = ?",
                (trainer.pid, proc.create_time() if proc else None, now, now, self.run_id),
            )
        threading.Thread(target=self._wait_for, args=(trainer,), daemon=True).start()
        self._record_environment(config, params)
        self._sample_until_exit(trainer)
        if self.stop_requested and trainer.poll() is None and proc is not None:
            process_tree.terminate(proc, self.settings.stop_grace)
        code = trainer.wait()
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
        if status == "succeeded" and run["parent_id"] is None:
            self._register_model(config)
        self._finish(
            status=status,
            exit_code=code,
            message=message,
            cpu_time_s=cpu_time_s,
            max_rss_bytes=max_rss_bytes,
        )
        return 0

    def _record_environment(self, config: Any, params: dict[str, Any]) -> None:
        """The run's environment and the version of its training data (lineage);
        after the trainer has started, so that neither delays it."""
        try:
            environment = capture(config.root, params, config.seed, self.gpu)
        except Exception as exc:  # a missing git or /proc must not cost the run
            environment = {"error": repr(exc)}
        with self.store.write() as conn:
            conn.execute(
                "UPDATE runs SET environment = ? WHERE id = ?",
                (json.dumps(environment), self.run_id),
            )
        project_id = self.store.scalar("SELECT project_id FROM runs WHERE id = ?", (self.run_id,))
        try:
            train_file = Path(params.get("_train_file") or config.train_file)
            version = register(self.store, project_id, train_file)
        except WorkbenchError as exc:  # the trainer reports an unreadable file itself
            print(f"cannot register the training data: {exc.message}", file=sys.stderr)
        else:
            link_run(self.store, self.run_id, version["id"], "train")

    def _register_model(self, config: Any) -> None:
        """A version in the registry for the saved model, before the run reads as
        succeeded, so whoever waits on the run finds the version there."""
        from workbench.models.registry import register_run

        try:
            register_run(self.store, self.run_id, config, trainer_succeeded=True)
        except Exception as exc:  # the run itself succeeded; say why the model is missing
            print(f"cannot register the model: {exc!r}", file=sys.stderr)

    def _wait_for(self, trainer: subprocess.Popen) -> None:
        trainer.wait()
        self.wake.set()

    def _sample_until_exit(self, trainer: subprocess.Popen) -> None:
        sampler = TreeSampler(trainer.pid, self.gpu)
        interval = self.settings.sample_interval
        # The first reading comes early so that short runs still get one.
        self.wake.wait(min(0.25, interval))
        while trainer.poll() is None and not self.stop_requested:
            self._record(sampler.sample())
            self.wake.wait(interval)
        sampler.gpu.close()

    def _record(self, sample: Sample) -> None:
        row = sample.as_row()
        row["run_id"] = self.run_id
        row["gpu"] = json.dumps(row["gpu"]) if row["gpu"] is not None else None
        with self.store.write() as conn:
            conn.execute(_SAMPLE_SQL, row)
            conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (sample.ts, self.run_id))

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
        with self.store.write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, exit_code = ?, message = ?, ended_at = ?,"
                " heartbeat_at = ?, cpu_time_s = ?, max_rss_bytes = ?,"
                " started_at = COALESCE(started_at, ?) WHERE id = ?",
                (status, exit_code, message, now, now, cpu_time_s, max_rss_bytes, now, self.run_id),
            )
            project_id = self.store.scalar(
                "SELECT project_id FROM runs WHERE id = ?", (self.run_id,)
            )
            self.store.add_event(
                f"run.{status}",
                f"run {self.run_id} {status}" + (f": {message}" if message else ""),
                ts=now,
                project_id=project_id,
                run_id=self.run_id,
                data={"exit_code": exit_code},
            )


def main(argv: list[str]) -> int:
    run_id = int(argv[0])
    store = open_store(migrate=False)
    supervisor = Supervisor(store, run_id)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    # A hang-up of the terminal that started us is not a reason to stop.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    me = psutil.Process()
    now = time.time()
    with store.write() as conn:
        conn.execute(
            "UPDATE runs SET status = 'running', supervisor_pid = ?, supervisor_started_at = ?,"
            " heartbeat_at = ?, hostname = ? WHERE id = ? AND status = 'queued'"
            " AND stop_requested_at IS NULL",
            (me.pid, me.create_time(), now, socket.gethostname(), run_id),
        )
        if conn.execute("SELECT changes()").fetchone()[0] == 0:
            return 2  # someone else owns it, or it was stopped while queued
    try:
        return supervisor.run()
    except BaseException as exc:
        # Never leave the run marked running behind us.
        supervisor._finish(status="failed", exit_code=None, message=f"supervisor error: {exc!r}")
        raise
    finally:
        # This run's slot is free: start whatever is next in the queue.
        from workbench.runs.queue import dispatch

        dispatch(store)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
