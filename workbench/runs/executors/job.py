"""What a Slurm job runs on its node: `python -m workbench.runs.executors.job`.

The supervisor's work, without the store: it starts the trainer with the run's
environment, samples its process tree (CPU, memory, NVML GPUs) into the run's
journal, captures its output into the job folder's `output.log`, stops the
whole tree when Slurm signals the job (scancel, a time limit, preemption), and
writes how the run ended as the journal's last record. It reads its orders
from `WORKBENCH_JOB_SPEC` (JSON, written into the batch script at submission).
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
from collections.abc import Callable
from typing import Any

from workbench.core import env
from workbench.runs.executors.journal import JOURNAL_ENV, JOURNAL_NAME, LOG_NAME, JournalWriter

SPEC_ENV = env.JOB_SPEC


def trainer_command(python: str, trainer: str, script: str | None) -> list[str]:
    """The trainer's command line, as the local supervisor builds it."""
    if trainer == "script" and script:
        return [python, "-u", script]
    return [python, "-u", "-m", "workbench.trainers"]


class Job:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.folder = Path(spec["folder"])
        self.folder.mkdir(parents=True, exist_ok=True)
        self.journal = JournalWriter(self.folder / JOURNAL_NAME)
        self.stop_signal: int | None = None
        self.wake = threading.Event()
        self.trainer: subprocess.Popen | None = None
        # Called with (status, message, journal) before the exit record is
        # written: an array task tells the sweep's study its trial's outcome.
        self.on_exit: Callable[[str, str | None, Path], None] | None = None

    def environment(self) -> dict[str, str]:
        home = self.folder / "home"  # never the user's store: paths resolve here
        home.mkdir(exist_ok=True)
        environ = dict(os.environ)
        environ.update(
            {
                "WORKBENCH_HOME": str(home),
                "WORKBENCH_RUN_ID": str(self.spec["run_id"]),
                "WORKBENCH_PROJECT_DIR": str(self.spec["project_dir"]),
                "WORKBENCH_PARAMS": json.dumps(self.spec.get("params") or {}),
                "WORKBENCH_WARM": "0",
                JOURNAL_ENV: str(self.folder / JOURNAL_NAME),
                "PYTHONUNBUFFERED": "1",
            }
        )
        environ.pop("WORKBENCH_SUPERVISOR_PID", None)
        return environ

    def run(self) -> int:
        spec = self.spec
        command = trainer_command(sys.executable, spec["trainer"], spec.get("script"))
        self.journal.write(
            {
                "t": "start",
                "ts": time.time(),
                "node": socket.gethostname(),
                "job_id": os.environ.get("SLURM_JOB_ID"),
                "pid": os.getpid(),
            }
        )
        log = open(self.folder / LOG_NAME, "ab")
        try:
            self.trainer = subprocess.Popen(
                command,
                cwd=spec["project_dir"],
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: a stop reaches all it started
            )
        except OSError as exc:
            log.write(f"workbench: cannot start {command[0]}: {exc}\n".encode())
            log.close()
            return self._exit("failed", None, str(exc), 1)
        threading.Thread(target=self._wait, daemon=True).start()
        self._sample()
        if self.stop_signal is not None:
            self._stop_tree()
        code = self.trainer.wait()
        log.close()
        if self.stop_signal is not None:
            # Why (scancel, a time limit, preemption) is Slurm's to say: the
            # workbench reads the job's state for the run's outcome.
            name = signal.Signals(self.stop_signal).name
            return self._exit("signalled", code, f"the job was signalled ({name})", 143)
        if code == 0:
            return self._exit("succeeded", 0, None, 0)
        message = _reason(self.folder, int(spec["run_id"])) or (
            f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        )
        return self._exit("failed", code, message, code if code > 0 else 1)

    def _wait(self) -> None:
        assert self.trainer is not None
        self.trainer.wait()
        self.wake.set()

    def _sample(self) -> None:
        from workbench.core.gpu import GpuMonitor
        from workbench.runs.sampler import TreeSampler

        assert self.trainer is not None
        gpu = GpuMonitor()
        sampler = TreeSampler(self.trainer.pid, gpu)
        interval = float(self.spec.get("sample_interval") or 1.0)
        self.wake.wait(min(0.1, interval))  # early, so that short runs still get one
        try:
            while self.trainer.poll() is None and self.stop_signal is None:
                row = sampler.sample().as_row()
                try:
                    self.journal.write({"t": "res", **row})
                except (OSError, ValueError):
                    pass  # a sample lost to a full disk (or a NaN) must not stop the run
                self.wake.wait(interval)
        finally:
            gpu.close()

    def _stop_tree(self) -> None:
        """SIGTERM to the trainer's group, then SIGKILL after the grace period."""
        assert self.trainer is not None
        grace = float(self.spec.get("stop_grace") or 5.0)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.trainer.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            try:
                self.trainer.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def request_stop(self, signum: int, _frame: object) -> None:
        self.stop_signal = signum
        self.wake.set()

    def _exit(self, status: str, code: int | None, message: str | None, exit_code: int) -> int:
        import resource

        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if self.on_exit is not None:
            try:
                self.on_exit(status, message, self.folder / JOURNAL_NAME)
            except Exception as exc:  # noqa: BLE001 - the run's outcome must still be written
                print(f"workbench job: cannot tell the sweep's study: {exc!r}", file=sys.stderr)
        self.journal.write(
            {
                "t": "exit",
                "ts": time.time(),
                "status": status,
                "code": code,
                "message": message,
                "cpu_time_s": usage.ru_utime + usage.ru_stime,
                "max_rss_bytes": usage.ru_maxrss * 1024,
            }
        )
        self.journal.sync()
        self.journal.close()
        return exit_code


