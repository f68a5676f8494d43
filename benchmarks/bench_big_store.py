"""Reads on a big store: 10,000 runs and 10 million metric points.

Targets:
  `workbench run list --json` (all runs, as a subprocess)        <= 0.3 s  (median of 5)
  `series(conn, run, "loss", max_points=1000)` on a 1M-point series <= 50 ms (median of 20)

Builds a store quickly with direct SQL: the runs (status succeeded, 3 params
each) with one `executemany`, and the points through
`workbench.store.metrics.append_points` inside `store.write()` transactions, so
the series summaries and chunks of points are exactly what the tracking API
would have written. Run 1 gets a 1,000,000-point series "loss" (appended in
50,000-point transactions, as the tracking API flushes); every other run gets
the rest of the points spread over the keys "loss", "acc" and "lr" (about 900
points per run at the defaults). Progress goes to stderr; building takes a
minute or two at the default size.

Then it measures (each after one untimed warm-up):
  - `workbench run list --json` as a subprocess: median of 5 (output checked:
    one JSON list of every run); `workbench --version` as the CLI's start-up
    floor, for reference;
  - in process, `workbench.runs.queries.list_runs(store)` (median of 5) and its
    parts: `latest_values` for all runs, and `json.dumps(..., indent=2)` of the
    result as the CLI prints it;
  - `series(conn, 1, "loss", max_points=1000)` on the 1M-point series: median of 20;
  - `latest_values(conn, [run])` for the big run and for a small one: median of 20;
  - the store's size on disk (`workbench.db` after a WAL checkpoint, plus -wal/-shm).

`--runs` and `--points` scale it down (e.g. `--runs 1000 --points 1000000`).

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_big_store.py [--runs 10000] [--points 10000000]
        [--big-series 1000000] [--json]
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

from _common import dir_size, machine_info, sandbox, summary  # noqa: E402

TARGET_LIST_S = 0.3
TARGET_SERIES_S = 0.050
FLUSH_POINTS = 50_000  # points per transaction for the big series (the tracking API's flush size)
RUNS_PER_TXN = 200  # small runs per transaction while building
SMALL_KEYS = ("loss", "acc", "lr")


def timed_repeat(fn, repeat: int, warmup: int = 1) -> tuple[list[float], object]:
    value = None
    for _ in range(warmup):
        value = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return times, value


def build(store, project_id: int, runs: int, points: int, big: int, log) -> dict:
    from workbench.store.metrics import append_points

    t_start = time.perf_counter()
    base = time.time() - runs * 60.0
    run_rows = [
        (
            project_id,
            "succeeded",
            "script",
            0,
            base + i * 60,
            base + i * 60 + 1,
            base + i * 60 + 50,
            0,
        )
        for i in range(runs)
    ]
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO runs (project_id, status, trainer, priority, created_at, started_at,"
            " ended_at, exit_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            run_rows,
        )
        run_ids = [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY id")]
        conn.executemany(
            "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
            [
                (rid, key, json.dumps(value))
                for i, rid in enumerate(run_ids)
                for key, value in (
                    ("lr", 0.001 * (1 + i % 10)),
                    ("depth", 3 + i % 7),
                    ("optimizer", "adam"),
                )
            ],
        )
    log(f"  {runs:,} runs inserted ({time.perf_counter() - t_start:.1f} s)")

    big = min(big, points)
    big_run = run_ids[0]
    t_big = time.perf_counter()
    ts0 = base + 1
    for start in range(0, big, FLUSH_POINTS):
        chunk = [
            (i, ts0 + i * 0.001, 1.0 / (1.0 + i * 1e-4) + (i % 97) * 1e-4)
            for i in range(start, min(big, start + FLUSH_POINTS))
        ]
        with store.write() as conn:
            append_points(conn, big_run, {"loss": chunk})
    log(f"  run {big_run}: 'loss' with {big:,} points ({time.perf_counter() - t_big:.1f} s)")

    others = run_ids[1:]
    per_run = (points - big) // len(others) if others else 0
    extra = (points - big) - per_run * len(others) if others else 0
    written = big
    t_small = time.perf_counter()
    for first in range(0, len(others), RUNS_PER_TXN):
        with store.write() as conn:
            for j, rid in enumerate(others[first : first + RUNS_PER_TXN], start=first):
                n = per_run + (1 if j < extra else 0)
                ts = base + (j + 1) * 60 + 1
                series = {}
                for k, key in enumerate(SMALL_KEYS):
                    count = n // len(SMALL_KEYS) + (1 if k < n % len(SMALL_KEYS) else 0)
                    series[key] = [
                        (s, ts + s * 0.01, 1.0 / (1.0 + s * 0.01) + k) for s in range(count)
                    ]
                append_points(conn, rid, series)
                written += n
        done = min(len(others), first + RUNS_PER_TXN)
        if done % 2000 == 0 or done == len(others):
            elapsed = time.perf_counter() - t_small
            log(
                f"  {done:,}/{len(others):,} small runs, {written:,} points"
                f" ({elapsed:.1f} s, {(written - big) / max(elapsed, 1e-9) / 1000:.0f}k points/s)"
            )
    with store.write() as conn:
        conn.execute("ANALYZE")
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {
        "run_ids": run_ids,
        "big_run": big_run,
        "small_run": others[-1] if others else big_run,
        "points": written,
        "build_s": time.perf_counter() - t_start,
        "per_small_run": per_run,
    }


def measure(runs: int, points: int, big: int, log) -> dict:
    from workbench.runs.queries import list_runs
    from workbench.store import open_store
    from workbench.store.metrics import latest_values, series

    with sandbox("", name="bench") as box:
        os.environ["WORKBENCH_HOME"] = str(box.home)  # this process, too, uses only the sandbox
        store = open_store(box.db, migrate=False)
        try:
            project_id = store.scalar("SELECT id FROM projects WHERE name = ?", (box.project,))
            log(f"building a store with {runs:,} runs and {points:,} points")
            built = build(store, project_id, runs, points, big, log)
            stored = store.scalar("SELECT COALESCE(SUM(count), 0) FROM metric_series")
            size = dir_size(box.home)
            db_files = {p.name: p.stat().st_size for p in box.home.glob("workbench.db*")}
            log(
                f"built in {built['build_s']:.1f} s: {stored:,} points,"
                f" {size / 2**20:.0f} MiB on disk"
            )

            cmd = [*box.cli, "run", "list", "--all", "--json"]  # every run, not the newest 50
            log("timing `workbench run list --json` (1 warm-up + 5)")

            def cli_list():
                proc = subprocess.run(cmd, env=box.env, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit(f"run list exited {proc.returncode}: {proc.stderr}")
                return proc.stdout

            cli_s, out = timed_repeat(cli_list, 5)
            listed = json.loads(out)
            version_s, _ = timed_repeat(
                lambda: subprocess.run(
                    [*box.cli, "--version"], env=box.env, capture_output=True, check=True
                ),
                5,
            )

            log("timing list_runs in process (1 warm-up + 5)")
            inproc_s, rows = timed_repeat(lambda: list_runs(store), 5)
            latest_all_s, _ = timed_repeat(lambda: latest_values(store.conn, built["run_ids"]), 5)
            dumps_s, text = timed_repeat(lambda: json.dumps(rows, indent=2, default=str), 5)
            dumps_compact_s, _ = timed_repeat(lambda: json.dumps(rows, default=str), 5)

            log("timing series / latest_values (1 warm-up + 20 each)")
            series_s, plotted = timed_repeat(
                lambda: series(store.conn, built["big_run"], "loss", max_points=1000), 20
            )
            latest_big_s, latest_big = timed_repeat(
                lambda: latest_values(store.conn, [built["big_run"]]), 20
            )
            latest_small_s, latest_small = timed_repeat(
                lambda: latest_values(store.conn, [built["small_run"]]), 20
            )
            small_series_s, _ = timed_repeat(
                lambda: series(store.conn, built["small_run"], "loss", max_points=1000), 20
            )
        finally:
            store.close()
        cli = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(box.cli))
    med = lambda values: summary(values)["median"]  # noqa: E731
    result = {
        "benchmark": "big_store_reads",
        "target": f"`run list --json` <= {TARGET_LIST_S} s (median of 5); series of a"
        f" {big:,}-point key, max_points=1000,"
        f" <= {TARGET_SERIES_S * 1000:.0f} ms (median of 20)",
        "runs": runs,
        "points": built["points"],
        "points_stored": stored,
        "big_series_points": min(big, points),
        "points_per_small_run": built["per_small_run"],
        "build_s": built["build_s"],
        "store_bytes": size,
        "db_files_bytes": db_files,
        "cli": cli,
        "run_list_cli_s": summary(cli_s),
        "run_list_cli_runs": len(listed),
        "run_list_cli_output_bytes": len(out.encode()),
        "cli_version_s": summary(version_s),
        "list_runs_inprocess_s": summary(inproc_s),
        "latest_values_all_runs_s": summary(latest_all_s),
        "json_dumps_indent2_s": summary(dumps_s),
        "json_dumps_compact_s": summary(dumps_compact_s),
        "series_big_s": summary(series_s),
        "series_big_points_returned": len(plotted["points"]),
        "series_big_bucket_size": plotted["bucket_size"],
        "series_small_s": summary(small_series_s),
        "latest_values_big_run_s": summary(latest_big_s),
        "latest_values_small_run_s": summary(latest_small_s),
        "latest_values_big_run": latest_big,
        "latest_values_small_run": latest_small,
        "machine": machine_info(),
    }
    result["run_list_target_met"] = med(cli_s) <= TARGET_LIST_S and len(listed) == runs
    result["series_target_met"] = med(series_s) <= TARGET_SERIES_S
    result["target_met"] = result["run_list_target_met"] and result["series_target_met"]
    return result


def report(r: dict) -> str:
    ms = lambda s: f"{s * 1000:8.2f} ms"  # noqa: E731
    lines = [
        f"big store: {r['runs']:,} runs, {r['points_stored']:,} points"
        f" (run 1: {r['big_series_points']:,}-point 'loss';"
        f" others ~{r['points_per_small_run']:,} each)",
        f"built in {r['build_s']:.1f} s; on disk {r['store_bytes'] / 2**20:.0f} MiB"
        f" ({r['store_bytes'] / max(r['points_stored'], 1):.1f} bytes/point)",
        "",
        f"{'':62} {'median':>11} {'p90':>11} {'max':>11}",
    ]

    def row(label: str, s: dict) -> None:
        lines.append(f"{label:62} {ms(s['median'])} {ms(s['p90'])} {ms(s['max'])}")

    row(
        f"{r['cli']} run list --json ({r['run_list_cli_runs']:,} runs, "
        f"{r['run_list_cli_output_bytes'] / 2**20:.1f} MiB)",
        r["run_list_cli_s"],
    )
    row(f"  {r['cli']} --version (CLI start-up)", r["cli_version_s"])
    row("  list_runs(store) in process", r["list_runs_inprocess_s"])
    row("    of which latest_values(all runs)", r["latest_values_all_runs_s"])
    row("  json.dumps(indent=2) of the list (as printed)", r["json_dumps_indent2_s"])
    row("  json.dumps() compact, for comparison", r["json_dumps_compact_s"])
    row(
        f"series(big run, 'loss', 1000) -> {r['series_big_points_returned']} points"
        f" (buckets of {r['series_big_bucket_size']})",
        r["series_big_s"],
    )
    row("series(small run, 'loss', 1000)", r["series_small_s"])
    row("latest_values([big run])", r["latest_values_big_run_s"])
    row("latest_values([small run])", r["latest_values_small_run_s"])
    lines += [
        "",
        f"target: run list --json <= {TARGET_LIST_S * 1000:.0f} ms:"
        f" {r['run_list_cli_s']['median'] * 1000:.0f} ms -> "
        + ("met" if r["run_list_target_met"] else "missed"),
        f"target: series on the {r['big_series_points']:,}-point key"
        f" <= {TARGET_SERIES_S * 1000:.0f} ms: {r['series_big_s']['median'] * 1000:.1f} ms -> "
        + ("met" if r["series_target_met"] else "missed"),
        "target met" if r["target_met"] else "target missed",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=10_000, help="runs in the store (default 10,000)"
    )
    parser.add_argument(
        "--points", type=int, default=10_000_000, help="metric points in all (default 10,000,000)"
    )
    parser.add_argument(
        "--big-series",
        type=int,
        default=1_000_000,
        help="points of run 1's 'loss' series (default 1,000,000)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.points < 1 or args.big_series < 1:
        parser.error("--runs, --points and --big-series must be at least 1")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    result = measure(args.runs, args.points, args.big_series, log)
    if args.json:
        print(json.dumps(result, indent=2))
        log(report(result).splitlines()[-1])
    else:
        print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
