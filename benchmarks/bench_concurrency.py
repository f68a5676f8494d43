"""Concurrent writers and a live reader on one store: nothing lost, nothing locked.

Target: 8 processes each logging 50,000 points through the tracking API, each
attached to its own run, while another process polls the store every 50 ms:
every point is found afterwards (8 x 50,000), and no "database is locked" error
shows up anywhere (the writers' stdout/stderr, the poller).

The script creates 8 runs with `workbench.runs.launch.create_run` (queued, no
supervisor) and starts 8 child processes with the environment a supervisor
gives a trainer (WORKBENCH_RUN_ID, WORKBENCH_PROJECT_DIR, WORKBENCH_PARAMS='{}',
WORKBENCH_HOME). Each child does `import workbench as wb`, attaches to its run
(`wb.active_run()`), signals that it is ready, waits for the common start
signal, calls `wb.log_metric("loss", v, step=i)` N times and exits: the last
points are written by the tracking API's exit hook, as in a real trainer.
Meanwhile a poller process calls `workbench.store.metrics.latest_values` for
the 8 runs and `series(conn, run, "loss", max_points=1000)` for each of them,
then sleeps 50 ms, until the children have exited.

Reported: total points logged, points found afterwards (metric_series counts,
and the points the `metrics` view decodes, with idx contiguous per series), "database is locked"
errors seen anywhere, other errors or write retries printed by the children,
wall time from the start signal until the last child exited, and the poller's
latency per poll (max, p90, median; one poll = latest_values + 8 series calls).
The whole thing is repeated (`--repeat`, default 5) on a fresh store each time;
the target holds only if every try meets it. `--flush-every K` makes each
writer also call `wb.flush()` every K points: many more, smaller write
transactions competing for the lock (a harsher variant, reported separately).

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_concurrency.py [--procs 8] [--points 50000] [--poll-ms 50]
        [--flush-every 0] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULT_MARK, machine_info, sandbox, summary  # noqa: E402

LOCKED = "database is locked"
WRITE_RETRY = "could not write tracking data yet"  # the flush thread's message on an error

# argv: points, ready file, go file, flush every K points (0: never)
CHILD_SCRIPT = r"""
import json, os, sys, time
n, ready, go, every = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
import workbench as wb
wb.active_run()  # attach (open the store, start the flush thread) before the clock starts
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
t0 = time.time()
log = wb.log_metric
if every:
    for i in range(n):
        log("loss", 1.0 / (i + 1), step=i)
        if (i + 1) % every == 0:
            wb.flush()
else:
    for i in range(n):
        log("loss", 1.0 / (i + 1), step=i)
print(MARK + json.dumps({"calls_start": t0, "calls_end": time.time()}), flush=True)
# no final flush: the exit hook writes what is still buffered, as in a real trainer
""".replace("MARK", repr(RESULT_MARK))

# argv: JSON list of run ids, poll seconds, stop file
POLLER_SCRIPT = r"""
import json, os, sqlite3, sys, time, traceback
run_ids, pause, stop = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
from workbench.store import open_store
from workbench.store.metrics import latest_values, series
store = open_store(migrate=False)
polls, cpu, latest_s, series_s, errors, seen = [], [], [], [], [], 0
while True:
    stopping = os.path.exists(stop)  # one last poll after the stop signal
    c0 = time.process_time()
    t0 = time.perf_counter()
    try:
        latest_values(store.conn, run_ids)
        t1 = time.perf_counter()
        latest_s.append(t1 - t0)
        total = 0
        for rid in run_ids:
            s0 = time.perf_counter()
            total += series(store.conn, rid, "loss", max_points=1000)["count"]
            series_s.append(time.perf_counter() - s0)
        seen = max(seen, total)
        polls.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    except Exception as exc:
        errors.append(f"{exc.__class__.__name__}: {exc}")
    if stopping:
        break
    time.sleep(pause)
store.close()
print(MARK + json.dumps({"polls": polls, "cpu": cpu, "latest_s": latest_s, "series_s": series_s,
                         "errors": errors, "max_points_seen": seen}), flush=True)
