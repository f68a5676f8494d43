"""Prediction throughput of an ONNX export against the native model, for both
built-in frameworks: LightGBM (the penguins sample: multiclass, categoricals) and
a scikit-learn pipeline (the autompg sample: imputer + one-hot + random forest).

Target: for each framework, onnxruntime predicts a 100,000-row table at least as
fast as the native model does, counting the conversion of the DataFrame into
ONNX inputs (`onnx_format.feeds`).

The script trains both samples once in a fresh temporary store, exports each with
`workbench model export PROJECT --format onnx`, then builds a 100,000-row table by
drawing rows of the project's training data (with replacement, fixed seed) and
times, in this process, --repeat runs (after one untimed warm-up; median and best) of:

  native         TrainedModel.predict(frame): what `workbench` itself predicts with
  onnx           feeds(frame, model.json) + InferenceSession.run
  onnx run only  InferenceSession.run on inputs built beforehand

By default each library uses its own threading: LightGBM and onnxruntime all
cores, the random forest one (its n_jobs is unset). `--threads N` sets
OMP_NUM_THREADS (LightGBM) and onnxruntime's intra_op_num_threads to N; with
`--threads 1` every part runs on one core, which also keeps the figures steady
on a machine shared with other work.

It also reports the largest difference between the two on those rows (class
probabilities for the classifier). Timing is not a test: exits 0 either way,
printing "target met" / "target missed".

    python benchmarks/bench_onnx.py [--rows 100000] [--repeat 5] [--threads N] [--json]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cli_command, emit, fmt_rate, log, machine_info  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLES = {"penguins": ("penguins-lightgbm", "lightgbm"), "autompg": ("autompg-sklearn", "sklearn")}


def _timed(fn, repeat: int) -> dict[str, float]:
    """Median and best seconds of `repeat` calls, after one untimed warm-up. The
    best is the steadier figure on a machine shared with other work."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times), "best_s": min(times)}


def _prepare(root: Path, env: dict[str, str]) -> None:
    cli = cli_command()
    for project, (sample, _) in SAMPLES.items():
        shutil.copytree(REPO / "sample_projects" / sample, root / sample)
        for args in (
            ["project", "add", str(root / sample)],
            ["run", "start", project, "--wait"],
            ["model", "export", project, "--format", "onnx", "-o", str(root / f"{project}.onnx")],
        ):
            log(f"workbench {' '.join(args)}")
            done = subprocess.run([*cli, *args], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"workbench {' '.join(args)} failed:\n{done.stderr}")


def _measure(root: Path, project: str, rows: int, repeat: int, threads: int | None) -> dict:
    import onnxruntime as ort
    import pandas as pd

    from workbench.models import registry
    from workbench.models.onnx_format import CONTRACT_FILE, MODEL_FILE, compare, feeds
    from workbench.store.db import open_store

    store = open_store()
    native = registry.load_model(registry.resolve(store, project))
    store.close()
    sample, framework = SAMPLES[project]
    train = pd.read_csv(REPO / "sample_projects" / sample / "data" / "train.csv")
    frame = train[native.features].sample(rows, replace=True, random_state=0)
    frame = frame.reset_index(drop=True)
    folder = root / f"{project}.onnx"
    contract = json.loads((folder / CONTRACT_FILE).read_text())
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
    )
    prepared = feeds(frame, contract)

    log(f"{project}: timing {rows:,} rows, {repeat} repeats")
    timings = {
        "native": _timed(lambda: native.predict(frame), repeat),
        "onnx": _timed(lambda: session.run(None, feeds(frame, contract)), repeat),
        "onnx run only": _timed(lambda: session.run(None, prepared), repeat),
    }
    for timing in timings.values():
        timing["median_per_s"] = rows / timing["median_s"]
        timing["best_per_s"] = rows / timing["best_s"]
        timing["vs_native"] = timings["native"]["median_s"] / timing["median_s"]
    check = compare(session, native, frame, contract)
    return {
        "project": project,
        "framework": framework,
        "rows": rows,
        "timings": timings,
        "max_abs_diff": check["max_abs_diff"],
        "label_agreement": check["label_agreement"],
        "onnxruntime": ort.__version__,
    }


def report(result: dict) -> str:
    lines = [
        f"{result['rows']:,} rows, {result['repeat']} repeats, threads: {result['threads']} "
        f"({result['machine']['cpu_count']} cores, {result['machine']['cpu_model']}, "
        "load average {:.1f} before, {:.1f} after)".format(*result["load_average"]),
        "",
        f"{'framework':<10} {'method':<24} {'median':>10} {'best':>10} {'vs native':>10}",
    ]
    for part in result["parts"]:
        for method, timing in part["timings"].items():
            lines.append(
                f"{part['framework']:<10} {method:<24} {fmt_rate(timing['median_per_s']):>10} "
                f"{fmt_rate(timing['best_per_s']):>10} {timing['vs_native']:>9.2f}x"
            )
        agreement = part["label_agreement"]
        lines.append(
            f"{'':<10} max |difference| {part['max_abs_diff']:.2g}"
            + ("" if agreement is None else f", labels agree on {agreement:.1%}")
        )
    verdict = "met" if result["target_met"] else "missed"
    lines += [
        "",
        f"onnx (with input building) at least as fast as native for both: target {verdict}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="threads for every part")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before LightGBM is imported

    load_before = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="wb-bench-onnx-"))
    saved_home = os.environ.get("WORKBENCH_HOME")
    try:
        os.environ["WORKBENCH_HOME"] = str(root / "home")
        env = {**os.environ, "NO_COLOR": "1"}
        for leaked in ("WORKBENCH_RUN_ID", "WORKBENCH_PROJECT_DIR", "WORKBENCH_PARAMS"):
            env.pop(leaked, None)
        _prepare(root, env)
        parts = [
            _measure(root, project, args.rows, args.repeat, args.threads) for project in SAMPLES
        ]
    finally:
        if saved_home is None:
            os.environ.pop("WORKBENCH_HOME", None)
        else:
            os.environ["WORKBENCH_HOME"] = saved_home
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "machine": machine_info(),
        "rows": args.rows,
        "repeat": args.repeat,
        "threads": args.threads or "library defaults",
        "parts": parts,
        "load_average": [load_before, os.getloadavg()[0]],
        "target_met": all(p["timings"]["onnx"]["vs_native"] >= 1.0 for p in parts),
    }
    emit(result, report, args.json)


if __name__ == "__main__":
    main()
