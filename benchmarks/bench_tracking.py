"""The tracking API against the storage floor: `wb.log_metric` as users call it.

Every figure is a ratio to something measured in the same run, round by round
(each round runs every part once, in turn, so that a busy moment slows all
parts alike); the table shows medians over the rounds. Targets:

  log_metric   `with wb.start_run(...)`, N points through `wb.log_metric(...)`
               (the module attribute, looked up on every call), end of the block:
               >= 1.0x the points/s of the floor
  floor        raw sqlite3: `executemany` of the same N rows (series_id, idx,
               step, ts, value) into a clustered table (WITHOUT ROWID, primary
               key (series_id, idx): a row per point, as the store kept them
               before chunks), WAL, synchronous=NORMAL, 50,000 rows per
               transaction, rows built in the loop. The store now packs 1,024
               points a row (`workbench.store.metric_chunks`); the floor stays
               the row-per-point write, the cost the chunks are measured against
  log_metrics  the same with 10 keys per call (a dict built per call, as users
               do): >= 5x trackio's points/s (when trackio is importable)
  per point    inside a run, a loop with a trivial body (`x = i * 0.5`) that logs
               every iteration vs the same loop without logging, the logging
               one timed until `wb.flush()` returned: <= 1.5 us per point
  start+close  `with wb.start_run(project=...): pass`, the first one in a fresh
               interpreter (it pays the imports a script pays): <= 50 ms; the
               median of 5 more in the same interpreter is shown too

Peers run in the interpreter given with `--peer-python` (default: this one), and
only if they import there; they are never installed by this script. mlflow:
`mlflow.log_metric` (SQLite backend, 500 calls) and `MlflowClient.log_batch`
(50,000 points, 1,000 metrics a call); trackio: `trackio.init` (lazy: about a
millisecond), `trackio.log` with 10 keys a call, `finish()`, into a temporary
TRACKIO_DIR. They run in every round, so the trackio ratio is a median of ratios
of the same round, over the whole block (start to close on both sides) and over
the points alone (first call until close returned). They get telemetry and Hub
access switched off (`_common.OFFLINE_ENV`), no remote URL, Space or token
variable (`PEER_REMOTE_VARS`), and a guard in the peer's interpreter refuses and
counts any name lookup of another host and any connection or datagram to a
non-loopback address: a peer that tried is reported ("peers reached no network").
Every part runs in a fresh interpreter with its own temporary store; imports of
`workbench` itself and store creation are outside the timed window, `start_run`'s
own imports are inside it.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_tracking.py [--points 200000] [--repeat 3]
        [--loop-points 200000] [--peer-python PATH] [--no-peers]
        [--mlflow-calls 500] [--mlflow-batch-points 50000] [--parts A,B] [--json]
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

from _common import (  # noqa: E402
    RESULT_MARK,
    emit,
    fmt_rate,
    log,
    machine_info,
    offline_env,
    rate,
    run_embedded,
    sandbox,
)

KEYS_PER_CALL = 10
SQLITE_BATCH = 50_000  # rows per transaction of the floor
MLFLOW_BATCH = 1_000
TARGET_FLOOR_RATIO = 1.0  # wb.log_metric points/s over the floor's
TARGET_TRACKIO_RATIO = 5.0  # wb.log_metrics points/s over trackio's (10 keys a call)
TARGET_US_PER_POINT = 1.5
TARGET_START_CLOSE_MS = 50.0
# Besides _common.REMOTE_VARS: variables that trackio reads to act as a Space or
# to write to one (trackio/launch.py, server.py, __init__.py).
PEER_REMOTE_VARS = (
    "SPACE_ID",
    "SPACE_HOST",
    "SYSTEM",
    "HF_TOKEN",
    "TRACKIO_WRITE_TOKEN",
    "GRADIO_SHARE",
)

# argv: mode, points, project folder. Modes: log_metric | log_metrics | loop | start_close
WORKBENCH_SCRIPT = r"""
import json, statistics, sys, time
mode, n, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import workbench as wb
perf = time.perf_counter
out = {"points": n}
if mode == "log_metric":
    t0 = perf()
    with wb.start_run(project=folder) as run:
        t1 = perf()
        for i in range(n):
            wb.log_metric("loss", i * 0.001, step=i)
        t2 = perf()
    t3 = perf()
    out.update(total_s=t3 - t0, start_s=t1 - t0, calls_s=t2 - t1, close_s=t3 - t2)
