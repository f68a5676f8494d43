"""The data-folder watcher: how soon a complete file is submitted, and its idle CPU.

(a) Latency, in process: a `Watcher` on a temporary folder with a recording
    `submit` and --debounce 0, so the figure is the watcher's own overhead on
    top of the wait its rule asks for. Three ways a file becomes complete:
    moved in (os.replace from a sibling folder; no wait), closed after writing
    (waits --quiet from the close), and written then left open where open
    writers cannot be seen (waits --quiet).
    Latency = submit time - (completion time + that wait).
    Target: median and p90 <= 0.5 s for moved-in and quiet-period files.

(b) Idle CPU: a real `workbench watch` process over 10 registered projects,
    each with its own watch folder, nothing happening. Its CPU time (psutil,
    user + system, all threads) over --seconds after a warm-up, divided by the
    wall time: percent of one core, with --rescan 10 (three times the default
    rate, so rescans of every project fall in the window). Target: <= 1%.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_watcher.py [--repeats 20] [--quiet 1.0] [--seconds 20]
        [--with-polling] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cli_command, emit, log, machine_info, summary  # noqa: E402

from workbench.automation.watcher import Watcher  # noqa: E402
from workbench.automation.writers import probe  # noqa: E402

LATENCY_TARGET_S = 0.5
CPU_TARGET_PERCENT = 1.0
WARM_UP_S = 3.0
PROJECTS = 10

PROJECT_TOML = """\
[project]
name = "{name}"
[data]
train = "data/train.csv"
target = "y"
watch = ["incoming"]
[train]
trainer = "script"
script = "train.py"
"""


class Recorder:
    """A `submit` that notes when it was called."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.at = 0.0

    def submit(self, project: str, files: list[Path], trigger: str) -> int:
        self.at = time.monotonic()
        self.done.set()
        return 1


def one_latency(root: Path, case: str, quiet: float, index: int) -> float:
    watched, staging = root / f"in-{case}-{index}", root / f"stage-{case}-{index}"
    staging.mkdir()
    recorder = Recorder()
    # "quiet": a file left open completes only where open writers cannot be seen.
    blind = probe(str(root / "no-proc")) if case == "quiet" else None
    watcher = Watcher(
        [("bench", [watched])], recorder.submit, quiet=quiet, debounce=0.0, writer_check=blind
    )
    watcher.start()
    try:
        time.sleep(0.1)  # let the watch settle
        body = "x,y\n" + "1,0\n" * 100
        handle = None
        if case == "moved":
            (staging / "b.csv").write_text(body)
            complete = time.monotonic()
            os.replace(staging / "b.csv", watched / "b.csv")
            wait = 0.0
        elif case == "closed":
            with open(watched / "b.csv", "w") as out:
                out.write(body)
            complete, wait = time.monotonic(), quiet  # the quiet period runs from the close
        else:  # quiet: written, flushed, left open
            handle = open(watched / "b.csv", "w")  # noqa: SIM115 - kept open on purpose
            handle.write(body)
            handle.flush()
            complete, wait = time.monotonic(), quiet
        if not recorder.done.wait(quiet + 10):
            raise SystemExit(f"{case}: no submission within {quiet + 10:g} s")
        if handle is not None:
            handle.close()
        return recorder.at - complete - wait
    finally:
        watcher.stop()


