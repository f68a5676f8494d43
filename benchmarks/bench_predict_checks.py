"""What the file checks cost `workbench predict`: the same 100k-row CSV predicted
with a bundle with the checks (empty, header-only, binary, UTF-8, delimiter, rows
with the wrong number of fields) and with them stubbed out, in one process.

    python benchmarks/bench_predict_checks.py [--rows 100000] [--runs 3] [--json]

Target: the checks add <= 10 % to predict's time (medians of --runs runs each side).
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.10


def _bundle(root: Path) -> Path:
    env = {**os.environ, "WORKBENCH_HOME": str(root / "home"), "NO_COLOR": "1"}
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", root / "penguins")
    bundle = root / "bundle"
    for args in (
        ["project", "add", str(root / "penguins")],
        ["run", "start", "penguins", "--wait"],
        ["model", "export", "penguins", "-o", str(bundle)],
    ):
        subprocess.run(
            [sys.executable, "-m", "workbench", *args],
            env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import pandas as pd

    from workbench.models import bundle_runtime as runtime

    with tempfile.TemporaryDirectory(prefix="wb-bench-predict-") as tmp:
        root = Path(tmp)
        bundle = runtime.load(_bundle(root))
        train = pd.read_csv(REPO / "sample_projects" / "penguins-lightgbm" / "data" / "train.csv")
        frame = pd.concat([train] * (args.rows // len(train) + 1), ignore_index=True)
        source = root / "input.csv"
        frame.head(args.rows).to_csv(source, index=False)
        checked = runtime.check_table

        def unchecked(path, features, keep_going=False):
            return runtime.TableScan(runtime.input_columns(path), 1, [])

        times: dict[str, list[float]] = {"with_checks": [], "without_checks": [], "check": []}
        for _ in range(args.runs):
            for side, check in (("with_checks", checked), ("without_checks", unchecked)):
                runtime.check_table = check
                out = root / f"{side}.csv"
                started = time.perf_counter()
                runtime.predict_file(bundle, source, out)
                times[side].append(time.perf_counter() - started)
                out.unlink()
            runtime.check_table = checked
            started = time.perf_counter()
            checked(source, bundle.model.names)
            times["check"].append(time.perf_counter() - started)
        runtime.check_table = checked

    median = {k: statistics.median(v) for k, v in times.items()}
    overhead = median["with_checks"] / median["without_checks"] - 1
    result = {
        "rows": args.rows,
        "runs": args.runs,
        "seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "median_s": {k: round(v, 4) for k, v in median.items()},
        "check_share_of_predict": round(median["check"] / median["without_checks"], 4),
        "overhead": round(overhead, 4),
        "target": TARGET,
        "ok": median["check"] / median["without_checks"] <= TARGET,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{args.rows:,} rows: predict {median['without_checks']:.3f} s without checks, "
            f"{median['with_checks']:.3f} s with; the check pass alone {median['check']:.3f} s "
            f"= {result['check_share_of_predict']:.1%} of predict (target <= {TARGET:.0%})"
        )


if __name__ == "__main__":
    main()