""".replace("MARK", repr(RESULT_MARK))


def ms(values: list[float]) -> dict | None:
    """A summary of durations in seconds, as milliseconds."""
    if not values:
        return None
    return {k: (v * 1000 if k != "n" else v) for k, v in summary(values).items()}


def wait_for_files(paths: list[Path], procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise SystemExit(f"a writer exited ({proc.returncode}) before it was ready:\n{err}")
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the writers to attach to their runs")
        time.sleep(0.01)


def parse_result(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    return None


def measure_once(procs: int, points: int, poll_s: float, flush_every: int, log) -> dict:
    from workbench.runs.launch import create_run
    from workbench.store import open_store

    with sandbox("", name="bench") as box:
        os.environ["WORKBENCH_HOME"] = str(box.home)  # this process, too, uses only the sandbox
        store = open_store(box.db, migrate=False)
        try:
            run_ids = [create_run(store, box.project, {}) for _ in range(procs)]
        finally:
            store.close()
        signals = box.home / "signals"
        signals.mkdir()
        go, stop = signals / "go", signals / "stop"
        ready = [signals / f"ready-{i}" for i in range(procs)]
        children: list[subprocess.Popen] = []
        log(f"starting {procs} writers on runs {run_ids[0]}..{run_ids[-1]}, {points:,} points each")
        for run_id, ready_file in zip(run_ids, ready, strict=True):
            env = dict(
                box.env,
                WORKBENCH_RUN_ID=str(run_id),
                WORKBENCH_PROJECT_DIR=str(box.project_dir),
                WORKBENCH_PARAMS="{}",
            )
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        CHILD_SCRIPT,
                        str(points),
                        str(ready_file),
                        str(go),
                        str(flush_every),
                    ],
                    env=env,
                    cwd=box.project_dir,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        poller = subprocess.Popen(
            [sys.executable, "-c", POLLER_SCRIPT, json.dumps(run_ids), str(poll_s), str(stop)],
            env=box.env,
            cwd=box.project_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for_files(ready, children, timeout=60)
            log("all writers attached; go")
            t0 = time.time()
            go.touch()
            outputs = [child.communicate(timeout=300) for child in children]
            wall = time.time() - t0
            stop.touch()
            poll_out, poll_err = poller.communicate(timeout=60)
        finally:
            for proc in (*children, poller):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        codes = [child.returncode for child in children]
        results = [parse_result(out) for out, _ in outputs]
        polled = parse_result(poll_out) or {
            "polls": [],
            "cpu": [],
            "latest_s": [],
            "series_s": [],
            "errors": [f"poller gave no result: {poll_err[-500:]}"],
            "max_points_seen": 0,
        }
        texts = [out + err for out, err in outputs]
        locked = sum(t.count(LOCKED) for t in texts) + sum(LOCKED in e for e in polled["errors"])
        retries = sum(t.count(WRITE_RETRY) for t in texts)
        child_errors = [
            err.strip()[-300:]
            for (_, err), code in zip(outputs, codes, strict=True)
            if code != 0 or "Traceback" in err
        ]
        marks = ",".join("?" * len(run_ids))
        stored = box.query(
            f"SELECT COALESCE(SUM(count), 0) FROM metric_series WHERE run_id IN ({marks})",
            tuple(run_ids),
        )[0][0]
        # Each series' points as the `metrics` view decodes them (chunks and
        # tail), one series a query so that the view reads only that series.
        per_series = [
            (run_id, count)
            + tuple(
                box.query(
                    "SELECT COUNT(idx), MIN(idx), MAX(idx) FROM metrics WHERE series_id = ?",
                    (series_id,),
                )[0]
            )
            for series_id, run_id, count in box.query(
                f"SELECT id, run_id, count FROM metric_series WHERE run_id IN ({marks})",
                tuple(run_ids),
            )
        ]
        rows = sum(r[2] for r in per_series)
        contiguous = all(r[1] == r[2] and r[3] == 0 and r[4] == r[1] - 1 for r in per_series)
        calls_s = [r["calls_end"] - r["calls_start"] for r in results if r]
    total = procs * points
    found = min(stored, rows)
    result = {
        "points_logged": total,
        "points_found": found,
        "points_found_series_counts": stored,
        "points_found_rows": rows,
        "idx_contiguous": contiguous,
        "points_lost": total - found,
        "locked_errors": locked,
        "write_retries": retries,
        "writer_exit_codes": codes,
        "writer_errors": child_errors,
        "poller_errors": polled["errors"],
        "wall_s": wall,
        "points_per_s": total / wall if wall else None,
        "writer_calls_s": summary(calls_s) if calls_s else None,
        "polls": len(polled["polls"]),
        "poll_ms": ms(polled["polls"]),
        "latest_values_ms": ms(polled["latest_s"]),
        "series_ms": ms(polled["series_s"]),
        "poller_max_points_seen": polled["max_points_seen"],
        "poll_all_s": polled["polls"],
        "poll_cpu_all_s": polled["cpu"],
        # the poller's CPU time / wall time over its polls: well under 1 means it
        # was mostly waiting for a core (or a lock), not working
        "poll_cpu_share": sum(polled["cpu"]) / sum(polled["polls"]) if polled["polls"] else None,
    }
    result["target_met"] = (
        result["points_lost"] == 0
        and locked == 0
        and contiguous
        and all(c == 0 for c in codes)
        and not polled["errors"]
    )
    log(
        f"  found {found:,} of {total:,}, {locked} locked, {retries} retries, wall {wall:.2f} s,"
        f" poll max {max(polled['polls'] or [0]) * 1000:.1f} ms over {len(polled['polls'])} polls"
    )
    return result


def measure(procs: int, points: int, poll_s: float, flush_every: int, repeat: int, log) -> dict:
    tries = []
    for i in range(repeat):
        log(f"try {i + 1}/{repeat}")
        tries.append(measure_once(procs, points, poll_s, flush_every, log))
    polls = [p for t in tries for p in t.pop("poll_all_s")]
    cpu = [c for t in tries for c in t.pop("poll_cpu_all_s")]
    return {
        "benchmark": "concurrent_writers",
        "target": f"{procs} writers x {points:,} points: 0 points lost, 0 '{LOCKED}' errors",
        "procs": procs,
        "points_per_proc": points,
        "poll_interval_ms": poll_s * 1000,
        "flush_every": flush_every,
        "repeat": repeat,
        "tries": tries,
        "points_lost": sum(t["points_lost"] for t in tries),
        "locked_errors": sum(t["locked_errors"] for t in tries),
        "wall_s": summary([t["wall_s"] for t in tries]),
        "poll_ms_all_tries": ms(polls),
        "poll_cpu_share": sum(cpu) / sum(polls) if polls else None,
        "target_met": all(t["target_met"] for t in tries),
        "machine": machine_info(),
    }


def report(r: dict) -> str:
    flush = (
        f", wb.flush() every {r['flush_every']:,} points"
        if r["flush_every"]
        else ", no explicit flush (background thread + exit hook)"
    )
    lines = [
        f"concurrent writers: {r['procs']} processes x {r['points_per_proc']:,} points,"
        f" poller every {r['poll_interval_ms']:.0f} ms{flush}",
        f"{'try':>3} {'logged':>9} {'found':>9} {'lost':>5} {'locked':>6} {'retries':>7}"
        f" {'wall':>7} {'points/s':>9} {'polls':>5} {'poll max':>9} {'poll p90':>9}"
        f" {'latest max':>10} {'series max':>10}",
    ]
    for i, t in enumerate(r["tries"], 1):
        p = t["poll_ms"] or {"max": float("nan"), "p90": float("nan")}
        lv = (t["latest_values_ms"] or {"max": float("nan")})["max"]
        se = (t["series_ms"] or {"max": float("nan")})["max"]
        lines.append(
            f"{i:>3} {t['points_logged']:>9,} {t['points_found']:>9,} {t['points_lost']:>5,}"
            f" {t['locked_errors']:>6} {t['write_retries']:>7} {t['wall_s']:>5.2f} s"
            f" {t['points_per_s'] / 1000:>7.0f}k {t['polls']:>5}"
            f" {p['max']:>6.1f} ms {p['p90']:>6.1f} ms"
            f" {lv:>7.1f} ms {se:>7.1f} ms"
            + ("" if t["idx_contiguous"] else "  idx NOT contiguous")
        )
        for err in t["writer_errors"] + t["poller_errors"]:
            lines.append(f"    error: {err}")
    a = r["poll_ms_all_tries"]
    if a:
        lines.append(
            "poll latency over all tries"
            f" (one poll = latest_values + {r['procs']} series):"
            f" max {a['max']:.1f} ms, p90 {a['p90']:.1f} ms, median {a['median']:.1f} ms;"
            f" the poller was on a CPU {r['poll_cpu_share'] * 100:.0f} % of that time"
        )
    verdict = "target met" if r["target_met"] else "target missed"
    lines += ["", f"target: {r['target']} -> {verdict}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=8, help="writer processes (default 8)")
    parser.add_argument(
        "--points", type=int, default=50_000, help="points per writer (default 50,000)"
    )
    parser.add_argument("--poll-ms", type=float, default=50, help="poller pause in ms (default 50)")
    parser.add_argument(
        "--flush-every",
        type=int,
        default=0,
        metavar="K",
        help="writers also call wb.flush() every K points (default 0: never)",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="tries, each on a fresh store (default 5)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = parser.parse_args(argv)
    if args.procs < 1 or args.points < 1 or args.repeat < 1:
        parser.error("--procs and --points must be at least 1")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    result = measure(
        args.procs, args.points, args.poll_ms / 1000, max(0, args.flush_every), args.repeat, log
    )
    if args.json:
        print(json.dumps(result, indent=2))
        log(report(result).splitlines()[-1])
    else:
        print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
