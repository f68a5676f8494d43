"""CPU used by a run's supervisor while it samples the trainer's process tree.

Target: at the default `[runs] sample_interval = 1.0` (1 Hz), the supervisor
process itself uses at most 2% of one core.

Starts (without --wait) a script run whose train.py spawns one child that
sleeps and then sleeps itself for N seconds (so the sampled tree has two
processes), reads the supervisor's pid from the store, and measures the
supervisor's CPU time (psutil user + system, all its threads) over the
window t = 3 s .. N - 2 s after the trainer started, divided by the window's
wall time: percent of one core. Start-up (imports, first sample) lies outside
the window and is reported separately. Repeated at sample_interval = 0.2 (5 Hz)
for reference; only the 1 Hz figure is held to the target.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_supervisor_cpu.py [--seconds 30] [--intervals 1.0,0.2] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Sandbox, machine_info, sandbox  # noqa: E402

TARGET_PERCENT = 2.0
WINDOW_START = 3.0  # seconds after the trainer started
WINDOW_END_BEFORE = 2.0  # seconds before the trainer ends

TRAIN_PY = """\
import os, subprocess, sys, time
seconds = float(os.environ.get("BENCH_SECONDS", "30"))
child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
time.sleep(seconds)
child.wait()
"""


def wait_until(predicate, timeout: float, what: str, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise SystemExit(f"timed out waiting for {what}")


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def measure_one(box: Sandbox, interval: float, seconds: float, log) -> dict:
    box.set_sample_interval(interval)
    box.env["BENCH_SECONDS"] = str(seconds)
    run_id = int(box.wb("run", "start", box.project).stdout.split()[0])
    supervisor: psutil.Process | None = None
    try:

        def started():
            rows = box.query(
                "SELECT status, supervisor_pid, supervisor_started_at, started_at"
                " FROM runs WHERE id = ?",
                (run_id,),
            )
            status, pid, _, trainer_started = rows[0]
            if status not in ("queued", "running"):
                raise SystemExit(f"run {run_id} ended {status} before it could be measured")
            return rows[0] if status == "running" and pid and trainer_started else None

        _, pid, pid_started, trainer_started = wait_until(started, 30, "the run to start")
        supervisor = psutil.Process(pid)
        if abs(supervisor.create_time() - pid_started) > 1.0:
            raise SystemExit(f"pid {pid} is not run {run_id}'s supervisor")

        window = (trainer_started + WINDOW_START, trainer_started + seconds - WINDOW_END_BEFORE)
        time.sleep(max(0.0, window[0] - time.time()))
        cpu0, t0 = cpu_seconds(supervisor), time.perf_counter()
        samples0 = box.query("SELECT COUNT(*) FROM resource_samples WHERE run_id = ?", (run_id,))[
            0
        ][0]
        time.sleep(max(0.0, window[1] - time.time()))
        cpu1, t1 = cpu_seconds(supervisor), time.perf_counter()
        samples1 = box.query("SELECT COUNT(*) FROM resource_samples WHERE run_id = ?", (run_id,))[
            0
        ][0]
        rss = supervisor.memory_info().rss
        threads = supervisor.num_threads()

        # Let the run end, and the supervisor exit, before the store is removed.
        psutil.wait_procs([supervisor], timeout=seconds + 30)
        (status,) = box.query("SELECT status FROM runs WHERE id = ?", (run_id,))[0]
        total_samples, procs_max = box.query(
            "SELECT COUNT(*), MAX(num_procs) FROM resource_samples WHERE run_id = ?", (run_id,)
        )[0]
    finally:
        if supervisor is not None and supervisor.is_running():
            box.wb("run", "stop", str(run_id), check=False)
            psutil.wait_procs([supervisor], timeout=15)

    wall = t1 - t0
    used = cpu1 - cpu0
    window_samples = samples1 - samples0
    result = {
        "sample_interval_s": interval,
        "run_id": run_id,
        "status": status,
        "window_s": round(wall, 3),
        "cpu_s": round(used, 3),
        "cpu_percent_of_one_core": round(100 * used / wall, 3),
        "startup_cpu_s": round(cpu0, 3),  # from process start to the window's start
        "samples_in_window": window_samples,
        "cpu_ms_per_sample": round(1000 * used / window_samples, 2) if window_samples else None,
        "samples_total": total_samples,
        "procs_in_tree_max": procs_max,
        "supervisor_rss_bytes": rss,
        "supervisor_threads": threads,
    }
    log(
        f"  interval {interval:g} s: {result['cpu_percent_of_one_core']:.2f}% of one core"
        f" ({used * 1000:.0f} ms CPU in {wall:.1f} s, {window_samples} samples)"
    )
    return result


def report(r: dict) -> str:
    lines = [
        f"supervisor CPU (trainer sleeps {r['seconds']:g} s with 1 sleeping child;"
        f" window t={WINDOW_START:g}s..{r['seconds'] - WINDOW_END_BEFORE:g}s)",
        f"{'interval':>9} {'CPU % of 1 core':>16} {'ms CPU/sample':>14}"
        f" {'samples (window/total)':>23} {'start-up CPU':>13} {'RSS':>8}",
    ]
    for m in r["measurements"]:
        per = f"{m['cpu_ms_per_sample']:.2f}" if m["cpu_ms_per_sample"] is not None else "-"
        lines.append(
            f"{m['sample_interval_s']:>8g}s {m['cpu_percent_of_one_core']:>15.2f}% {per:>14}"
            f" {str(m['samples_in_window']) + ' / ' + str(m['samples_total']):>23}"
            f" {m['startup_cpu_s'] * 1000:>10.0f} ms {m['supervisor_rss_bytes'] / 2**20:>5.0f} MiB"
        )
    verdict = "target met" if r["target_met"] else "target missed"
    if r["target_met"] is None:
        verdict = "target not measured (1 s interval not in --intervals)"
    lines += ["", f"target: <= {TARGET_PERCENT:g}% of one core at sample_interval 1 s -> {verdict}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="how long the trainer sleeps (default 30; at least 8)",
    )
    parser.add_argument(
        "--intervals",
        default="1.0,0.2",
        help="comma-separated sample_interval values (default 1.0,0.2)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = parser.parse_args(argv)
    if args.seconds < 8:
        parser.error("--seconds must be at least 8 (the window skips the first 3 s and last 2 s)")
    intervals = [float(v) for v in args.intervals.split(",") if v.strip()]
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    measurements = []
    with sandbox(TRAIN_PY) as box:
        for interval in intervals:
            measurements.append(measure_one(box, interval, args.seconds, log))
    at_1hz = [m for m in measurements if m["sample_interval_s"] == 1.0]
    result = {
        "benchmark": "supervisor_cpu",
        "target": f"supervisor CPU at sample_interval 1 s <= {TARGET_PERCENT}% of one core",
        "target_percent": TARGET_PERCENT,
        "seconds": args.seconds,
        "measurements": measurements,
        "target_met": (
            all(m["cpu_percent_of_one_core"] <= TARGET_PERCENT for m in at_1hz) if at_1hz else None
        ),
        "machine": machine_info(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        log(report(result).splitlines()[-1])
    else:
        print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
