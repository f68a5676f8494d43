"""`workbench run list` and `run show` CPU at 1,000 / 10,000 / 50,000 runs.

Targets at 50,000 runs (CPU time, user + sys, of the CLI subprocess):
  `workbench run list`              <= 0.15 s
  `workbench run list --json --all` <= 1 s

Builds one store through the store API (`store.projects.add`,
`store.runs.create` with the run's times, `store.metrics.append_points` with
three final metrics per run), growing it to each size in turn, with no
training. At each size it measures, as subprocesses with stdout into a pipe,
the CPU time (`resource.getrusage(RUSAGE_CHILDREN)`, user + sys) of:
  - `workbench run list` (the newest 50, tab-separated);
  - `workbench run list --json --all` (output checked: every run);
  - `workbench run list --after X` (X: the middle run's id);
  - `workbench run show ID` (a run in the middle);
median of `--repeat` (3) after one untimed warm-up, and each as a ratio to
`python -c "import click"` measured the same way in the same run (the floor
of any click program's start-up on this machine).

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_run_list.py [--sizes 1000,10000,50000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, sandbox  # noqa: E402

TARGET_LIST_S = 0.15
TARGET_JSON_ALL_S = 1.0
RUNS_PER_TXN = 5_000


def cpu_of(cmd: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    """User + sys CPU seconds of one subprocess, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=env, capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used, proc.stdout


def median_cpu(cmd: list[str], env: dict[str, str], repeat: int) -> tuple[float, bytes]:
    _, out = cpu_of(cmd, env)  # warm-up: page cache, .pyc files
    times = []
    for _ in range(repeat):
        used, out = cpu_of(cmd, env)
        times.append(used)
    return statistics.median(times), out


def grow(store, project_id: int, have: int, want: int) -> None:
    """Add finished runs until the store holds `want`, each with three final metrics."""
    from workbench.store import runs as run_store
    from workbench.store.metrics import append_points

    base = 1_700_000_000.0
    i = have
    while i < want:
        with store.write() as conn:
            for i in range(i, min(want, i + RUNS_PER_TXN)):
                started = base + i * 60
                run_id = run_store.create(
                    store,
                    project_id,
                    "lightgbm",
                    event_message="run {id} succeeded",
                    status=run_store.RunStatus.SUCCEEDED,
                    params={"learning_rate": 0.1, "num_leaves": 31},
                    created_at=started,
                    started_at=started,
                    ended_at=started + 42.5,
                    exit_code=0,
                )
                append_points(
                    conn,
                    run_id,
                    {
                        "roc_auc": [(None, started + 40, 0.9 + (i % 97) / 1000)],
                        "accuracy": [(None, started + 40, 0.8 + (i % 89) / 1000)],
                        "log_loss": [(None, started + 40, 0.3 + (i % 83) / 1000)],
                    },
                )
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    results: dict = {"machine": machine_info(), "repeat": args.repeat, "sizes": {}}
    with sandbox("print('unused')\n", name="runlist") as box:
        os.environ.update(box.env)  # the store API below opens the sandbox's store
        from workbench.store import open_store
        from workbench.store import projects as project_store

        env = {**box.env}
        floor, _ = median_cpu([sys.executable, "-c", "import click"], env, args.repeat)
        results["import_click_s"] = round(floor, 4)
        print(f"python -c 'import click': {floor:.3f} s CPU", file=sys.stderr)

        store = open_store()
        project = project_store.by_name(store, box.project)
        if project is None:
            project = project_store.add(store, box.project, str(box.project_dir))
        have = int(store.scalar("SELECT COUNT(*) FROM runs"))
        for size in sizes:
            t0 = time.perf_counter()
            grow(store, project.id, have, size)
            have = size
            store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            print(f"built {size} runs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            ids = [r[0] for r in store.conn.execute("SELECT id FROM runs ORDER BY id")]
            middle = ids[len(ids) // 2]
            cases = {
                "run list": ["run", "list"],
                "run list --json --all": ["run", "list", "--json", "--all"],
                f"run list --after {middle}": ["run", "list", "--after", str(middle)],
                "run show ID": ["run", "show", str(middle)],
            }
            row: dict = {}
            for name, cmd in cases.items():
                used, out = median_cpu([*box.cli, *cmd], env, args.repeat)
                if name == "run list --json --all":
                    assert len(json.loads(out)) == size, "run list --json --all lost runs"
                key = name.replace(str(middle), "X")
                row[key] = {"cpu_s": round(used, 4), "ratio": round(used / floor, 2)}
                print(f"  {size:>6} runs  {key:<24} {used:.3f} s CPU  ({used / floor:.1f}x)",
                      file=sys.stderr)
            results["sizes"][size] = row
        store.close()

    top = results["sizes"].get(50_000)
    if top:
        met = (
            top["run list"]["cpu_s"] <= TARGET_LIST_S
            and top["run list --json --all"]["cpu_s"] <= TARGET_JSON_ALL_S
        )
        results["target_met"] = met
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"import click: {results['import_click_s']:.3f} s CPU")
        for size, row in results["sizes"].items():
            for name, m in row.items():
                print(f"{size:>6} runs  {name:<24} {m['cpu_s']:.3f} s  {m['ratio']:.1f}x")
        if top:
            print("target met" if results["target_met"] else "target missed")


if __name__ == "__main__":
    main()