elif mode == "log_metrics":
    keys = [f"m{k}" for k in range(KEYS)]
    t0 = perf()
    with wb.start_run(project=folder) as run:
        t1 = perf()
        for i in range(n // KEYS):
            v = i * 0.001
            wb.log_metrics({k: v for k in keys}, step=i)
        t2 = perf()
    t3 = perf()
    out.update(total_s=t3 - t0, start_s=t1 - t0, calls_s=t2 - t1, close_s=t3 - t2)
elif mode == "loop":
    plain, logged = [], []
    with wb.start_run(project=folder) as run:
        for r in range(3):
            t = perf()
            for i in range(n):
                x = i * 0.5
            plain.append(perf() - t)
            t = perf()
            for i in range(n):
                x = i * 0.5
                wb.log_metric("loss", x, step=r * n + i)
            wb.flush()
            logged.append(perf() - t)
    out.update(plain_s=statistics.median(plain), logged_s=statistics.median(logged),
               points=3 * n)
elif mode == "start_close":
    t0 = perf()
    with wb.start_run(project=folder) as run:
        pass
    first = perf() - t0
    warm = []
    for _ in range(5):
        t = perf()
        with wb.start_run(project=folder) as run:
            pass
        warm.append(perf() - t)
    out.update(first_s=first, warm_s=statistics.median(warm), points=0)
from workbench.store import open_store
store = open_store(migrate=False)
# Points stored: in the run's chunks (the `metrics` view decodes the same,
# slowly: it is for reading by hand).
out["stored"] = store.scalar(
    "SELECT COALESCE(SUM(c.count), 0) FROM metric_chunks c"
    " JOIN metric_series s ON s.id = c.series_id WHERE s.run_id = ?", (run.id,))
store.close()
import importlib.metadata as md
out["version"] = md.version("workbench-mlops")
print(MARK + json.dumps(out))
""".replace("KEYS", str(KEYS_PER_CALL)).replace("MARK", repr(RESULT_MARK))

# argv: points, db path
SQLITE_SCRIPT = r"""
import json, sqlite3, sys, time
n, path = int(sys.argv[1]), sys.argv[2]
conn = sqlite3.connect(path, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=NORMAL")
conn.execute("CREATE TABLE metrics (series_id INTEGER NOT NULL, idx INTEGER NOT NULL,"
             " step INTEGER, ts REAL NOT NULL, value REAL, PRIMARY KEY (series_id, idx))"
             " WITHOUT ROWID")
t0 = time.perf_counter()
for start in range(0, n, BATCH):
    rows = [(1, i, i, time.time(), i * 0.001) for i in range(start, min(n, start + BATCH))]
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
total = time.perf_counter() - t0
stored = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
print(MARK + json.dumps({"points": n, "total_s": total, "stored": stored,
      "version": sqlite3.sqlite_version}))
""".replace("BATCH", str(SQLITE_BATCH)).replace("MARK", repr(RESULT_MARK))

# argv: JSON {"part", "points", "dir", "batch", "keys"}; prints a result or {"skipped": why}
PEER_SCRIPT = r"""
import json, os, socket, sqlite3, sys, time
cfg = json.loads(sys.argv[1])
part, n, work = cfg["part"], cfg["points"], cfg["dir"]
# Whatever the peer tries beyond this machine is refused and counted (a name
# lookup of another host, a connection or datagram to a non-loopback address).
network = []
LOCAL = ("localhost", "127.0.0.1", "::1", "", None)
def _remote(host):
    host = host.decode() if isinstance(host, bytes) else host
    return not (host in LOCAL or str(host).startswith("127.") or str(host).startswith("/"))
def _guarded(real, what):
    def call(self, address, *rest):
        if self.family in (socket.AF_INET, socket.AF_INET6) and _remote(address[0]):
            network.append(f"{what} {address[0]}:{address[1]}")
            raise OSError(f"the benchmark allows no network ({what} {address[0]})")
        return real(self, address, *rest)
    return call
for _name in ("connect", "connect_ex"):
    setattr(socket.socket, _name, _guarded(getattr(socket.socket, _name), _name))
_real_sendto = socket.socket.sendto
def _sendto(self, data, *rest):
    address = rest[-1]
    if self.family in (socket.AF_INET, socket.AF_INET6) and _remote(address[0]):
        network.append(f"sendto {address[0]}")
        raise OSError("the benchmark allows no network (sendto)")
    return _real_sendto(self, data, *rest)
socket.socket.sendto = _sendto
_real_getaddrinfo = socket.getaddrinfo
def _getaddrinfo(host, *rest, **kw):
    if _remote(host):
        network.append(f"lookup {host}")
        raise socket.gaierror(socket.EAI_NONAME, "the benchmark allows no network")
    return _real_getaddrinfo(host, *rest, **kw)
socket.getaddrinfo = _getaddrinfo
def done(**kw):
    if "points" in kw:
        kw["network"] = network
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
            for i in range(n):
                mlflow.log_metric("loss", i * 0.001, step=i)
        else:
            client, batch = MlflowClient(), cfg["batch"]
            for start in range(0, n, batch):
                now = int(time.time() * 1000)
                client.log_batch(run_id, metrics=[Metric("loss", i * 0.001, now, i)
                                                  for i in range(start, min(n, start + batch))])
        total = time.perf_counter() - t0  # synchronous: committed when each call returns
    conn = sqlite3.connect(db)
    stored = conn.execute("SELECT COUNT(*) FROM metrics WHERE run_uuid = ?",
                          (run_id,)).fetchone()[0]
    done(points=n, total_s=total, stored=stored, version=mlflow.__version__)
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
    t0 = time.perf_counter()  # the same window as workbench's: from start to close
    trackio.init(project="bench", name="bench", embed=False, auto_log_cpu=False,
                 auto_log_gpu=False)
    t1 = time.perf_counter()
    for i in range(n // len(keys)):
        v = i * 0.001
        trackio.log({k: v for k in keys}, step=i)
    t2 = time.perf_counter()
    trackio.finish()
    t3 = time.perf_counter()
    total = t3 - t0
    db = os.path.join(os.environ["TRACKIO_DIR"], "bench.db")
    conn = sqlite3.connect(db)
    stored = sum(len(json.loads(m)) for (m,) in conn.execute("SELECT metrics FROM metrics"))
    done(points=n, total_s=total, start_s=t1 - t0, calls_s=t2 - t1, close_s=t3 - t2,
         stored=stored, version=trackio.__version__)
done(error=f"unknown part {part}")
""".replace("MARK", repr(RESULT_MARK))

PEER_PARTS = ("mlflow_log_metric", "mlflow_log_batch", "trackio_log")
LABELS = {
    "wb_log_metric": ("workbench", "wb.log_metric, start to close"),
    "wb_log_metrics": ("workbench", f"wb.log_metrics ({KEYS_PER_CALL} keys/call)"),
    "sqlite_floor": ("sqlite3", f"executemany, clustered, {SQLITE_BATCH:,}/txn"),
    "wb_loop": ("workbench", "training loop, 1 point/iteration"),
    "wb_start_close": ("workbench", "start_run + close"),
    "mlflow_log_metric": ("mlflow", "mlflow.log_metric (1/call)"),
    "mlflow_log_batch": ("mlflow", f"MlflowClient.log_batch ({MLFLOW_BATCH:,}/call)"),
    "trackio_log": ("trackio", f"trackio.log ({KEYS_PER_CALL} keys/call)"),
}


def measure_workbench(mode: str, points: int) -> dict:
    with sandbox("", name="bench") as box:
        return run_embedded(
            sys.executable,
            WORKBENCH_SCRIPT,
            [mode, str(points), str(box.project_dir)],
            box.env,
            box.project_dir,
        )


def measure_sqlite(points: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="wb-bench-sqlite-"))
    try:
        args = [str(points), str(work / "raw.db")]
        return run_embedded(sys.executable, SQLITE_SCRIPT, args, dict(os.environ), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_peer(peer_python: str, part: str, points: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="wb-bench-peer-"))
    try:
        env = offline_env(
            dict(os.environ),
            TRACKIO_DIR=str(work / "trackio"),
            MLFLOW_ARTIFACT_ROOT=str(work / "mlartifacts"),
        )
        for leaked in ("WORKBENCH_RUN_ID", "WORKBENCH_PROJECT_DIR", "WORKBENCH_PARAMS"):
            env.pop(leaked, None)
        for remote in PEER_REMOTE_VARS:  # what would make trackio act as (or for) a Space
            env.pop(remote, None)
        cfg = {
            "part": part,
            "points": points,
            "dir": str(work),
            "batch": MLFLOW_BATCH,
            "keys": KEYS_PER_CALL,
        }
        # cwd = the temp dir: anything a peer writes relative to it (mlruns/) goes away.
        return run_embedded(peer_python, PEER_SCRIPT, [json.dumps(cfg)], env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _median(tries: list[dict], key: str) -> float:
    return statistics.median(t[key] for t in tries)


def measure(args) -> dict:
    plan = {
        "wb_log_metric": lambda: measure_workbench("log_metric", args.points),
        "sqlite_floor": lambda: measure_sqlite(args.points),
        "wb_log_metrics": lambda: measure_workbench("log_metrics", args.points),
        "wb_loop": lambda: measure_workbench("loop", args.loop_points),
        "wb_start_close": lambda: measure_workbench("start_close", 0),
    }
    if not args.no_peers:
        peer = args.peer_python or sys.executable
        plan["mlflow_log_metric"] = lambda: measure_peer(
            peer, "mlflow_log_metric", args.mlflow_calls
        )
        plan["mlflow_log_batch"] = lambda: measure_peer(
            peer, "mlflow_log_batch", args.mlflow_batch_points
        )
        plan["trackio_log"] = lambda: measure_peer(peer, "trackio_log", args.points)
    if args.parts:
        plan = {part: run for part, run in plan.items() if part in args.parts}
    tries: dict[str, list[dict]] = {part: [] for part in plan}
    notes: dict[str, str] = {}
    for round_ in range(args.repeat):
        for part, run in plan.items():
            if part in notes:
                continue
            one = run()
            if "skipped" in one or "error" in one:
                notes[part] = one.get("skipped") or one.get("error")
                log(f"{part}: {notes[part]}")
                continue
            tries[part].append(one)
            log(f"[{round_ + 1}/{args.repeat}] {part}: {json.dumps(one)[:200]}")
    return summarize(args, tries, notes)


def summarize(args, tries: dict[str, list[dict]], notes: dict[str, str]) -> dict:
    parts = {}
    for part, found in tries.items():
        if not found:
            parts[part] = {"skipped": notes.get(part, "not run")}
            continue
        x: dict = {"tries": len(found), "version": found[0].get("version")}
        if part == "wb_loop":
            plain, logged = _median(found, "plain_s"), _median(found, "logged_s")
            per_round = found[0]["points"] // 3
            x.update(
                points=per_round,
                plain_s=plain,
                logged_s=logged,
                us_per_point=statistics.median(
                    (t["logged_s"] - t["plain_s"]) / per_round * 1e6 for t in found
                ),
            )
        elif part == "wb_start_close":
            x.update(
                first_ms=_median(found, "first_s") * 1e3, warm_ms=_median(found, "warm_s") * 1e3
            )
        else:
            x.update(
                points=found[0]["points"],
                total_s=_median(found, "total_s"),
                points_per_s=statistics.median(rate(t["points"], t["total_s"]) for t in found),
            )
            for extra in ("start_s", "calls_s", "close_s"):
                if extra in found[0]:
                    x[extra] = _median(found, extra)
        x["lost"] = sum(t["points"] - t["stored"] for t in found if "stored" in t)
        parts[part] = x
    ratios = {}
    floor = tries.get("sqlite_floor") or []
    for part in ("wb_log_metric", "wb_log_metrics"):
        pairs = list(zip(tries.get(part) or [], floor, strict=False))
        if pairs:  # round by round: both measured under the same load
            ratios[f"{part}/floor"] = statistics.median(
                f["total_s"] / w["total_s"] for w, f in pairs
            )
    for wb_part, peer in (
        ("wb_log_metric", "mlflow_log_metric"),
        ("wb_log_metric", "mlflow_log_batch"),
    ):
        if "points_per_s" in parts.get(wb_part, {}) and "points_per_s" in parts.get(peer, {}):
            ratios[f"{wb_part}/{peer}"] = (
                parts[wb_part]["points_per_s"] / parts[peer]["points_per_s"]
            )
    # trackio logs the same points as wb.log_metrics: round by round, the time of
    # the whole block (start to close, both sides) and of the points alone (first
    # call until the close returned: workbench's run creation and trackio's init
    # left out).
    pairs = list(
        zip(tries.get("wb_log_metrics") or [], tries.get("trackio_log") or [], strict=False)
    )
    if pairs:
        ratios["wb_log_metrics/trackio_log"] = statistics.median(
            t["total_s"] / w["total_s"] for w, t in pairs
        )
        ratios["wb_log_metrics/trackio_log, points alone"] = statistics.median(
            (t["calls_s"] + t["close_s"]) / (w["calls_s"] + w["close_s"]) for w, t in pairs
        )
    lost = sum(p.get("lost", 0) for name, p in parts.items() if name.startswith("wb_"))
    network = sorted({a for found in tries.values() for t in found for a in t.get("network", [])})
    targets = {
        f"wb.log_metric >= {TARGET_FLOOR_RATIO}x floor": _met(
            ratios.get("wb_log_metric/floor"), TARGET_FLOOR_RATIO, above=True
        ),
        f"wb.log_metrics >= {TARGET_TRACKIO_RATIO}x trackio": _met(
            ratios.get("wb_log_metrics/trackio_log"), TARGET_TRACKIO_RATIO, above=True
        ),
        f"per point <= {TARGET_US_PER_POINT} us": _met(
            parts.get("wb_loop", {}).get("us_per_point"), TARGET_US_PER_POINT, above=False
        ),
        f"start_run + close <= {TARGET_START_CLOSE_MS:g} ms": _met(
            parts.get("wb_start_close", {}).get("first_ms"), TARGET_START_CLOSE_MS, above=False
        ),
        "no point lost": lost == 0,
        "peers reached no network": (
            not network if any(tries.get(p) for p in PEER_PARTS) else None
        ),
    }
    judged = [v for v in targets.values() if v is not None]
    return {
        "benchmark": "tracking",
        "points": args.points,
        "repeat": args.repeat,
        "parts": parts,
        "ratios": ratios,
        "network": network,
        "targets": targets,
        "target_met": all(judged),
        "machine": machine_info(),
    }


def _met(value: float | None, target: float, *, above: bool) -> bool | None:
    if value is None:
        return None  # not measured (a peer missing): not judged
    return value >= target if above else value <= target


def report(r: dict) -> str:
    p = r["parts"]
    lines = [f"tracking (medians of {r['repeat']} rounds)"]
    for part, x in p.items():
        tool, what = LABELS[part]
        head = f"{tool:9} {what:38}"
        if "skipped" in x:
            lines.append(f"{head} skipped: {x['skipped']}")
        elif part == "wb_loop":
            lines.append(
                f"{head} {x['points']:>9,} iterations: {x['plain_s']:.3f} s plain,"
                f" {x['logged_s']:.3f} s logging = {x['us_per_point']:.2f} us/point"
            )
        elif part == "wb_start_close":
            lines.append(f"{head} first {x['first_ms']:.1f} ms, then {x['warm_ms']:.1f} ms")
        else:
            split = ""
            if "calls_s" in x:
                split = (
                    f" (start {x['start_s'] * 1e3:.0f} ms, calls {x['calls_s']:.3f} s,"
                    f" close {x['close_s']:.3f} s)"
                )
            lost = f", {x['lost']:,} LOST" if x.get("lost") else ""
            lines.append(
                f"{head} {x['points']:>9,} points {x['total_s']:.3f} s"
                f" = {fmt_rate(x['points_per_s'])}{split}{lost}"
            )
    lines.append("")
    for attempt in r["network"]:
        lines.append(f"network attempt refused: {attempt}")
    for name, value in r["ratios"].items():
        lines.append(f"ratio {name}: {value:.2f}x")
    for name, ok in r["targets"].items():
        verdict = "not measured" if ok is None else ("met" if ok else "missed")
        lines.append(f"target {name}: {verdict}")
    lines.append("target met" if r["target_met"] else "target missed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=200_000, help="points (default 200,000)")
    parser.add_argument(
        "--loop-points",
        type=int,
        default=200_000,
        help="iterations of each training-loop round (default 200,000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians shown (default 3)")
    parser.add_argument(
        "--peer-python",
        metavar="PATH",
        help="interpreter to run mlflow / trackio in (default: this one); a peer that does"
        " not import there is skipped",
    )
    parser.add_argument("--no-peers", action="store_true", help="workbench and sqlite3 only")
    parser.add_argument(
        "--mlflow-calls", type=int, default=500, help="mlflow.log_metric calls (default 500)"
    )
    parser.add_argument(
        "--mlflow-batch-points",
        type=int,
        default=50_000,
        help=f"points through MlflowClient.log_batch, {MLFLOW_BATCH:,} a call (default 50,000)",
    )
    parser.add_argument(
        "--parts",
        metavar="NAMES",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        help=f"only these parts, comma-separated (of {', '.join(LABELS)})",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.parts or ()) - set(LABELS))
    if unknown:
        parser.error(f"--parts: unknown {', '.join(unknown)}; known: {', '.join(LABELS)}")
    if args.points < KEYS_PER_CALL or args.loop_points < 1 or args.repeat < 1:
        parser.error(f"--points must be at least {KEYS_PER_CALL}; --loop-points, --repeat >= 1")
    if args.peer_python:
        path = Path(args.peer_python).expanduser().absolute()
        if not (path.is_file() and os.access(path, os.X_OK)):
            parser.error(f"--peer-python {args.peer_python} is not an executable file")
        args.peer_python = str(path)
    emit(measure(args), report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
