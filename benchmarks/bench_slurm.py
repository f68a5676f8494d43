"""The Slurm executor's costs. Targets (issue 15):

  ingest    a journal of N metric points (default 1,000,000, in records of 1,000
            points as a job's tracking API writes them every 0.5 s), ingested
            into a fresh store: <= 2 s
  again     the same journal ingested again: adds nothing (points counted), and
            costs a stat and a read of nothing
  poll      200 submitted jobs polled: one `squeue` call (counted through a
            wrapper on PATH that logs its calls and runs the real squeue when
            there is one, else prints nothing)
  submit    `workbench run start --executor slurm` against the real cluster, vs a
            bare `sbatch --parsable --wrap true`: <= 0.5 s more per run (skipped
            without a cluster; start one with scripts/slurm_up.sh)
  array     a 100-trial sweep's array (`--array=0-99%8`, held so nothing runs)
            submitted: one sbatch call, squeue showing one array of 100 tasks
            (skipped without a cluster)

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_slurm.py [--points 1000000] [--submits 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path


def _store_with_project(home: Path):
    os.environ["WORKBENCH_HOME"] = str(home)
    from workbench.projects import add_project
    from workbench.store import open_store

    root = home.parent / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (root / "train.py").write_text("print('hi')\n")
    (root / "workbench.toml").write_text(
        textwrap.dedent("""\
        [project]
        name = "bench"
        [data]
        train = "data/train.csv"
        target = "y"
        [train]
        trainer = "script"
        script = "train.py"
        """)
    )
    store = open_store()
    row = add_project(store, root)
    return store, row["id"], root


def bench_ingest(points: int) -> dict:
    from workbench.runs.executors.journal import ingest
    from workbench.store import jobs as job_store
    from workbench.store import metrics as metric_store
    from workbench.store import runs as run_store

    with tempfile.TemporaryDirectory() as tmp:
        store, pid, _ = _store_with_project(Path(tmp) / "home")
        rid = run_store.insert_queued(store, pid, "script", {}, project_name="bench")
        folder = Path(tmp) / "job"
        folder.mkdir()
        journal = folder / "journal.jsonl"
        with open(journal, "w") as f:
            for start in range(0, points, 1000):
                steps = list(range(start, min(points, start + 1000)))
                record = {
                    "t": "m",
                    "k": "loss",
                    "s": steps,
                    "ts": [round(1.7e9 + i * 0.0005, 4) for i in steps],
                    "v": [1.0 / (i + 1) for i in steps],
                }
                f.write(json.dumps(record, separators=(",", ":")) + "\n")
        job_store.mark_submitted(
            store, rid, executor="slurm", job_id="1", journal_path=str(journal)
        )
        job = job_store.job_of(store, rid)
        t0 = time.perf_counter()
        first = ingest(store, job)
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ingest(store, job_store.job_of(store, rid))
        again_s = time.perf_counter() - t0
        count = {s["key"]: s["count"] for s in metric_store.series_list(store.conn, rid)}["loss"]
        store.close()
        return {
            "points": points,
            "journal_mb": round(journal.stat().st_size / 1e6, 1) if journal.exists() else None,
            "ingest_s": round(ingest_s, 3),
            "records": first.records,
            "again_s": round(again_s, 4),
            "again_records": again.records,
            "points_stored": count,
        }


def bench_poll(jobs: int = 200) -> dict:
    from workbench.runs import executors
    from workbench.store import jobs as job_store
    from workbench.store import runs as run_store

    with tempfile.TemporaryDirectory() as tmp:
        store, pid, _ = _store_with_project(Path(tmp) / "home")
        for i in range(jobs):
            rid = run_store.insert_queued(store, pid, "script", {}, project_name="bench")
            job_store.mark_submitted(store, rid, executor="slurm", job_id=str(10_000_000 + i))
        bin_dir = Path(tmp) / "bin"
        bin_dir.mkdir()
        log = Path(tmp) / "calls"
        real = shutil.which("squeue")
        for name in ("squeue", "sacct"):
            wrapper = bin_dir / name
            target = shutil.which(name)
            wrapper.write_text(
                f'#!/bin/sh\necho "{name}" >> {log}\n'
                + (f'exec {target} "$@"\n' if target else "exit 0\n")
            )
            wrapper.chmod(0o755)
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        t0 = time.perf_counter()
        executors.poll(store, force=True)
        poll_s = time.perf_counter() - t0
        calls = log.read_text().split() if log.exists() else []
        store.close()
        return {
            "jobs": jobs,
            "squeue_calls": calls.count("squeue"),
            "sacct_calls": calls.count("sacct"),
            "poll_s": round(poll_s, 3),
            "real_squeue": bool(real),
        }


def bench_submit(submits: int) -> dict | None:
    if not shutil.which("sbatch"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        store, _, root = _store_with_project(home)
        store.close()
        env = {**os.environ, "WORKBENCH_HOME": str(home)}
        bare, ours, ids = [], [], []
        for _ in range(submits):
            t0 = time.perf_counter()
            out = subprocess.run(
                ["sbatch", "--parsable", "--hold", "--wrap", "true"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            bare.append(time.perf_counter() - t0)
            ids.append(out.stdout.strip())
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "workbench", "run", "start", "bench", "--executor",
                 "slurm", "--json"],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            ours.append(time.perf_counter() - t0)
            ids.append(json.loads(out.stdout)["job_id"])
        # The submission itself, in this process (what the TUI and a sweep pay).
        from workbench.runs.launch import start_run
        from workbench.store import open_store

        os.environ["WORKBENCH_HOME"] = str(home)
        store = open_store()
        inproc = []
        for _ in range(submits):
            t0 = time.perf_counter()
            rid, _ = start_run(store, "bench", {}, executor="slurm")
            inproc.append(time.perf_counter() - t0)
            from workbench.store import jobs as job_store

            ids.append(job_store.job_of(store, rid).job_id)
        store.close()
        subprocess.run(["scancel", *ids], check=False)
        # The CLI's own start-up is paid by every command; shown apart from the submission.
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "workbench", "--version"], capture_output=True, env=env)
        startup = time.perf_counter() - t0
        return {
            "bare_sbatch_s": round(statistics.median(bare), 3),
            "run_start_s": round(statistics.median(ours), 3),
            "overhead_s": round(statistics.median(ours) - statistics.median(bare), 3),
            "start_run_s": round(statistics.median(inproc), 3),
            "in_process_overhead_s": round(statistics.median(inproc) - statistics.median(bare), 3),
            "cli_startup_s": round(startup, 3),
        }


def bench_array(trials: int = 100, parallel: int = 8) -> dict | None:
    """The submission a sweep of `trials` makes on Slurm: its runs recorded and
    ONE held array submitted (then cancelled), sbatch calls counted."""
    if not shutil.which("sbatch"):
        return None
    from workbench.core.files import exclusive_lock
    from workbench.projects import project_config
    from workbench.runs.executors.slurm import SlurmExecutor
    from workbench.runs.launch import create_run
    from workbench.store import jobs as job_store

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        store, _, root = _store_with_project(home)
        with open(root / "workbench.toml", "a") as f:
            f.write('[slurm]\nsbatch = ["--hold"]\n')  # held: the tasks never start
        bin_dir = Path(tmp) / "bin"
        bin_dir.mkdir()
        log = Path(tmp) / "calls"
        wrapper = bin_dir / "sbatch"
        wrapper.write_text(f'#!/bin/sh\necho sbatch >> {log}\nexec {shutil.which("sbatch")} "$@"\n')
        wrapper.chmod(0o755)
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        loaded = project_config(store, "bench")
        sweep = {"study": str(Path(tmp) / "sweep" / "study.log"), "name": "sweep-0",
                 "sweep_id": 0, "distributions": {}, "sampler": "random", "seed": 0,
                 "objective": "score"}  # fmt: skip
        t0 = time.perf_counter()
        tasks = {}
        with exclusive_lock(home / "queue.lock"):
            for index in range(trials):
                rid = create_run(store, "bench", {"_task": index}, 0, None, loaded)
                job_store.mark_submitted(store, rid, executor="slurm")
                tasks[index] = rid
        array_id = SlurmExecutor().submit_array(
            store, tasks, loaded[1], sweep=sweep, parallel=parallel, name="wb-bench-array"
        )
        submit_s = time.perf_counter() - t0
        listed = subprocess.run(
            ["squeue", "-h", "-r", "-j", array_id, "-o", "%i"], capture_output=True, text=True
        ).stdout.split()
        subprocess.run(["scancel", array_id], check=False)
        store.close()
        return {
            "trials": trials,
            "sbatch_calls": log.read_text().split().count("sbatch") if log.exists() else 0,
            "submit_s": round(submit_s, 3),
            "tasks_in_squeue": len(listed),
            "array_ids": len({i.split("_")[0] for i in listed}),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--submits", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = {
        "ingest": bench_ingest(args.points),
        "poll": bench_poll(),
        "submit": bench_submit(args.submits),
        "array": bench_array(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    ing, poll, sub = report["ingest"], report["poll"], report["submit"]
    verdict = lambda ok: "target met" if ok else "target missed"  # noqa: E731
    print(f"ingest  {ing['points']:,} points ({ing['journal_mb']} MB): {ing['ingest_s']} s"
          f"  [{verdict(ing['ingest_s'] <= 2.0)}: <= 2 s]")  # fmt: skip
    print(f"again   {ing['again_records']} records added, {ing['again_s']} s; "
          f"{ing['points_stored']:,} points stored  "
          f"[{verdict(ing['again_records'] == 0 and ing['points_stored'] == ing['points'])}]")  # fmt: skip
    print(f"poll    {poll['jobs']} jobs: {poll['squeue_calls']} squeue call(s),"
          f" {poll['sacct_calls']} sacct, {poll['poll_s']} s"
          f"  [{verdict(poll['squeue_calls'] == 1)}: one squeue]")  # fmt: skip
    if sub is None:
        print("submit  skipped: no sbatch here (scripts/slurm_up.sh starts a local cluster)")
    else:
        print(f"submit  run start {sub['run_start_s']} s vs bare sbatch {sub['bare_sbatch_s']} s:"
              f" +{sub['overhead_s']} s (of which CLI start-up {sub['cli_startup_s']} s)"
              f"  [{verdict(sub['overhead_s'] <= 0.5)}: <= 0.5 s]")  # fmt: skip
        print(f"        in process (start_run): {sub['start_run_s']} s:"
              f" +{sub['in_process_overhead_s']} s over bare sbatch"
              f"  [{verdict(sub['in_process_overhead_s'] <= 0.5)}: <= 0.5 s]")  # fmt: skip
    arr = report["array"]
    if arr is None:
        print("array   skipped: no sbatch here")
    else:
        print(f"array   {arr['trials']} trials: {arr['sbatch_calls']} sbatch call(s),"
              f" {arr['submit_s']} s to record and submit; squeue: {arr['tasks_in_squeue']}"
              f" tasks of {arr['array_ids']} array(s)"
              f"  [{verdict(arr['sbatch_calls'] == 1 and arr['array_ids'] == 1)}: one call]")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
