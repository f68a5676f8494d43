"""CLI start-up and data checks through the CLI: what the command line adds on top
of the work itself.

    python benchmarks/bench_cli_startup.py [--rows 200000] [--runs 3] [--json]

1. `workbench --help` against `python -c "import click"` (the floor of any click
   program). Target: `--help` <= 2x the bare click import.
2. `workbench data validate` and `workbench data drift` on a new rows x 20 CSV,
   each a fresh process, against the same work in one process: `pandas.read_csv`
   of the file plus the drift report against the (cached) reference profile.

Every figure is the median of `--runs` runs (3 at least). The reference profile is
computed once before timing (it is cached per reference version, by design).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cli_command, emit, log, machine_info  # noqa: E402
from bench_drift import make_data  # noqa: E402  (same 20 columns as the drift benchmark)

HELP_TARGET = 2.0

IN_PROCESS = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
import pandas as pd
t1 = time.perf_counter()
frame = pd.read_csv(sys.argv[2])
t2 = time.perf_counter()
from workbench.data.checks import reference_profile_for
from workbench.data.drift import drift_report
from workbench.data.versions import register
from workbench.projects import project_config
from workbench.store import open_store
store = open_store()
row, config = project_config(store, "bench")
version = register(store, row["id"], config.train_file)
profile = reference_profile_for(store, version["id"], config)
import scipy.spatial, scipy.stats  # start-up, as the drift module's imports used to be
t3 = time.perf_counter()
report = drift_report(profile, frame)
t4 = time.perf_counter()
print(json.dumps({"import_pandas_s": t1 - t0, "read_csv_s": t2 - t1, "drift_s": t4 - t3,
                  "drifted_columns": report["drifted_columns"]}))
"""


def _timed(cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
    return elapsed


def _median(cmd: list[str], env: dict[str, str], runs: int, ok: tuple[int, ...] = (0,)) -> float:
    return statistics.median(_timed(cmd, env, ok) for _ in range(runs))


def _report(result: dict) -> str:
    h, d = result["help"], result["data"]
    return "\n".join(
        [
            f"medians of {result['runs']} runs",
            f"  python -c 'import click'  {h['import_click_s']:.3f} s",
            f"  workbench --help          {h['workbench_help_s']:.3f} s ({h['ratio']:.2f}x)",
            f"  {result['rows']:,} rows x 20 columns ({d['csv_mib']:.0f} MiB CSV):",
            f"    CLI         data validate {d['cli_validate_s']:.2f} s"
            f" + data drift {d['cli_drift_s']:.2f} s = {d['cli_total_s']:.2f} s",
            f"    in-process  read_csv {d['read_csv_s']:.2f} s"
            f" + drift report {d['in_process_drift_s']:.2f} s = {d['in_process_total_s']:.2f} s",
            f"target --help <= {HELP_TARGET:g}x import click: "
            + ("target met" if h["target_met"] else "target missed"),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = max(3, args.runs)
    import pandas as pd

    cli = cli_command()
    result: dict[str, object] = {"rows": args.rows, "runs": runs}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = dict(os.environ, WORKBENCH_HOME=str(root / "home"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))

        click_s = _median([sys.executable, "-c", "import click"], env, runs)
        help_s = _median([*cli, "--help"], env, runs)
        result["help"] = {
            "import_click_s": click_s,
            "workbench_help_s": help_s,
            "ratio": help_s / click_s,
            "target_met": help_s / click_s <= HELP_TARGET,
        }

        log(f"making {args.rows:,} rows x 20 columns…")
        data = make_data(args.rows, root)
        project = root / "bench"
        (project / "data").mkdir(parents=True)
        pd.read_parquet(data["reference"]).to_csv(project / "data" / "train.csv", index=False)
        current = root / "current.csv"
        pd.read_parquet(data["current"]).to_csv(current, index=False)
        (project / "workbench.toml").write_text(
            '[project]\nname = "bench"\n[data]\ntrain = "data/train.csv"\ntarget = "bin1"\n'
            '[train]\ntrainer = "lightgbm"\n'
        )
        _timed([*cli, "project", "add", str(project)], env)
        _timed([*cli, "data", "schema", "bench"], env)
        # Computes and caches the reference profile (not timed).
        _timed([*cli, "data", "drift", "bench", str(current)], env, ok=(0, 1))

        validate_s = _median([*cli, "data", "validate", "bench", str(current)], env, runs, (0, 1))
        drift_s = _median([*cli, "data", "drift", "bench", str(current)], env, runs, (0, 1))
        inner = []
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-c", IN_PROCESS, str(project), str(current)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            inner.append(json.loads(done.stdout))
        read_s = statistics.median(r["read_csv_s"] for r in inner)
        inner_drift_s = statistics.median(r["drift_s"] for r in inner)
        result["data"] = {
            "csv_mib": current.stat().st_size / 2**20,
            "cli_validate_s": validate_s,
            "cli_drift_s": drift_s,
            "cli_total_s": validate_s + drift_s,
            "read_csv_s": read_s,
            "in_process_drift_s": inner_drift_s,
            "in_process_total_s": read_s + inner_drift_s,
        }
    result["machine"] = machine_info()
    emit(result, _report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
