"""Run the test suite while another job keeps every core busy, as on a shared machine.

    python scripts/suite_under_load.py [--runs 3] [--budget 900] [--pytest-args "..."]

Starts one CPU burner per core (a plain Python busy loop in its own process, at
nice 0 like a real competing job), then runs the README's test command
(`.venv/bin/python -m pytest`, plus --pytest-args) --runs times, printing each
run's wall time and pytest's summary line. The burners are stopped when the
script ends, whether the runs passed, failed or were interrupted (Ctrl-C), and
each one also stops by itself if this script's process goes away.

Exits 0 when every run passed within --budget seconds, 1 when one failed or
took longer, 2 for bad arguments. Each run's full output is kept in
--log-dir (default: a temporary folder, named at the end).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Spins until its parent (this script) is gone, so that no burner outlives a
# killed script; checking the parent costs nothing next to the loop.
BURNER = """\
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(2_000_000):
        pass
"""


def _python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _set_nice(value: int) -> None:
    """In the child, before exec: an absolute nice value (raising it needs no rights)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, value)
    except (PermissionError, OSError):
        pass


def start_burners(count: int, nice: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", BURNER, str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: _set_nice(nice),
        )
        for _ in range(count)
    ]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc (0 where unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def stop(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.kill()
    for proc in processes:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _summary(log: Path) -> str:
    """pytest's last non-empty line ('== 12 passed in 3.1s ==')."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip("= ") if lines else "(no output)"


def run_suite(command: list[str], log: Path) -> tuple[int, float]:
    """One run of the suite in its own process group, output to `log`; on
    Ctrl-C the whole group (xdist workers included) is stopped."""
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait()
        except BaseException:
            for signum in (signal.SIGINT, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, signum)
                    proc.wait(timeout=15)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue
            raise
    return code, time.monotonic() - started


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends the script as Ctrl-C does: through the cleanup in main()."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="how many times to run the suite")
    parser.add_argument(
        "--burners", type=int, default=os.cpu_count() or 1, help="busy processes (default: one per core)"
    )
    parser.add_argument("--nice", type=int, default=0, help="the burners' nice value (default 0)")
    parser.add_argument(
        "--budget", type=float, default=900, help="seconds a run may take (default 900)"
    )
    parser.add_argument(
        "--pytest-args", default="", help='extra pytest arguments, one string ("tests/test_docs.py -x")'
    )
    parser.add_argument("--log-dir", type=Path, help="where each run's output is kept")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs: expected 1 or more, got {args.runs}")
    if args.burners < 0:
        parser.error(f"--burners: expected 0 or more, got {args.burners}")
    if not -20 <= args.nice <= 19:
        parser.error(f"--nice: expected -20 to 19, got {args.nice}")
    try:
        extra = shlex.split(args.pytest_args)
    except ValueError as exc:
        parser.error(f"--pytest-args: {exc}")
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="suite-under-load-"))
    log_dir.mkdir(parents=True, exist_ok=True)

    command = [_python(), "-m", "pytest", *extra]
    print(f"command: {shlex.join(command)}")
    print(f"burners: {args.burners} at nice {args.nice} on {os.cpu_count()} cores", flush=True)

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where started ignoring it
    burners = start_burners(args.burners, args.nice)
    started = time.monotonic()
    results: list[tuple[int, float]] = []
    try:
        for number in range(1, args.runs + 1):
            log = log_dir / f"run{number}.log"
            code, wall = run_suite(command, log)
            results.append((code, wall))
            verdict = "ok" if code == 0 and wall <= args.budget else "FAIL"
            print(
                f"run {number}/{args.runs}: {wall:7.1f} s  exit {code}  {verdict}  {_summary(log)}",
                flush=True,
            )
    except KeyboardInterrupt:
        print("interrupted: burners stopped", file=sys.stderr)
        return 130
    finally:
        burned = sum(_cpu_seconds(p.pid) for p in burners)
        stop(burners)
        elapsed = time.monotonic() - started
        if burners and elapsed > 0:
            share = burned / (elapsed * len(burners))
            print(f"burners: {burned:.0f} CPU-s over {elapsed:.0f} s ({share:.0%} of each core's time)")
        print(f"logs: {log_dir}")

    walls = [wall for _, wall in results]
    failed = [n for n, (code, wall) in enumerate(results, 1) if code != 0 or wall > args.budget]
    print(
        f"{len(results)} run(s): min {min(walls):.1f} s, max {max(walls):.1f} s,"
        f" budget {args.budget:.0f} s; " + (f"failed: runs {failed}" if failed else "all passed")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
