"""The TUI's store reads on a project of 2,000 runs: time and SQL statements.

What a poll of each screen reads, called the way the screens call it (in a
thread of their own, a connection per thread):
  home     the projects with their last run and best metric, and the activity
  project  a project's 2,000 newest runs with their params and primary metric
  run      one run's detail with one plotted series

The store is built directly: 5 lightgbm projects made from the template and
registered, one with 2,000 succeeded runs and four with 200, each run with 3
params, an event and 3 metric series (20 points of `valid_logloss`).
Each read runs `--repeat` times (median, p90 and min shown) and once more with
SQLite's trace callback counting the statements it executes. `--baseline REV`
also loads the reads module as it was at git revision REV (`workbench/tui/data.py`
before it became `reads.py`) and times both in turn, call for call, so a busy
machine slows both alike.

Timing is not a test: exits 0 either way.

    python benchmarks/bench_tui_reads.py [--runs 2000] [--others 200] [--repeat 15]
        [--baseline REV] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import types
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info, summary  # noqa: E402

POINTS = 20
ROOT = Path(__file__).resolve().parent.parent


def build(store, root: Path, runs: int, others: int) -> str:
    from workbench.projects import add_project
    from workbench.store.metrics import append_points
    from workbench.templates import init_project

    ids = []
    for i in range(5):
        name = f"p{i}"
        ids.append(add_project(store, init_project(root / name, "lightgbm", name=name))["id"])
    counts = [runs] + [others] * 4
    base = time.time() - sum(counts) * 30.0
    run_id = 0
    with store.write() as conn:
        for project_id, count in zip(ids, counts, strict=True):
            for i in range(count):
                run_id += 1
                start = base + run_id * 30.0
                conn.execute(
                    "INSERT INTO runs (id, project_id, status, trainer, priority, created_at,"
                    " started_at, ended_at, exit_code) VALUES (?, ?, 'succeeded', 'lightgbm',"
                    " 0, ?, ?, ?, 0)",
                    (run_id, project_id, start - 1, start, start + 20 + i % 17),
                )
                conn.executemany(
                    "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                    [
                        (run_id, "n_estimators", json.dumps(100 + 50 * (i % 5))),
                        (run_id, "learning_rate", json.dumps(round(0.01 * (1 + i % 10), 3))),
                        (run_id, "num_leaves", json.dumps(15 + i % 4)),
                    ],
                )
                store.add_event(
                    "run.succeeded",
                    f"run {run_id} succeeded",
                    ts=start + 20,
                    project_id=project_id,
                    run_id=run_id,
                )
                auc = 0.90 + ((run_id * 7919) % 1000) / 10_000
                append_points(
                    conn,
                    run_id,
                    {
                        "valid_logloss": [
                            (s, start + s, 0.7 / (1 + s * 0.05)) for s in range(POINTS)
                        ],
                        "roc_auc": [(None, start + 19, auc)],
                        "accuracy": [(None, start + 19, auc - 0.05)],
                    },
                )
    return "p0"


def reads_module():
    try:
        from workbench.tui import reads  # type: ignore[attr-defined]
    except ImportError:  # before the reads had their own module
        from workbench.tui import data as reads  # type: ignore[no-redef]
    return reads


def baseline_module(rev: str):
    """The reads module at git revision `rev`, loaded from its source."""
    for path in ("workbench/tui/reads.py", "workbench/tui/data.py"):
        found = subprocess.run(
            ["git", "show", f"{rev}:{path}"], capture_output=True, text=True, cwd=ROOT
        )
        if found.returncode == 0:
            module = types.ModuleType(f"baseline_{path.rsplit('/', 1)[-1][:-3]}")
            exec(compile(found.stdout, f"{rev}:{path}", "exec"), module.__dict__)
            return module
    raise SystemExit(f"no reads module at {rev}")


def measure(fns: dict, repeat: int, conns: dict) -> dict:
    """Each of `fns` (label -> callable) `repeat` times, in turn, then once more
    counting the statements on its connection."""
    for fn in fns.values():
        fn()  # warm: caches, the first connection
    times: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(repeat):
        for label, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[label].append((time.perf_counter() - t0) * 1000)
    out = {}
    for label, fn in fns.items():
        statements: list[str] = []
        conns[label].set_trace_callback(statements.append)
        try:
            fn()
        finally:
            conns[label].set_trace_callback(None)
        out[label] = {"ms": summary(times[label]), "statements": len(statements)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--others", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--baseline", metavar="REV", help="also time the reads at this revision")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="wb-bench-reads-"))
    os.environ["WORKBENCH_HOME"] = str(root / "home")
    try:
        from workbench.store import open_store

        t0 = time.perf_counter()
        store = open_store()
        project = build(store, root / "projects", args.runs, args.others)
        built_s = time.perf_counter() - t0
        modules = {"current": reads_module()}
        if args.baseline:
            modules["baseline"] = baseline_module(args.baseline)
        conns = {label: m.store().conn for label, m in modules.items()}
        run_id = args.runs  # the newest run of the big project
        cases = {
            "home": lambda m: m.home_snapshot(),
            "project": lambda m: m.project_runs(project),
            "run": lambda m: m.run_detail(run_id, ["valid_logloss"]),
        }
        result = {
            "machine": machine_info(),
            "baseline": args.baseline,
            "runs": args.runs + 4 * args.others,
            "build_s": round(built_s, 1),
            "reads": {
                name: measure(
                    {label: (lambda m=m, c=case: c(m)) for label, m in modules.items()},
                    args.repeat,
                    conns,
                )
                for name, case in cases.items()
            },
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['runs']:,} runs (built in {result['build_s']} s)")
    for name, found in result["reads"].items():
        for label, figures in found.items():
            ms = figures["ms"]
            shown = label if label == "current" else f"at {args.baseline}"
            print(
                f"  {name:8} {shown:14} median {ms['median']:7.1f} ms  p90 {ms['p90']:7.1f} ms"
                f"  min {ms['min']:7.1f} ms  {figures['statements']:3d} statements"
            )


if __name__ == "__main__":
    main()