def measure_latency(repeats: int, quiet: float) -> dict:
    root = Path(tempfile.mkdtemp(prefix="wb-bench-watch-"))
    try:
        out = {}
        for case in ("moved", "closed", "quiet"):
            values = [one_latency(root, case, quiet, i) for i in range(repeats)]
            out[case] = {k: round(v, 4) for k, v in summary(values).items()}
            log(f"  {case}: median {out[case]['median'] * 1000:.0f} ms over the rule's wait")
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure_idle_cpu(seconds: float, rescan: float, poll: bool) -> dict:
    root = Path(tempfile.mkdtemp(prefix="wb-bench-watch-"))
    env = dict(os.environ, WORKBENCH_HOME=str(root / "home"), NO_COLOR="1")
    cli = cli_command()
    proc = None
    try:
        for i in range(PROJECTS):
            folder = root / f"p{i}"
            (folder / "data").mkdir(parents=True)
            (folder / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
            (folder / "workbench.toml").write_text(PROJECT_TOML.format(name=f"p{i}"))
            (folder / "train.py").write_text("print('trained')\n")
            subprocess.run(
                [*cli, "project", "add", str(folder)], env=env, check=True, capture_output=True
            )
        proc = subprocess.Popen(
            [*cli, "watch", "start", "--rescan", str(rescan), *(["--poll"] if poll else [])],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        state_file = root / "home" / "watcher" / "state.json"
        deadline = time.monotonic() + 30
        state = None
        while time.monotonic() < deadline:
            if state_file.exists():
                state = json.loads(state_file.read_text())
                if state.get("folders"):
                    break
            time.sleep(0.1)
        if not state or not state.get("folders"):
            raise SystemExit("the watcher did not start within 30 s")
        time.sleep(WARM_UP_S)
        watcher = psutil.Process(proc.pid)
        before, t0 = watcher.cpu_times(), time.perf_counter()
        time.sleep(seconds)
        after, t1 = watcher.cpu_times(), time.perf_counter()
        used = (after.user + after.system) - (before.user + before.system)
        wall = t1 - t0
        result = {
            "projects": PROJECTS,
            "rescan_s": rescan,
            "folders": len(state["folders"]),
            "modes": sorted({f["mode"] for f in state["folders"]}),
            "window_s": round(wall, 2),
            "cpu_s": round(used, 4),
            "cpu_percent_of_one_core": round(100 * used / wall, 3),
            "threads": watcher.num_threads(),
            "rss_bytes": watcher.memory_info().rss,
        }
        log(
            f"  idle ({result['modes'][0]}): {result['cpu_percent_of_one_core']:.2f}% of one core"
            f" over {wall:.0f} s"
        )
        return result
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def report(r: dict) -> str:
    lines = [
        f"watcher latency over the rule's wait (--debounce 0, --quiet {r['quiet']:g} s,"
        f" {r['repeats']} files each)",
        f"{'completed by':<14} {'wait':>6} {'median':>8} {'p90':>8} {'max':>8}",
    ]
    waits = {"moved": 0.0, "closed": r["quiet"], "quiet": r["quiet"]}
    for case, stats in r["latency"].items():
        lines.append(
            f"{case:<14} {waits[case]:>5g}s {stats['median'] * 1000:>6.0f}ms"
            f" {stats['p90'] * 1000:>6.0f}ms {stats['max'] * 1000:>6.0f}ms"
        )
    lines.append("")
    for cpu in r["idle_cpu"]:
        lines.append(
            f"idle `workbench watch start --rescan {cpu['rescan_s']:g}`, {cpu['projects']} projects"
            f" ({', '.join(cpu['modes'])}):"
            f" {cpu['cpu_percent_of_one_core']:.2f}% of one core ({cpu['cpu_s'] * 1000:.0f} ms"
            f" CPU in {cpu['window_s']:.0f} s), {cpu['threads']} threads,"
            f" {cpu['rss_bytes'] / 2**20:.0f} MiB RSS"
        )
    lines += [
        "",
        f"targets: latency <= {LATENCY_TARGET_S:g} s (moved, quiet), idle CPU (inotify) <="
        f" {CPU_TARGET_PERCENT:g}% -> {'target met' if r['target_met'] else 'target missed'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="files per case (default 20)")
    parser.add_argument("--quiet", type=float, default=1.0, help="--quiet seconds (default 1.0)")
    parser.add_argument("--seconds", type=float, default=20.0, help="idle CPU window (default 20)")
    parser.add_argument(
        "--rescan",
        type=float,
        default=10.0,
        help="the watcher's --rescan (default 10: three times the default rate, so rescans"
        " fall in the window)",
    )
    parser.add_argument(
        "--with-polling",
        action="store_true",
        help="also measure idle CPU with `watch --poll` (for reference; no target)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = parser.parse_args(argv)

    log("latency:")
    latency = measure_latency(args.repeats, args.quiet)
    log("idle CPU:")
    idle = [measure_idle_cpu(args.seconds, args.rescan, poll=False)]
    if args.with_polling:
        idle.append(measure_idle_cpu(args.seconds, args.rescan, poll=True))
    fast = all(
        latency[case][stat] <= LATENCY_TARGET_S
        for case in ("moved", "quiet")
        for stat in ("median", "p90")
    )
    met = fast and idle[0]["cpu_percent_of_one_core"] <= CPU_TARGET_PERCENT
    result = {
        "benchmark": "watcher",
        "target": f"latency <= {LATENCY_TARGET_S} s; idle CPU <= {CPU_TARGET_PERCENT}% of a core",
        "quiet": args.quiet,
        "repeats": args.repeats,
        "latency": latency,
        "idle_cpu": idle,
        "target_met": met,
        "machine": machine_info(),
    }
    emit(result, report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