def _reason(folder: Path, run_id: int) -> str | None:
    """Why the trainer failed: a built-in trainer's recorded reason, else the last
    line of its output."""
    reason = folder / "home" / "runs" / str(run_id) / "failure_reason.txt"
    try:
        text = reason.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return text.splitlines()[0][:500]
    except OSError:
        pass
    try:
        with open(folder / LOG_NAME, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return None
    return lines[-1][:500] if lines else None


def array_job(spec: dict[str, Any]) -> Job | None:
    """This array task's run, with the trial it asked the sweep's study for (its
    params in the run's journal and environment); None when the task has no
    orders. A study that cannot be asked fails the run with the reason."""
    from workbench.runs.executors.trial import TrialTask, task_spec

    try:
        run, index = task_spec(spec)
    except (LookupError, KeyError, TypeError, ValueError) as exc:
        print(f"workbench job: {exc}", file=sys.stderr)
        return None
    job = Job(run)
    sweep = spec["sweep"]
    try:
        trial = TrialTask(sweep, index, int(run["run_id"]))
    except Exception as exc:  # noqa: BLE001 - said in the run's outcome, not a traceback
        job.journal.write({"t": "start", "ts": time.time(), "node": socket.gethostname()})
        job._exit("failed", None, f"cannot ask the sweep's study for a trial: {exc!r}"[:500], 1)
        return None
    job.spec["params"] = {**run["params"], **trial.params, "_trial": trial.number}
    job.journal.write({"t": "params", "v": trial.journal_params(int(sweep["sweep_id"]))})
    job.on_exit = trial.tell
    return job


def main() -> int:
    raw = os.environ.get(SPEC_ENV)
    if not raw:
        print(f"workbench job: {SPEC_ENV} is not set", file=sys.stderr)
        return 2
    spec = json.loads(raw)
    job = array_job(spec) if "array" in spec else Job(spec)
    if job is None:
        return 2
    signal.signal(signal.SIGTERM, job.request_stop)
    signal.signal(signal.SIGINT, job.request_stop)
    signal.signal(signal.SIGUSR1, job.request_stop)  # `--signal=USR1@60`: warned before the limit
    return job.run()


if __name__ == "__main__":
    sys.exit(main())
