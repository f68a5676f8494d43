"""The Slurm executor: a run becomes a batch job, submitted with `sbatch`
(through the system's `ssh` to a login node when `[slurm] host` is set), and
its state comes from Slurm itself.

- Submission writes nothing on this machine: the batch script goes to sbatch's
  stdin, with the job's orders (`WORKBENCH_JOB_SPEC`) in it; the job runs
  `python -m workbench.runs.executors.job`, the supervisor's work without the
  store, in a folder under `[slurm] workdir` on the shared filesystem.
- Polling is batched and rate-limited: one `squeue` for all of a store's jobs
  at most every POLL_INTERVAL_S (a stamp file under WORKBENCH_HOME keeps the
  pace across processes), then `sacct` only for the jobs squeue no longer
  knows. Each job's journal is ingested on every poll (cheap: a stat when
  nothing is new).
- States map through `map_state`; every status change goes through
  `store.runs.transition`.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config.executor import SlurmConfig
from workbench.core import env, paths
from workbench.core.errors import UsageError, WorkbenchError
from workbench.runs.executors.journal import (
    JOURNAL_NAME,
    LOG_NAME,
    ingest,
    register_model,
    remote_hostname,
)
from workbench.runs.executors.job import SPEC_ENV
from workbench.store import Store
from workbench.store import jobs as job_store
from workbench.store import runs as run_store
from workbench.store.events import add_event
from workbench.store.jobs import Job
from workbench.store.runs import RunStatus

logger = logging.getLogger("workbench.runs.executors.slurm")

NAME = "slurm"
POLL_INTERVAL_S = 2.0
COMMAND_TIMEOUT_S = 60.0
DEFAULT_WORKDIR = "slurm-jobs"  # under WORKBENCH_HOME when `[slurm] workdir` is not set
SSH_OPTIONS = (
    "-o", "BatchMode=yes",  # never a password prompt (the TUI has no terminal for it)
    "-o", "ControlMaster=auto",  # one connection, reused by every later command
    "-o", "ControlPath=~/.ssh/workbench-%C",
    "-o", "ControlPersist=10m",
    "-o", "ConnectTimeout=15",
)  # fmt: skip

# Slurm's job states (long names, as squeue %T and sacct State print them).
PENDING_STATES = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED"}
)
RUNNING_STATES = frozenset(
    {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED"}
)
_FINAL: dict[str, tuple[RunStatus, str | None]] = {
    "COMPLETED": (RunStatus.SUCCEEDED, None),
    "FAILED": (RunStatus.FAILED, "the job failed"),
    "TIMEOUT": (RunStatus.FAILED, "the job reached its time limit"),
    "OUT_OF_MEMORY": (RunStatus.FAILED, "the job ran out of memory"),
    "DEADLINE": (RunStatus.FAILED, "the job reached its deadline"),
    "BOOT_FAIL": (RunStatus.FAILED, "the node failed to boot"),
    "CANCELLED": (RunStatus.STOPPED, "the job was cancelled"),
    "REVOKED": (RunStatus.STOPPED, "the job was revoked"),
    "NODE_FAIL": (RunStatus.LOST, "its node failed"),
    "PREEMPTED": (RunStatus.LOST, "the job was preempted"),
    "SPECIAL_EXIT": (RunStatus.FAILED, "the job ended in a special exit state"),
}


@dataclass(frozen=True, slots=True)
class SlurmState:
    """What Slurm says of one job."""

    job_id: str
    state: str
    reason: str | None = None
    node: str | None = None
    exit_code: int | None = None


def map_state(state: str, reason: str | None = None) -> tuple[RunStatus, str | None]:
    """A Slurm job state (and reason) as a run status and the message kept with it.

    PENDING (with its reason: "Resources", "Priority"...) -> queued; RUNNING ->
    running; COMPLETED -> succeeded; FAILED, TIMEOUT, OUT_OF_MEMORY... -> failed;
    CANCELLED -> stopped; NODE_FAIL, PREEMPTED -> lost (requeue them).
    """
    base = state.split()[0].rstrip("+").upper() if state.strip() else "UNKNOWN"
    reason = None if reason in (None, "", "None", "(null)") else reason
    if base in PENDING_STATES:
        return RunStatus.QUEUED, f"Slurm: {base.lower()}" + (f" ({reason})" if reason else "")
    if base in RUNNING_STATES:
        return RunStatus.RUNNING, None
    if base == "CANCELLED" and " by " in state:
        return RunStatus.STOPPED, f"the job was cancelled{state[len('CANCELLED'):].rstrip('+')}"
    status, message = _FINAL.get(base, (RunStatus.LOST, f"Slurm state {base}"))
    if message and reason and status is not RunStatus.SUCCEEDED:
        message += f" ({reason})"
    return status, message


# --- the command lines ----------------------------------------------------------------


def ssh_command(host: str, *extra: str) -> list[str]:
    """The system's ssh to `host`: batch mode, one shared connection (its socket
    in the user's ~/.ssh, made if missing), and `-F` the file WORKBENCH_SSH_CONFIG
    names when it is set (else ssh reads the user's own ~/.ssh/config)."""
    if host.startswith("-"):
        raise UsageError(f"[slurm] host {host!r} cannot start with '-'")
    config = os.environ.get(env.SSH_CONFIG)
    _control_folder()
    return ["ssh", *(["-F", config] if config else []), *SSH_OPTIONS, *extra, host]


def _control_folder() -> None:
    """ssh will not make the folder of its ControlPath: ~/.ssh (of the account,
    as ssh reads `~`, not $HOME), mode 0700 as ssh wants it."""
    import pwd

    try:
        folder = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh"
        folder.mkdir(mode=0o700, exist_ok=True)
    except (KeyError, OSError):
        pass  # ssh then says why it cannot share the connection, and goes on without


def remote(argv: Sequence[str], host: str | None) -> list[str]:
    """`argv` run here, or on `host` through the system's ssh (batch mode, one
    shared connection)."""
    if not host:
        return list(argv)
    return [*ssh_command(host), "--", shlex.join(argv)]


def sbatch_command(host: str | None, folder: str | None = None) -> list[str]:
    """`sbatch --parsable` reading the script from stdin; through ssh, the job's
    folder is made first (Slurm opens the output file before the job starts)."""
    if not host:
        return ["sbatch", "--parsable"]
    make = f"mkdir -p {shlex.quote(folder)} && " if folder else ""
    return [*ssh_command(host), "--", make + "sbatch --parsable"]


def close_connection(host: str) -> bool:
    """End the shared ssh connection to `host` (it otherwise lingers for
    ControlPersist); whether one was open."""
    try:
        result = _call(ssh_command(host, "-O", "exit"))
    except WorkbenchError:
        return False
    return result.returncode == 0


def sbatch_options(
    settings: SlurmConfig, *, name: str, output: str, array: str | None = None
) -> list[str]:
    """The `#SBATCH` options for a job (or an array) with these settings."""
    options = [f"--job-name={name}", f"--output={output}", "--open-mode=append"]
    for flag, value in (
        ("partition", settings.partition),
        ("time", settings.time),
        ("cpus-per-task", settings.cpus),
        ("mem", settings.mem),
        ("gpus", settings.gpus),
        ("gres", settings.gres),
        ("account", settings.account),
        ("qos", settings.qos),
    ):
        if value is not None:
            options.append(f"--{flag}={value}")
    if array:
        options.append(f"--array={array}")
    options.extend(settings.sbatch)
    return options


def batch_script(
    settings: SlurmConfig,
    spec: dict[str, Any],
    *,
    name: str,
    output: str,
    python: str,
    array: str | None = None,
) -> str:
    """The batch script of one run (or of a sweep's array): #SBATCH lines, the
    setup lines, the job."""
    lines = ["#!/bin/bash"]
    options = sbatch_options(settings, name=name, output=output, array=array)
    lines += [f"#SBATCH {option}" for option in options]
    lines.append("# Written by workbench: the run's job (see workbench.runs.executors.job).")
    lines += list(settings.setup)
    lines.append(f"export {SPEC_ENV}={shlex.quote(json.dumps(spec, separators=(',', ':')))}")
    lines.append(f"exec {shlex.quote(python)} -m workbench.runs.executors.job")
    return "\n".join(lines) + "\n"


def squeue_command(job_ids: Sequence[str]) -> list[str]:
    """One squeue for every job: id, long state, reason, nodes; ended jobs too
    (while slurmctld remembers them). `-r` prints an array's tasks one a line
    ("123_4"), pending ones too, which squeue otherwise folds into "123_[4-9%2]"."""
    return ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T|%r|%N"]


def array_range(indices: Sequence[int], parallel: int | None = None) -> str:
    """`--array`'s value for these task indices: "0-9%2" for a whole range,
    "3,7-8%2" for some of them (a requeue), at most `parallel` at once."""
    ordered = sorted(set(indices))
    if not ordered or ordered[0] < 0:
        raise ValueError("an array needs task indices of 0 or more")
    parts: list[str] = []
    first = last = ordered[0]
    for index in [*ordered[1:], None]:
        if index is not None and index == last + 1:
            last = index
            continue
        parts.append(str(first) if first == last else f"{first}-{last}")
        if index is not None:
            first = last = index
    limit = f"%{parallel}" if parallel and parallel < len(ordered) else ""
    return ",".join(parts) + limit


def array_task(job_id: str | None) -> int | None:
    """The task index of an array task's job id ("123_4" -> 4), else None."""
    if not job_id or "_" not in job_id:
        return None
    tail = job_id.rsplit("_", 1)[1]
    return int(tail) if tail.isdigit() else None


def sacct_command(job_ids: Sequence[str]) -> list[str]:
    return [
        "sacct", "-n", "-P", "-X", "-j", ",".join(job_ids),
        "-o", "JobID,State,Reason,NodeList,ExitCode",
    ]  # fmt: skip


def parse_sbatch(stdout: str) -> str:
    """The job id of `sbatch --parsable`'s output ("1234" or "1234;cluster")."""
    line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = line.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise WorkbenchError(f"sbatch did not print a job id (got {stdout.strip()[:200]!r})")
    return job_id


def parse_squeue(stdout: str) -> dict[str, SlurmState]:
    found = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 4 or not parts[0]:
            continue
        job_id, state, reason, node = parts[:4]
        found[job_id] = SlurmState(job_id, state, reason or None, node or None)
    return found


def parse_sacct(stdout: str) -> dict[str, SlurmState]:
    found = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 5 or not parts[0]:
            continue
        job_id, state, reason, node, exit_code = parts[:5]
        code = exit_code.split(":", 1)[0]
        found[job_id] = SlurmState(
            job_id, state, reason or None, node or None, int(code) if code.isdigit() else None
        )
    return found


def _call(argv: list[str], *, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise WorkbenchError(
            f"{argv[0]} is not installed here; Slurm runs need Slurm's commands"
            " (or `[slurm] host` to submit through ssh)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise WorkbenchError(f"{argv[0]} did not answer in {COMMAND_TIMEOUT_S:g} s") from exc


# --- the executor ------------------------------------------------------------------------


def workdir(settings: SlurmConfig) -> Path:
    """Where jobs' folders go: `[slurm] workdir`, else under WORKBENCH_HOME (fine
    when this machine is the cluster's login node and its home is shared)."""
    if settings.workdir:
        return Path(os.path.expanduser(settings.workdir))
    return paths.home() / DEFAULT_WORKDIR


class SlurmExecutor:
    """Runs as Slurm batch jobs."""

    name = NAME

    def submit(self, store: Store, run_id: int, config: Any) -> str:
        """Submit queued run `run_id` of `config`'s project; returns the job id.
        A failed submission fails the run (with sbatch's reason) and raises."""
        settings: SlurmConfig = config.slurm
        run = run_store.get(store, run_id)
        if run is None:
            raise UsageError(f"no run {run_id}")
        folder = workdir(settings) / f"run-{run_id}-{_short_uuid(store, run_id)}"
        spec = {
            "run_id": run_id,
            "folder": str(folder),
            "project_dir": str(config.root),
            "trainer": config.trainer,
            "script": str(config.script) if config.script else None,
            "params": run_store.params(store, run_id),
            "sample_interval": _settings().sample_interval,
            "stop_grace": _settings().stop_grace,
        }
        output = str(folder.parent / f"{folder.name}.slurm.out")
        script = batch_script(
            settings,
            spec,
            name=f"wb-{config.name}-{run_id}"[:64],
            output=output,
            python=settings.python or sys.executable,
        )
        if not settings.host:
            folder.mkdir(parents=True, exist_ok=True)
        job_store.set_fields(
            store,
            run_id,
            executor=NAME,
            job_host=settings.host,
            journal_path=str(folder / JOURNAL_NAME),
        )
        try:
            result = _call(sbatch_command(settings.host, str(folder)), stdin=script)
            if result.returncode != 0:
                raise WorkbenchError(
                    "sbatch refused the job: "
                    + (result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}")[:500]
                )
            job_id = parse_sbatch(result.stdout)
        except WorkbenchError as exc:
            run_store.transition(
                store,
                run_id,
                RunStatus.FAILED,
                expect=RunStatus.QUEUED,
                ended_at=time.time(),
                message=exc.message,
            )
            raise
        with store.write():
            job_store.set_fields(store, run_id, job_id=job_id, slurm_state="PENDING")
            add_event(
                store.conn,
                "run.submitted",
                f"run {run_id} submitted to Slurm as job {job_id}",
                ts=time.time(),
                project_id=run.project_id,
                run_id=run_id,
                data={"job_id": job_id, "host": settings.host},
            )
        return job_id

    def submit_array(
        self,
        store: Store,
        tasks: dict[int, int],
        config: Any,
        *,
        sweep: dict[str, Any],
        parallel: int | None,
        name: str,
    ) -> str:
        """Submit queued runs as ONE job array: task index -> run id in `tasks`,
        at most `parallel` tasks at once; returns the array's job id. Each task
        asks the sweep's study (`sweep`: its journal on the shared filesystem,
        name, direction, distributions, sampler) for its trial on the node
        (`executors.trial`). A refused submission fails every run and raises."""
        settings: SlurmConfig = config.slurm
        study_folder = Path(sweep["study"]).parent
        orders: dict[str, dict[str, Any]] = {}
        with store.write():
            for index, run_id in tasks.items():
                folder = workdir(settings) / f"run-{run_id}-{_short_uuid(store, run_id)}"
                orders[str(index)] = {
                    "run_id": run_id,
                    "folder": str(folder),
                    "params": run_store.params(store, run_id),
                }
                job_store.set_fields(
                    store,
                    run_id,
                    executor=NAME,
                    job_host=settings.host,
                    journal_path=str(folder / JOURNAL_NAME),
                )
        spec = {
            "array": orders,
            "sweep": sweep,
            "project_dir": str(config.root),
            "trainer": config.trainer,
            "script": str(config.script) if config.script else None,
            "sample_interval": _settings().sample_interval,
            "stop_grace": _settings().stop_grace,
        }
        script = batch_script(
            settings,
            spec,
            name=name[:64],
            output=str(study_folder / "%A_%a.slurm.out"),
            python=settings.python or sys.executable,
            array=array_range(list(tasks), parallel),
        )
        if not settings.host:
            study_folder.mkdir(parents=True, exist_ok=True)
        try:
            result = _call(sbatch_command(settings.host, str(study_folder)), stdin=script)
            if result.returncode != 0:
                said = result.stderr.strip() or result.stdout.strip()
                raise WorkbenchError(
                    "sbatch refused the array: " + (said or f"exit {result.returncode}")[:500]
                )
            array_id = parse_sbatch(result.stdout)
        except WorkbenchError as exc:
            for run_id in tasks.values():
                run_store.transition(
                    store,
                    run_id,
                    RunStatus.FAILED,
                    expect=RunStatus.QUEUED,
                    ended_at=time.time(),
                    message=exc.message,
                )
            raise
        now = time.time()
        first = run_store.get(store, next(iter(tasks.values())))
        with store.write():
            for index, run_id in tasks.items():
                job_id = f"{array_id}_{index}"
                job_store.set_fields(store, run_id, job_id=job_id, slurm_state="PENDING")
                add_event(
                    store.conn,
                    "run.submitted",
                    f"run {run_id} submitted to Slurm as task {index} of array {array_id}",
                    ts=now,
                    project_id=first.project_id if first else None,
                    run_id=run_id,
                    data={"job_id": job_id, "array": array_id, "host": settings.host},
                )
        return array_id

    def poll(self, store: Store, jobs: list[Job], *, force: bool = False) -> None:
        """Ingest every job's journal, then ask Slurm (one squeue, and sacct for
        the jobs it no longer knows) and bring the runs' statuses in line."""
        for job in jobs:
            ingest(store, job)
        jobs = [j for j in jobs if not _finished(store, j.run_id)]
        if not jobs or not _due(force):
            return
        by_host: dict[str | None, list[Job]] = {}
        for job in jobs:
            if job.job_id:
                by_host.setdefault(job.job_host, []).append(job)
        for host, group in by_host.items():
            self._poll_host(store, host, group)

    def _poll_host(self, store: Store, host: str | None, jobs: list[Job]) -> None:
        ids = [j.job_id for j in jobs if j.job_id]
        result = _call(remote(squeue_command(ids), host))
        # squeue exits non-zero when none of the ids is known any more.
        states = parse_squeue(result.stdout) if result.returncode == 0 else {}
        missing = [i for i in ids if i not in states]
        if missing:
            accounted = _call(remote(sacct_command(missing), host))
            if accounted.returncode == 0:
                states.update(parse_sacct(accounted.stdout))
        for job in jobs:
            state = states.get(job.job_id or "")
            # The journal may hold the job's own last words, written after our read.
            ingest(store, job)
            if _finished(store, job.run_id):
                continue
            self._apply(store, job, state)

    def _apply(self, store: Store, job: Job, state: SlurmState | None) -> None:
        now = time.time()
        if state is None:
            run_store.transition(
                store,
                job.run_id,
                RunStatus.LOST,
                expect=(RunStatus.QUEUED, RunStatus.RUNNING),
                ended_at=now,
                message=f"Slurm no longer knows job {job.job_id} and it left no outcome",
            )
            return
        status, message = map_state(state.state, state.reason)
        base = state.state.split()[0].rstrip("+")
        if status is RunStatus.SUCCEEDED and job.parent_id is None:
            register_model(store, job.run_id)  # before the run reads as succeeded
        with store.write():
            job_store.set_fields(
                store,
                job.run_id,
                slurm_state=base,
                slurm_reason=state.reason if state.reason not in ("None", "(null)") else None,
                node=state.node or job.node,
            )
            if status is RunStatus.QUEUED:
                run_store.update(store, job.run_id, expect=RunStatus.QUEUED, message=message)
            elif status is RunStatus.RUNNING:
                changed = run_store.transition(
                    store,
                    job.run_id,
                    RunStatus.RUNNING,
                    expect=RunStatus.QUEUED,
                    event_message=f"run {job.run_id} running on {state.node} (Slurm job {job.job_id})",
                    started_at=now,
                    heartbeat_at=now,
                    message=None,
                    hostname=remote_hostname(state.node),
                )
                if not changed:  # Slurm's word that it still runs is its heartbeat
                    run_store.update(store, job.run_id, expect=RunStatus.RUNNING, heartbeat_at=now)
            else:
                if status is RunStatus.STOPPED and job.stop_requested_at is not None:
                    message = "stopped on request (scancel)"
                exit_code: dict[str, Any] = (
                    {} if state.exit_code is None else {"exit_code": state.exit_code}
                )
                run_store.transition(
                    store,
                    job.run_id,
                    status,
                    expect=(RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.LOST),
                    ended_at=now,
                    message=message,
                    started_at=run_store.IfNull(now),
                    **exit_code,
                )

    def cancel(self, store: Store, job: Job) -> None:
        """`scancel` the job (its wrapper stops the trainer and records the end)."""
        if not job.job_id:
            return
        result = _call(remote(["scancel", job.job_id], job.job_host))
        if result.returncode != 0:
            raise WorkbenchError(
                f"scancel {job.job_id} failed: {(result.stderr or result.stdout).strip()[:300]}"
            )


def _finished(store: Store, run_id: int) -> bool:
    status = run_store.status_of(store, run_id)
    return status is None or status.finished


def _short_uuid(store: Store, run_id: int) -> str:
    return (job_store.run_uuid(store, run_id) or "")[:8] or "x"


def _settings() -> Any:
    from workbench.config.settings import load_settings

    return load_settings()


def _due(force: bool = False) -> bool:
    """Whether POLL_INTERVAL_S has passed since any process last asked Slurm (a
    stamp file's mtime), or `force`; claims this poll when it goes ahead."""
    stamp = paths.home() / "slurm-poll.stamp"
    now = time.time()
    try:
        if not force and now - stamp.stat().st_mtime < POLL_INTERVAL_S:
            return False
    except FileNotFoundError:
        pass
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    os.utime(stamp, (now, now))
    return True


def slurm_log(job: Job) -> Path | None:
    """Slurm's own output file of the job (the wrapper's errors), beside its folder."""
    if not job.journal_path:
        return None
    folder = Path(job.journal_path).parent
    return folder.parent / f"{folder.name}.slurm.out"


__all__ = [
    "LOG_NAME",
    "NAME",
    "SlurmExecutor",
    "SlurmState",
    "batch_script",
    "map_state",
    "parse_sacct",
    "parse_sbatch",
    "parse_squeue",
    "remote",
    "sbatch_command",
    "sbatch_options",
]
