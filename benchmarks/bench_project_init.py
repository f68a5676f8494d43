"""`workbench project init --data` on a 100k-row CSV against pandas reading it.

Target: `workbench project init NEW --data FILE --target y` takes at most 2x the
time pandas takes to read FILE, both measured the same way: a fresh process
from start to exit, so each pays its interpreter start-up and its imports.

Alternates N times between
  (a) `python -c "import pandas; pandas.read_csv(FILE)"`
  (b) `workbench project init NEW --data FILE --target y` (a new folder and a
      fresh store each time: checks, read, task inference, copy, config, register)
and reports median / p90 of each and the ratio median(b) / median(a). For
reference it also reports `pandas.read_csv(FILE)` alone inside one process
(no start-up, no import) and `workbench --version` (bare CLI start-up).

The CSV (10 numeric columns, 2 text columns, a binary text target) is
generated in a temporary folder, removed at the end with the stores.
Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_project_init.py [--rows 100000] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cli_command, emit, log, machine_info, offline_env, summary  # noqa: E402

TARGET_RATIO = 2.0


def make_csv(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows).round(4) for i in range(10)})
    frame["city"] = rng.choice(["Oslo", "Bergen", "Tromsø", "Bodø"], size=rows)
    frame["plan"] = rng.choice(["basic", "plus", "pro"], size=rows)
    frame["y"] = np.where(frame["x0"] + rng.normal(size=rows) > 0, "yes", "no")
    frame.to_csv(path, index=False)


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def measure(rows: int, repeat: int, warmup: int) -> dict:
    import os

    import pandas as pd

    root = Path(tempfile.mkdtemp(prefix="wb-bench-init-"))
    try:
        data = root / "table.csv"
        log(f"writing {rows} rows to {data} ...")
        make_csv(data, rows)
        env = offline_env(dict(os.environ), NO_COLOR="1")
        for leaked in ("WORKBENCH_RUN_ID", "WORKBENCH_PROJECT_DIR", "WORKBENCH_PARAMS"):
            env.pop(leaked, None)
        cli = cli_command()
        read = [sys.executable, "-c", f"import pandas; pandas.read_csv({str(data)!r})"]
        pandas_s, init_s, version_s, in_process_s = [], [], [], []
        for i in range(warmup + repeat):
            home = root / f"home{i}"
            init_env = dict(env, WORKBENCH_HOME=str(home))
            init = [*cli, "project", "init", str(root / f"p{i}"), "--data", str(data)]
            a = _timed(read, env)
            b = _timed([*init, "--target", "y"], init_env)
            c = _timed([*cli, "--version"], init_env)
            start = time.perf_counter()
            pd.read_csv(data)
            d = time.perf_counter() - start
            if i >= warmup:
                pandas_s.append(a)
                init_s.append(b)
                version_s.append(c)
                in_process_s.append(d)
                log(f"  {i - warmup + 1}/{repeat}: pandas {a:.3f} s, init {b:.3f} s")
        ratio = summary(init_s)["median"] / summary(pandas_s)["median"]
        return {
            "rows": rows,
            "file_mib": data.stat().st_size / 2**20,
            "repeat": repeat,
            "warmup": warmup,
            "cli": " ".join(cli),
            "pandas_process_s": summary(pandas_s),
            "project_init_s": summary(init_s),
            "read_csv_in_process_s": summary(in_process_s),
            "cli_version_s": summary(version_s),
            "ratio": ratio,
            "target_ratio": TARGET_RATIO,
            "target_met": ratio <= TARGET_RATIO,
            "machine": machine_info(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(r: dict) -> str:
    ms = lambda s: f"{s * 1000:7.0f} ms"  # noqa: E731
    rows = [
        ("(a) python: import pandas; read_csv", r["pandas_process_s"]),
        ("(b) workbench project init --data", r["project_init_s"]),
        ("read_csv alone, in process", r["read_csv_in_process_s"]),
        ("workbench --version (bare CLI)", r["cli_version_s"]),
    ]
    lines = [
        f"project init --data on {r['rows']} rows ({r['file_mib']:.1f} MiB CSV),"
        f" {r['repeat']} runs each, {r['warmup']} warm-up",
        f"{'':40} {'median':>10} {'p90':>10}",
        *(f"{label:40} {ms(s['median'])} {ms(s['p90'])}" for label, s in rows),
        "",
        f"ratio (b) / (a): {r['ratio']:.2f}",
        f"target: ratio <= {r['target_ratio']:g} -> "
        + ("target met" if r["target_met"] else "target missed"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the CSV (100000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = parser.parse_args(argv)
    if args.repeat < 3:
        parser.error("--repeat must be at least 3")
    if args.rows < 10:
        parser.error("--rows must be at least 10")
    emit(measure(args.rows, args.repeat, max(0, args.warmup)), report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
