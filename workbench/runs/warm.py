"""Warm processes: supervisors and built-in trainers forked from a server that
has already imported what they need (pandas, scikit-learn, LightGBM, the
workbench itself).

A fresh `python -m workbench.trainers` spends seconds importing those, and a
fresh supervisor a quarter of a second, which dwarfs a sweep's short trials.
The server (`python -m workbench.runs.warm`, started by `workbench sweep`,
`workbench demo` and a pipeline's retrain, gone after IDLE_S without work)
listens on a Unix socket next to the store.
A dispatcher or a supervisor that finds it sends what the process needs (its
environment, working folder, and stdin and log as file descriptors) and gets
the pid of a forked child; the exit status and resource use come back on the
same connection when the child ends. A forked supervisor has its own session
and a forked trainer its own process group, as when they are started the
usual way, so detaching, stopping and sampling work the same. A forked
trainer dies with its supervisor as a Popen'd one does: when the supervisor's
connection closes before the trainer has ended, the server SIGKILLs the
trainer's process group (and the kernel kills it if the server itself dies).

The server is only ever a shortcut: without it (not started, not Linux,
`WORKBENCH_WARM=0`, a script trainer, any socket error) processes are started
the usual way.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from workbench.core import env, paths
from workbench.core.files import try_lock
from workbench.core.spawn import spawn_detached
from workbench.runs import lifeline, process_log

logger = logging.getLogger("workbench.runs.warm")  # also when run as __main__

IDLE_S = 60.0  # the server exits after this long with no child and no request
IDLE_ENV = env.WARM_IDLE  # overrides IDLE_S (seconds)
STARTING_WAIT_S = 30.0  # how long a trainer waits for a server that is still importing
BUILTIN = ["-m", "workbench.trainers"]  # the tail of a built-in trainer's command
# Imported once by the server, so that each forked process starts with them loaded.
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "pyarrow.pandas_compat",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.impute",
    "sklearn.preprocessing",
    "lightgbm",
    "narwhals._pandas_like.dataframe",  # loaded by LightGBM on its first fit
    "skops.io",
    "workbench.plugins",
    "workbench.projects",
    "workbench.runs.supervisor",
    "workbench.runs.queue",
    "workbench.tracking",
    "workbench.store.metrics",
    "workbench.trainers.__main__",
    "workbench.trainers.cv",
    "workbench.trainers.lightgbm_trainer",
    "workbench.trainers.sklearn_trainer",
)
_MAX_REQUEST = 1 << 20


def enabled() -> bool:
    return os.environ.get(env.WARM, "1") != "0" and hasattr(os, "pidfd_open")


def socket_path() -> Path:
    """Next to the store, or under the temp folder when that path is too long
    for a Unix socket (about 100 bytes)."""
    path = paths.home() / "warm.sock"
    if len(os.fsencode(path)) < 100:
        return path
    digest = hashlib.sha256(os.fsencode(paths.home())).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"workbench-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{digest}.sock"


def _lock_path() -> Path:
    return paths.home() / "warm.lock"


# -- the client's side --------------------------------------------------------


class WarmProcess:
    """A forked child, with the part of `subprocess.Popen` that supervisors and
    dispatchers use (pid, poll, wait, returncode)."""

    def __init__(self, conn: socket.socket, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.cpu_time_s: float | None = None
        self.max_rss_bytes: int | None = None
        self._conn = conn
        self._done = threading.Event()
        threading.Thread(target=self._read_exit, name="warm-child", daemon=True).start()

    def _read_exit(self) -> None:
        try:
            message = json.loads(self._conn.recv(4096) or b"null")
        except (OSError, ValueError):
            message = None
        finally:
            self._conn.close()
        if message is None:
            # The server died first, and the child's exit status with it.
            _wait_gone(self.pid)
            self.returncode = 1
        else:
            self.returncode = message["exit"]
            self.cpu_time_s = message["cpu_time_s"]
            self.max_rss_bytes = message["max_rss_bytes"]
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode if self._done.is_set() else None

    def wait(self, timeout: float | None = None) -> int | None:
        self._done.wait(timeout)
        return self.returncode


def start_trainer(command: list[str], *, cwd: Path, env: dict[str, str], output: int) -> Any:
    """The trainer process: forked warm when a server is up (or starting) and
    the trainer is built in, else started the usual way (its own process group,
    stdin from /dev/null, stdout and stderr into the file descriptor `output`).
    Either way it dies with the calling process (see `lifeline`)."""
    if command[-2:] == BUILTIN and enabled():
        forked = _request("trainer", cwd, env, output, wait_s=STARTING_WAIT_S)
        if forked is not None:
            return forked
    # Not core.spawn: the trainer stays in our session and dies with us (lifeline).
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        process_group=0,
        preexec_fn=lifeline.child_setup(),
    )


def fork_supervisor(run_id: int, env: dict[str, str], log: IO) -> WarmProcess | None:
    """A supervisor for `run_id` forked by a running server (in a new session,
    output into `log`), or None without one; never waits for a server."""
    if not enabled():
        return None
    try:
        cwd = Path.cwd()
    except OSError:  # our folder was deleted; a plain Popen copes with that
        return None
    return _request("supervisor", cwd, env, log.fileno(), run_id=run_id)


def child_usage(process: Any) -> tuple[float | None, int | None]:
    """(CPU seconds, peak RSS bytes) of an ended child and its descendants."""
    if isinstance(process, WarmProcess):
        return process.cpu_time_s, process.max_rss_bytes
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def _request(
    kind: str, cwd: Path, env: dict[str, str], output: int, wait_s: float = 0.0, **extra: Any
) -> WarmProcess | None:
    conn = _connect(wait_s)
    if conn is None:
        return None
    try:
        request = json.dumps({"kind": kind, "cwd": str(cwd), "env": env, **extra}).encode()
        with open(os.devnull, "rb") as devnull:
            socket.send_fds(conn, [request], [devnull.fileno(), output])
        # Once sent, the server forks at once; a slow reply is a busy machine.
        conn.settimeout(60.0)
        pid = json.loads(conn.recv(4096))["pid"]
        conn.settimeout(None)
    except (OSError, ValueError, KeyError, TypeError):
        conn.close()
        return None
    return WarmProcess(conn, pid)


def _connect(wait_s: float) -> socket.socket | None:
    """A connection to the server; waits up to `wait_s` for one that is still
    importing (it holds the lock but does not listen yet)."""
    path = socket_path()
    deadline = time.monotonic() + wait_s
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.settimeout(2.0)
        try:
            conn.connect(str(path))
            return conn
        except OSError:
            conn.close()
        if time.monotonic() >= deadline or not _server_alive():
            return None
        time.sleep(0.05)


def _server_alive() -> bool:
    """Whether a server process holds the lock (it may still be importing)."""
    try:
        lock = try_lock(_lock_path())
    except OSError:
        return False
    if lock is None:
        return True
    lock.close()
    return False  # we got the lock, so nobody holds it (closing released it)


def _wait_gone(pid: int) -> None:
    import psutil

    with contextlib.suppress(psutil.Error):
        psutil.Process(pid).wait()


def ensure_server() -> None:
    """Start the server in the background unless one is up (or disabled)."""
    if not enabled() or _server_alive():
        return
    spawn_detached(
        [sys.executable, "-u", "-m", "workbench.runs.warm"], log=paths.home() / "warm.log"
    )


# -- the server ---------------------------------------------------------------


class Server:
    def __init__(self, path: Path, lock: IO) -> None:
        self.path = path
        self.lock = lock  # held while serving; no child may inherit it
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, conn)
        self.stopping = False
        self.bound: int | None = None
        self.idle_s = float(os.environ.get(IDLE_ENV) or IDLE_S)

    def serve(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a dead server's socket (we hold the lock)
        old_umask = os.umask(0o177)  # the socket is this user's only
        try:
            self.listener.bind(str(self.path))
        finally:
            os.umask(old_umask)
        self.bound = os.stat(self.path).st_ino  # to remove only our own socket file
        self.listener.listen(64)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        logger.info("warm server %s listening on %s", os.getpid(), self.path)
        idle_since = time.monotonic()
        try:
            while True:
                for key, _ in self.selector.select(timeout=1.0):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "request":
                        self._handle(key.fileobj)  # type: ignore[arg-type]
                    elif isinstance(key.data, tuple):
                        self._client_gone(key.fileobj, key.data[1])  # type: ignore[arg-type]
                    else:
                        self._reap(key.fd)
                if len(self.selector.get_map()) > (0 if self.stopping else 1):
                    idle_since = time.monotonic()  # children or requests besides the listener
                elif (
                    self.stopping
                    or time.monotonic() - idle_since > self.idle_s
                    or not self.path.exists()
                ):
                    return
        finally:
            self._close()

    def _stop(self, *_: object) -> None:
        # Children already forked are waited for: their parents need the outcome.
        self.stopping = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.listener)

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        self.selector.register(conn, selectors.EVENT_READ, "request")

    def _handle(self, conn: socket.socket) -> None:
        self.selector.unregister(conn)
        try:
            data, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 2)
            request = json.loads(data) if data else None
        except (OSError, ValueError):
            request, fds = None, []
        if not isinstance(request, dict) or len(fds) != 2 or self.stopping:
            for fd in fds:
                os.close(fd)
            conn.close()  # a probe, or nothing we can start
            return
        server = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                conn.close()
                if request.get("kind") != "supervisor":
                    lifeline.die_with_parent(server)  # no trainer outlives the server
                code = self._become(request, fds)
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (pid, conn)
        self.selector.register(pidfd, selectors.EVENT_READ, "child")
        if request.get("kind") != "supervisor":
            # The supervisor holds this connection until the trainer ends: if it
            # closes first, the supervisor died, and its trainer goes with it.
            self.selector.register(conn, selectors.EVENT_READ, ("client", pid))
        with contextlib.suppress(OSError):
            conn.send(json.dumps({"pid": pid}).encode())
        logger.info("forked a %s: pid %d", request.get("kind") or "trainer", pid)

    def _become(self, request: dict[str, Any], fds: list[int]) -> int:
        """In the forked child: drop the server's state, take the request's
        stdio, environment and folder, and run; returns the exit code."""
        for key in list(self.selector.get_map().values()):
            if isinstance(key.fileobj, socket.socket):
                key.fileobj.close()
            else:
                os.close(key.fd)
        for _, other in self.children.values():
            other.close()
        self.selector.close()
        self.listener.close()
        self.lock.close()
        if request.get("kind") == "supervisor":
            os.setsid()  # detached, as `start_new_session=True` would make it
        else:
            os.setpgid(0, 0)  # its own process group, as the supervisor's Popen gives it
        stdin, out = fds
        os.dup2(stdin, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(stdin)
        os.close(out)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if request.get("kind") == "supervisor":
            from workbench.runs.supervisor import main

            return _run(lambda: main([str(request["run_id"])]))
        from workbench.trainers.__main__ import train

        return _run(train)

    def _client_gone(self, conn: socket.socket, pid: int) -> None:
        """The trainer's supervisor closed its connection (it never sends
        anything): it is gone, so is its trainer. The pid is still ours (not
        reaped), so it cannot name another process; nor can its group."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(OSError):
                kill(pid, signal.SIGKILL)

    def _reap(self, pidfd: int) -> None:
        pid, conn = self.children[pidfd]
        found, status, usage = os.wait4(pid, os.WNOHANG)
        if not found:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        del self.children[pidfd]
        message = {
            "exit": os.waitstatus_to_exitcode(status),
            "cpu_time_s": usage.ru_utime + usage.ru_stime,
            "max_rss_bytes": usage.ru_maxrss * 1024,
        }
        with contextlib.suppress(OSError):
            conn.send(json.dumps(message).encode())
        conn.close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.bound:
                self.path.unlink()
        self.listener.close()
        self.selector.close()


def _run(entry: Any) -> int:
    """Run a child's entry point as `python -m ...` would; returns the exit code."""
    import atexit
    import traceback

    from workbench.core.errors import WorkbenchError

    code = 0
    try:
        result = entry()
        code = result if isinstance(result, int) else 0
    except WorkbenchError as exc:  # as `python -m workbench.trainers` reports it
        print(f"workbench: {exc.message}", file=sys.stderr)
        code = 2
    except SystemExit as exc:  # e.g. SIGTERM, through the tracking API's handler
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    # As at interpreter exit: e.g. the tracking API writes what it still buffers.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def main() -> int:
    if not enabled():
        return 0
    # Held for the server's life. A few tries: a client checking `_server_alive`
    # holds the lock for an instant.
    lock = None
    for attempt in range(25):
        lock = try_lock(_lock_path())
        if lock is not None:
            break
        if attempt == 24:
            return 0  # another server is up
        time.sleep(0.02)
    assert lock is not None
    process_log.setup()
    for module in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    lifeline.available()  # loaded before any fork
    Server(socket_path(), lock).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
