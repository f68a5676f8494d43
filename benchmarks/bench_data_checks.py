"""`workbench data check` of a new 1M-row x 20-column CSV, end to end through the
CLI, against the floor measured in the same run; `workbench data validate` +
`workbench data drift` of another new CSV beside it, for reference.

    python benchmarks/bench_data_checks.py [--rows 1000000] [--repeats 3] [--json]

Set-up (not timed): the drift benchmark's data (`bench_drift.make_data`), its
reference written as a project's train.csv; `workbench project add`, `workbench
data schema` (infers schema.toml) and `workbench data add` of the reference,
which computes and stores its drift profile (timed once, reported apart).

Each repeat writes NEW current CSVs (the batch's rows in another order: new
content, new hash, the same distribution) and times, each as a fresh process:

- `workbench data check bench FILE --json`: start-up, reading with every
  malformed-file check, hashing and registering the new file, all validation
  checks, the drift report against the stored profile, storing both reports;
- the floor: `python -c` that imports pandas, `pandas.read_csv`s the file and
  runs the in-process drift report against the same stored profile;
- for reference, on a second new file: `workbench data validate bench FILE
  --json`, then `workbench data drift bench FILE --json`.

The order of the three rotates from repeat to repeat. Medians over the repeats,
of wall time and of CPU time (user + system of the child, less sensitive to
other work on the machine); the load average is reported before and after.
Target: `data check` <= 2x the floor (wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from _common import cli_command, emit, log, machine_info  # noqa: E402
from bench_drift import make_data  # noqa: E402  (same data as the drift benchmark)

TARGET_RATIO = 2.0
TOML = (
    '[project]\nname = "bench"\n[data]\ntrain = "data/train.csv"\ntarget = "bin1"\n'
    '[train]\ntrainer = "lightgbm"\n'
)
FLOOR = r"""
import json, sys
import pandas as pd
frame = pd.read_csv(sys.argv[1])
from workbench.data.drift import drift_report
profile = json.loads(open(sys.argv[2], encoding="utf-8").read())["profile"]
print(json.dumps({"drifted_columns": drift_report(profile, frame)["drifted_columns"]}))
"""

PROFILE = r"""
import json, sys
from workbench.data.drift import reference_profile
from workbench.data.reading import read_checked
profile = reference_profile(read_checked(__import__("pathlib").Path(sys.argv[1])))
open(sys.argv[2], "w", encoding="utf-8").write(json.dumps({"profile": profile}))
"""


def write_csv(table, path: Path) -> None:
    import pyarrow.csv as pc

    pc.write_csv(table, path, write_options=pc.WriteOptions(quoting_style="needed"))


def timed(
    command: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) and stdout of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(command[:4])} ... exited {done.returncode}:\n{done.stderr}")
    return seconds, cpu, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (medians)")
    import numpy as np
    import pyarrow.parquet as pq

    cli = cli_command()
    result: dict = {"machine": machine_info(), "rows": args.rows, "repeats": []}
    result["load_before"] = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log(f"making {args.rows:,} rows x 20 columns…")
        data = make_data(args.rows, root)
        project = root / "bench"
        (project / "data").mkdir(parents=True)
        write_csv(pq.read_table(data["reference"]), project / "data" / "train.csv")
        (project / "workbench.toml").write_text(TOML)
        batch = pq.read_table(data["current"])
        env = dict(os.environ, WORKBENCH_HOME=str(root / "home"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        timed([*cli, "project", "add", str(project)], env)
        timed([*cli, "data", "schema", "bench"], env)
        train = project / "data" / "train.csv"
        seconds, _, out = timed([*cli, "data", "add", "bench", str(train), "--json"], env)
        result["data_add_reference_s"] = seconds
        sha = json.loads(out)["sha256"]
        stored = sorted((root / "home" / "cache" / "drift-profiles").glob(f"{sha}.v*.json"))
        result["profile_stored_at_add"] = bool(stored)
        if not stored:  # a workbench older than stored profiles: the floor gets one anyway
            log("data add stored no drift profile: computing one for the floor")
            stored = [root / "profile.json"]
            timed([sys.executable, "-c", PROFILE, str(train), str(stored[0])], env)
        for repeat in range(args.repeats):
            row: dict = {}
            files = {}
            for part in ("check", "separate"):
                files[part] = root / f"batch-{repeat}-{part}.csv"
                seed = 2 * repeat + (part == "separate")
                order = np.random.default_rng(seed).permutation(batch.num_rows)
                write_csv(batch.take(order), files[part])
            row["csv_mib"] = files["check"].stat().st_size / 2**20
            log(f"repeat {repeat + 1}/{args.repeats}: {row['csv_mib']:.0f} MiB per file")

            def run_check() -> None:
                row["check_s"], row["check_cpu_s"], out = timed(
                    [*cli, "data", "check", "bench", str(files["check"]), "--json"],
                    env,
                    ok=(0, 1),
                )
                report = json.loads(out)
                row["check_drifted_columns"] = report["drift"]["drifted_columns"]

            def run_floor() -> None:
                row["floor_s"], row["floor_cpu_s"], out = timed(
                    [sys.executable, "-c", FLOOR, str(files["check"]), str(stored[-1])], env
                )
                row["floor_drifted_columns"] = json.loads(out)["drifted_columns"]

            def run_separate() -> None:
                row["validate_s"], row["validate_cpu_s"], _ = timed(
                    [*cli, "data", "validate", "bench", str(files["separate"]), "--json"],
                    env,
                    ok=(0, 1),
                )
                row["drift_s"], row["drift_cpu_s"], out = timed(
                    [*cli, "data", "drift", "bench", str(files["separate"]), "--json"], env
                )
                row["separate_drifted_columns"] = json.loads(out)["drifted_columns"]

            parts = [run_check, run_floor, run_separate]
            shift = repeat % len(parts)
            for part in parts[shift:] + parts[:shift]:
                part()
            row["separate_s"] = row["validate_s"] + row["drift_s"]
            row["separate_cpu_s"] = row["validate_cpu_s"] + row["drift_cpu_s"]
            row["ratio"] = row["check_s"] / row["floor_s"]
            row["separate_ratio"] = row["separate_s"] / row["floor_s"]
            result["repeats"].append(row)
            for path in files.values():
                path.unlink()
        result["csv_mib"] = result["repeats"][0]["csv_mib"]
    rows = result["repeats"]
    for key in (
        "check_s",
        "check_cpu_s",
        "floor_s",
        "floor_cpu_s",
        "validate_s",
        "drift_s",
        "separate_s",
        "separate_cpu_s",
    ):
        result[f"median_{key}"] = statistics.median(r[key] for r in rows)
    result["ratio"] = result["median_check_s"] / result["median_floor_s"]
    result["cpu_ratio"] = result["median_check_cpu_s"] / result["median_floor_cpu_s"]
    result["separate_ratio"] = result["median_separate_s"] / result["median_floor_s"]
    result["children_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result["same_verdict"] = all(
        r["check_drifted_columns"] == r["floor_drifted_columns"] == r["separate_drifted_columns"]
        for r in rows
    )
    result["load_after"] = list(os.getloadavg())
    result["target_ratio"] = TARGET_RATIO
    result["target_met"] = result["ratio"] <= TARGET_RATIO
    emit(result, report, args.json)
    return 0


def report(result: dict) -> str:
    load = ", ".join(
        f"{when} {' '.join(f'{x:.2f}' for x in result[f'load_{when}'])}"
        for when in ("before", "after")
    )
    lines = [
        f"data checks through the CLI on a new {result['rows']:,} x 20 CSV"
        f" ({result['csv_mib']:.0f} MiB), {len(result['repeats'])} repeats, medians",
        f"  load average (1, 5, 15 min): {load}",
        "  data add of the reference ("
        + ("profile stored" if result["profile_stored_at_add"] else "no profile stored")
        + f", once): {result['data_add_reference_s']:.2f} s",
    ]
    for i, r in enumerate(result["repeats"], 1):
        lines.append(
            f"  repeat {i}: check {r['check_s']:.2f} s; floor {r['floor_s']:.2f} s;"
            f" {r['ratio']:.2f}x | validate {r['validate_s']:.2f} s + drift {r['drift_s']:.2f} s"
            f" = {r['separate_s']:.2f} s, {r['separate_ratio']:.2f}x"
        )
    lines += [
        f"  CLI data check {result['median_check_s']:.2f} s"
        f" (CPU {result['median_check_cpu_s']:.2f} s)",
        f"  floor (import pandas, read_csv, in-process drift) {result['median_floor_s']:.2f} s"
        f" (CPU {result['median_floor_cpu_s']:.2f} s); CPU ratio {result['cpu_ratio']:.2f}x",
        f"  for reference: CLI validate {result['median_validate_s']:.2f} s"
        f" + drift {result['median_drift_s']:.2f} s = {result['median_separate_s']:.2f} s,"
        f" {result['separate_ratio']:.2f}x the floor",
        f"  peak RSS of one process {result['children_peak_rss_mib']:.0f} MiB;"
        f" same drifted columns as the floor: {'yes' if result['same_verdict'] else 'NO'}",
        f"ratio {result['ratio']:.2f}x, target <= {TARGET_RATIO:g}x: "
        + ("target met" if result["target_met"] else "target missed"),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
