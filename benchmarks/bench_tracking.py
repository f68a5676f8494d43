"""Metric logging throughput of the tracking API, side by side with peers.

Targets, end to end (from the first call until `wb.flush()` has returned, so
every point is written and committed):
  `wb.log_metric` in a loop                   >= 200,000 points/s
  `wb.log_metrics` with 10 keys per call      >= 300,000 points/s

Every part runs in a fresh interpreter (a small embedded script) against its
own temporary store; imports, store creation and run creation are outside the
timed window. Each part reports points/s end to end, the time until the last
call returned ("calls only"), and the points found in its store afterwards.

  workbench  log_metric           1 key per call, `with wb.start_run(...)`
  workbench  log_metrics          10 keys per call
  sqlite3    executemany          the floor: plain inserts of (run_id, key, step,
                                  ts, value) into one WAL table, 50,000 rows per
                                  transaction, rows built in the loop
  mlflow     log_metric           SQLite backend, one call per point
  mlflow     log_batch            MlflowClient().log_batch, 1,000 Metrics per call
  trackio    log                  local storage in a temp TRACKIO_DIR, 10 keys per
                                  call and 1 key per call, including finish()

Peers run in another interpreter (`--peer-python`, e.g. a separate virtualenv
with mlflow and trackio installed) so that this project's environment stays
clean; a peer whose interpreter or package is missing is skipped with a note.
Peers get telemetry and Hub access switched off (see `_common.OFFLINE_ENV`) and
are never given a remote URL.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_tracking.py [--points 1000000] [--repeat 3]
        [--peer-python PATH] [--mlflow-calls 2000] [--mlflow-batch-points 100000]
        [--trackio-points 1000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402  # noqa: E402
    RESULT_MARK,
    dir_size,
    emit,
    fmt_rate,
    log,
    machine_info,
    offline_env,
    rate,
    run_embedded,
    sandbox,
)

TARGETS = {"wb_log_metric": 200_000, "wb_log_metrics": 300_000}
KEYS_PER_CALL = 10
SQLITE_BATCH = 50_000  # rows per transaction: what workbench buffers before a flush
MLFLOW_BATCH = 1_000

# argv: mode ("log_metric" | "log_metrics"), points, project folder
WORKBENCH_SCRIPT = r"""
import json, sys, time
mode, n, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import workbench as wb
from workbench.store import open_store
keys = [f"m{k}" for k in range(KEYS)]
with wb.start_run(project=folder) as run:
    t0 = time.perf_counter()
    if mode == "log_metric":
        log = wb.log_metric
        for i in range(n):
            log("loss", i * 0.001, step=i)
    else:
        log = wb.log_metrics
        for i in range(n // len(keys)):
            v = i * 0.001
            log({k: v for k in keys}, step=i)
    calls = time.perf_counter() - t0
    wb.flush()
    total = time.perf_counter() - t0
    run_id = run.id
store = open_store(migrate=False)
stored = store.scalar("SELECT COALESCE(SUM(count), 0) FROM metric_series WHERE run_id = ?",
                      (run_id,))
rows = store.scalar("SELECT COUNT(*) FROM metrics m JOIN metric_series s ON s.id = m.series_id"
                    " WHERE s.run_id = ?", (run_id,))
store.close()
import importlib.metadata as md
print(MARK + json.dumps({"points": n, "calls_s": calls, "total_s": total,
      "stored": min(stored, rows), "version": md.version("workbench-mlops")}))
""".replace("KEYS", str(KEYS_PER_CALL)).replace("MARK", repr(RESULT_MARK))

# argv: points, db path
SQLITE_SCRIPT = r"""
import json, sqlite3, sys, time
n, path = int(sys.argv[1]), sys.argv[2]
conn = sqlite3.connect(path, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=NORMAL")
conn.execute("CREATE TABLE metrics (run_id INTEGER, key TEXT, step INTEGER, ts REAL, value REAL)")
t0 = time.perf_counter()
for start in range(0, n, BATCH):
    rows = [(1, "loss", i, time.time(), i * 0.001) for i in range(start, min(n, start + BATCH))]
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
total = time.perf_counter() - t0
stored = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
print(MARK + json.dumps({"points": n, "calls_s": total, "total_s": total, "stored": stored,
      "version": sqlite3.sqlite_version}))
""".replace("BATCH", str(SQLITE_BATCH)).replace("MARK", repr(RESULT_MARK))

# argv: JSON {"part", "points", "dir", "batch", "keys"}; prints a result or {"skipped": why}
PEER_SCRIPT = r"""
import json, os, sqlite3, sys, time
cfg = json.loads(sys.argv[1])
part, n, work = cfg["part"], cfg["points"], cfg["dir"]
def done(**kw):
    print(MARK + json.dumps(kw), flush=True)
    sys.exit(0)
if part.startswith("mlflow"):
    try:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.entities import Metric
    except Exception as exc:
        done(skipped="mlflow is not importable in this interpreter"
                     f" ({exc.__class__.__name__}: {exc})")
    db = os.path.join(work, "mlflow.db")
    mlflow.set_tracking_uri("sqlite:///" + db)
    mlflow.set_experiment("bench")  # creates and migrates the database: untimed
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        t0 = time.perf_counter()
        if part == "mlflow_log_metric":
            log = mlflow.log_metric
            for i in range(n):
                log("loss", i * 0.001, step=i)
        else:
            client, batch = MlflowClient(), cfg["batch"]
            for start in range(0, n, batch):
                now = int(time.time() * 1000)
                client.log_batch(run_id, metrics=[Metric("loss", i * 0.001, now, i)
                                                  for i in range(start, min(n, start + batch))])
        calls = time.perf_counter() - t0
        total = calls  # synchronous: committed when each call returns
    conn = sqlite3.connect(db)
    stored = conn.execute("SELECT COUNT(*) FROM metrics WHERE run_uuid = ?",
                          (run_id,)).fetchone()[0]
    done(points=n, calls_s=calls, total_s=total, stored=stored, version=mlflow.__version__,
         db_bytes=os.path.getsize(db))
if part.startswith("trackio"):
    try:
        import trackio
    except Exception as exc:
        done(skipped="trackio is not importable in this interpreter"
                     f" ({exc.__class__.__name__}: {exc})")
    from trackio import utils
    if os.path.realpath(str(utils.TRACKIO_DIR)) != os.path.realpath(os.environ["TRACKIO_DIR"]):
        done(skipped=f"trackio ignored TRACKIO_DIR (it uses {utils.TRACKIO_DIR}); not run")
    keys = [f"m{k}" for k in range(cfg["keys"])]
    trackio.init(project="bench", name="bench", embed=False, auto_log_cpu=False,
                 auto_log_gpu=False)
    t0 = time.perf_counter()
    log = trackio.log
    for i in range(n // len(keys)):
        v = i * 0.001
        log({k: v for k in keys}, step=i)
    calls = time.perf_counter() - t0
    trackio.finish()
    total = time.perf_counter() - t0
    db = os.path.join(os.environ["TRACKIO_DIR"], "bench.db")
    conn = sqlite3.connect(db)
    stored = sum(len(json.loads(m)) for (m,) in conn.execute("SELECT metrics FROM metrics"))
    done(points=n, calls_s=calls, total_s=total, stored=stored, version=trackio.__version__,
         db_bytes=sum(os.path.getsize(os.path.join(db_dir, f))
                      for db_dir, _, files in os.walk(os.environ["TRACKIO_DIR"]) for f in files))
done(error=f"unknown part {part}")
""".replace("MARK", repr(RESULT_MARK))

LABELS = {
    "wb_log_metric": ("workbench", "wb.log_metric (1 key/call)"),
    "wb_log_metrics": ("workbench", f"wb.log_metrics ({KEYS_PER_CALL} keys/call)"),
    "sqlite_executemany": ("sqlite3", f"executemany, {SQLITE_BATCH:,} rows/txn"),
    "mlflow_log_metric": ("mlflow", "mlflow.log_metric (1/call)"),
    "mlflow_log_batch": ("mlflow", f"MlflowClient.log_batch ({MLFLOW_BATCH:,}/call)"),
    "trackio_log_10": ("trackio", f"trackio.log ({KEYS_PER_CALL} keys/call)"),
    "trackio_log_1": ("trackio", "trackio.log (1 key/call)"),
}


def measure_workbench(mode: str, points: int, log) -> dict:
    with sandbox("", name="bench") as box:
        found = run_embedded(
            sys.executable,
            WORKBENCH_SCRIPT,
            [mode, str(points), str(box.project_dir)],
            box.env,
            box.project_dir,
        )
        if "error" not in found:
            found["db_bytes"] = sum(f.stat().st_size for f in box.home.glob("workbench.db*"))
    return found


def measure_sqlite(points: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="wb-bench-sqlite-"))
    try:
        found = run_embedded(
            sys.executable,
            SQLITE_SCRIPT,
            [str(points), str(work / "raw.db")],
            dict(os.environ),
            work,
        )
        if "error" not in found:
            found["db_bytes"] = dir_size(work)
        return found
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_peer(peer_python: str | None, part: str, points: int, keys: int = 1) -> dict:
    if not peer_python:
        return {"skipped": "no --peer-python given"}
    if not (Path(peer_python).is_file() and os.access(peer_python, os.X_OK)):
        return {"skipped": f"--peer-python {peer_python} is not an executable file"}
    work = Path(tempfile.mkdtemp(prefix="wb-bench-peer-"))
    try:
        env = offline_env(
            dict(os.environ),
            TRACKIO_DIR=str(work / "trackio"),
            MLFLOW_ARTIFACT_ROOT=str(work / "mlartifacts"),
        )
        for leaked in (
            "WORKBENCH_RUN_ID",
            "WORKBENCH_PROJECT_DIR",
            "WORKBENCH_PARAMS",
            "VIRTUAL_ENV",
            "PYTHONPATH",
        ):
            env.pop(leaked, None)
        cfg = {
            "part": part,
            "points": points,
            "dir": str(work),
            "batch": MLFLOW_BATCH,
            "keys": keys,
        }
        # cwd = the temp dir: anything a peer writes relative to it (mlruns/) goes away.
        return run_embedded(peer_python, PEER_SCRIPT, [json.dumps(cfg)], env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summarize(part: str, tries: list[dict]) -> dict:
    good = [t for t in tries if "error" not in t and "skipped" not in t]
    if not good:
        first = tries[0]
        return {"part": part, "skipped": first.get("skipped"), "error": first.get("error")}
    rates = [rate(t["points"], t["total_s"]) for t in good]
    best = sorted(good, key=lambda t: rate(t["points"], t["total_s"]))[len(good) // 2]  # median try
    out = {
        "part": part,
        "tool": LABELS[part][0],
        "version": best.get("version"),
        "what": LABELS[part][1],
        "points": best["points"],
        "total_s": best["total_s"],
        "calls_s": best["calls_s"],
        "points_per_s": statistics.median(rates),
        "points_per_s_all": rates,
        "calls_only_points_per_s": rate(best["points"], best["calls_s"]),
        "stored": best["stored"],
        "lost": sum(t["points"] - t["stored"] for t in good),
        "db_bytes": best.get("db_bytes"),
        "tries": len(good),
    }
    if part in TARGETS:
        out["target_points_per_s"] = TARGETS[part]
        out["target_met"] = out["points_per_s"] >= TARGETS[part] and out["lost"] == 0
    return out


def measure(args, log) -> dict:
    results = []
    plan = [
        ("wb_log_metric", lambda: measure_workbench("log_metric", args.points, log), args.repeat),
        ("wb_log_metrics", lambda: measure_workbench("log_metrics", args.points, log), args.repeat),
        ("sqlite_executemany", lambda: measure_sqlite(args.points), args.repeat),
        (
            "mlflow_log_metric",
            lambda: measure_peer(args.peer_python, "mlflow_log_metric", args.mlflow_calls),
            1,
        ),
        (
            "mlflow_log_batch",
            lambda: measure_peer(args.peer_python, "mlflow_log_batch", args.mlflow_batch_points),
            1,
        ),
        (
            "trackio_log_10",
            lambda: measure_peer(
                args.peer_python, "trackio_log", args.trackio_points, KEYS_PER_CALL
            ),
            1,
        ),
        (
            "trackio_log_1",
            lambda: measure_peer(
                args.peer_python, "trackio_log", args.trackio_points // KEYS_PER_CALL, 1
            ),
            1,
        ),
    ]
    for part, run, tries in plan:
        found = []
        for i in range(tries):
            one = run()
            found.append(one)
            if "skipped" in one or "error" in one:
                log(f"{part}: {one.get('skipped') or one.get('error')}")
                break
            log(
                f"{part} [{i + 1}/{tries}]: {one['points']:,} points in {one['total_s']:.2f} s"
                f" = {fmt_rate(rate(one['points'], one['total_s']))}"
                f" (calls only {one['calls_s']:.2f} s), stored {one['stored']:,}"
            )
        results.append(summarize(part, found))
    wb_parts = [r for r in results if r["part"] in TARGETS]
    return {
        "benchmark": "tracking_throughput",
        "target": "; ".join(
            f"{LABELS[p][1]} >= {t:,} points/s end to end" for p, t in TARGETS.items()
        ),
        "points": args.points,
        "repeat": args.repeat,
        "peer_python": bool(args.peer_python),
        "results": results,
        "target_met": all(r.get("target_met") for r in wb_parts),
        "machine": machine_info(),
    }


def report(r: dict) -> str:
    lines = [
        f"tracking throughput (workbench and sqlite3: median of {r['repeat']} tries)",
        f"{'tool':10} {'version':8} {'what':36} {'points':>10} {'end to end':>11}"
        f" {'points/s':>9} {'calls only':>10} {'stored':>10} {'MiB':>6}",
    ]
    for x in r["results"]:
        tool, what = LABELS[x["part"]]
        if "points" not in x:
            why = x.get("skipped") or x.get("error")
            lines.append(f"{tool:10} {'-':8} {what:36} skipped: {why}")
            continue
        mib = f"{x['db_bytes'] / 2**20:.1f}" if x.get("db_bytes") else "-"
        lines.append(
            f"{tool:10} {str(x['version'])[:8]:8} {what:36} {x['points']:>10,}"
            f" {x['total_s']:>9.2f} s"
            f" {fmt_rate(x['points_per_s']):>9} {fmt_rate(x['calls_only_points_per_s']):>10}"
            f" {x['stored']:>10,} {mib:>6}"
        )
    lines.append("")
    for x in r["results"]:
        if "target_points_per_s" in x:
            lost = f", {x['lost']:,} points LOST" if x["lost"] else ""
            lines.append(
                f"target: {LABELS[x['part']][1]} >= {x['target_points_per_s']:,} points/s:"
                f" {fmt_rate(x['points_per_s'])}{lost} -> "
                + ("met" if x["target_met"] else "missed")
            )
    lines.append("target met" if r["target_met"] else "target missed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--points",
        type=int,
        default=1_000_000,
        help="points per workbench / sqlite3 part (default 1,000,000)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="tries of each workbench / sqlite3 part; the median is reported (default 3)",
    )
    parser.add_argument(
        "--peer-python",
        metavar="PATH",
        help="interpreter with mlflow and/or trackio installed; peers are skipped without it",
    )
    parser.add_argument(
        "--mlflow-calls", type=int, default=2_000, help="mlflow.log_metric calls (default 2,000)"
    )
    parser.add_argument(
        "--mlflow-batch-points",
        type=int,
        default=100_000,
        help=f"points sent through log_batch, {MLFLOW_BATCH:,} per call (default 100,000)",
    )
    parser.add_argument(
        "--trackio-points",
        type=int,
        default=1_000_000,
        help="points for trackio at 10 keys/call; a tenth of it at 1 key/call (default 1,000,000)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = parser.parse_args(argv)
    if args.points < KEYS_PER_CALL or args.repeat < 1:
        parser.error(f"--points must be at least {KEYS_PER_CALL} and --repeat at least 1")
    if args.peer_python:
        args.peer_python = str(Path(args.peer_python).expanduser().absolute())
    emit(measure(args, log), report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
