"""`workbench model report` on a 100,000-row hold-out.

Target: the report of a model version whose hold-out has --holdout rows (default
100,000) takes at most 5 s, end to end: `workbench model report PROJECT -o
report.html` in a fresh process (start-up, imports, loading the model,
predicting the hold-out, the bootstrap intervals of every metric, permutation
importance, curves, the data profile, the lineage, writing the HTML).

A LightGBM model (the built-in trainer, a real supervised run, 100 trees) is
trained once in a temporary store on a synthetic table of 4 x --holdout rows (8
numeric and 2 categorical features; `test_size = 0.25`, so the hold-out has
--holdout rows), binary by default, or a regression with --task regression.
The command is then timed --repeat times (median); the in-process time of the
report itself (`build_report`, as the report records it) and of rendering the HTML
are printed for reference, as is the HTML's size.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_model_report.py [--holdout 100000] [--task classification]
        [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cli_command, machine_info  # noqa: E402

TARGET_S = 5.0

TOML = """\
[project]
name = "reportbench"
task = "{task}"
[data]
train = "data/train.csv"
target = "y"
[train]
trainer = "lightgbm"
test_size = 0.25
seed = 1
params = {{ n_estimators = 100, num_leaves = 31, learning_rate = 0.1 }}
"""


def make_table(rows: int, task: str):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(42)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(8)})
    frame["region"] = rng.choice(["north", "south", "east", "west"], rows)
    frame["plan"] = rng.choice([f"plan{i}" for i in range(12)], rows)
    signal = (
        frame.x0
        + 0.5 * frame.x1
        - 0.3 * frame.x2 * frame.x3
        + (frame.region == "north") * 0.4
        + rng.normal(scale=0.8, size=rows)
    )
    frame["y"] = (signal > 0).astype(int) if task == "classification" else signal * 10 + 50
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holdout", type=int, default=100_000, help="hold-out rows")
    parser.add_argument(
        "--task", choices=["classification", "regression"], default="classification"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed report commands")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    def log(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    root = Path(tempfile.mkdtemp(prefix="wb-bench-report-"))
    try:
        env = dict(os.environ, WORKBENCH_HOME=str(root / "home"), NO_COLOR="1")
        for leaked in ("WORKBENCH_RUN_ID", "WORKBENCH_PROJECT_DIR", "WORKBENCH_PARAMS"):
            env.pop(leaked, None)
        cli = cli_command()

        def wb(*command: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*cli, *command], env=env, check=True, capture_output=True, text=True, timeout=1800
            )

        project = root / "reportbench"
        (project / "data").mkdir(parents=True)
        rows = args.holdout * 4
        log(f"writing a {rows:,}-row {args.task} table")
        make_table(rows, args.task).to_csv(project / "data" / "train.csv", index=False)
        (project / "workbench.toml").write_text(TOML.format(task=args.task))
        wb("project", "add", str(project))
        log("training LightGBM (a real run)")
        started = time.perf_counter()
        wb("run", "start", "reportbench", "--wait")
        train_s = time.perf_counter() - started

        out = root / "report.html"
        wall, cpu, built = [], [], []
        for i in range(args.repeat):
            before = _children_cpu()
            started = time.perf_counter()
            wb("model", "report", "reportbench", "-o", str(out), "--force")
            wall.append(time.perf_counter() - started)
            cpu.append(_children_cpu() - before)
            log(f"  report {i + 1}: {wall[-1]:.2f} s ({cpu[-1]:.2f} s of CPU)")
        document = json.loads(wb("model", "report", "reportbench", "--json").stdout)
        built.append(document["seconds"])
        render_s = _render_seconds(env)
        median = statistics.median(wall)
        result = {
            "benchmark": "model_report",
            "task": args.task,
            "holdout_rows": document["holdout_rows"],
            "bootstrap_rows": document["evaluated_rows"],
            "permutation_rows": document["permutation_rows"],
            "features": len(document["features"]),
            "train_s": round(train_s, 2),
            "report_command_s": {"median": round(median, 3), "all": [round(w, 3) for w in wall]},
            # user + system time of the command's process: what another program on a
            # busy machine does not inflate.
            "report_command_cpu_s": round(statistics.median(cpu), 3),
            "load_average": os.getloadavg()[0],
            "build_report_s": built[0],
            "render_html_s": render_s,
            "html_bytes": out.stat().st_size,
            "target_s": TARGET_S,
            "target_met": median <= TARGET_S,
            "machine": machine_info(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"model report, {result['holdout_rows']:,}-row hold-out ({args.task}, "
        f"{result['features']} features): {median:.2f} s median end to end, "
        f"{result['report_command_cpu_s']:.2f} s of CPU "
        f"(build_report {result['build_report_s']:.2f} s, HTML {render_s:.3f} s, "
        f"{result['html_bytes'] / 1e3:.0f} kB) -> "
        + ("target met" if result["target_met"] else "target missed")
        + f" (<= {TARGET_S:g} s)"
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _render_seconds(env: dict[str, str]) -> float:
    """Rendering the HTML from a built report, in this process (median of 5)."""
    os.environ["WORKBENCH_HOME"] = env["WORKBENCH_HOME"]
    from workbench.models.registry import resolve
    from workbench.models.report import build_report
    from workbench.models.report_html import render_html
    from workbench.store import open_store

    store = open_store()
    try:
        report = build_report(store, resolve(store, "reportbench"))
    finally:
        store.close()
    times = []
    for _ in range(5):
        started = time.perf_counter()
        render_html(report)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 4)


if __name__ == "__main__":
    main()
