"""Data drift of a 1M-row batch against a 1M-row reference, side by side with Evidently.

Target: `reference_profile` of the reference plus `drift_report` of the current batch,
1,000,000 rows x 20 columns each (12 numeric, 6 categorical, 2 binary), take at
most 5 s of wall time.

The data are generated once (fixed seeds) and written to Parquet in a temporary
folder. Every part then runs in a fresh interpreter (a small embedded script) that
reads the two files, resets the kernel's peak-RSS mark (`/proc/self/clear_refs`),
and times only the drift work, so reading the files is outside both the timed
window and the "peak above loaded" memory figure.

  workbench  reference_profile + drift_report   (median of --repeat fresh processes)
  evidently  Report([DataDriftPreset()]).run(current, reference), then .dict()

Evidently runs in another interpreter (`--peer-python`, e.g. a separate virtualenv
with evidently installed) so that this project's environment stays clean; without
it, or when it fails, it is skipped with a note. It gets telemetry switched off
(`_common.OFFLINE_ENV`, which sets DO_NOT_TRACK) and no network is used.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_drift.py [--rows 1000000] [--repeat 3]
        [--peer-python PATH] [--json]
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

from _common import emit, log, machine_info, offline_env, run_embedded  # noqa: E402  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 5.0

# Shared by both embedded scripts: RSS and its peak from /proc (Linux); elsewhere
# the peak falls back to ru_maxrss, which then includes loading the data.
MEMORY = r"""
import resource, sys

def _status(key):
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None

def rss():
    return _status("VmRSS")

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False

def peak():
    found = _status("VmHWM")
    if found is not None:
        return found
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
"""

WORKBENCH_SCRIPT = (
    MEMORY
    + r"""
import json, time
import pandas as pd
from workbench.data.drift import drift_report, reference_profile
cfg = json.loads(sys.argv[1])
reference = pd.read_parquet(cfg["reference"])
current = pd.read_parquet(cfg["current"])
loaded = rss()
clean_peak = reset_peak()
t0 = time.perf_counter()
profile = reference_profile(reference)
t1 = time.perf_counter()
report = drift_report(profile, current)
t2 = time.perf_counter()
print("BENCH_RESULT " + json.dumps({
    "profile_s": t1 - t0, "report_s": t2 - t1, "total_s": t2 - t0,
    "rss_loaded": loaded, "peak_rss": peak(), "peak_includes_loading": not clean_peak,
    "profile_bytes": len(json.dumps(profile, separators=(",", ":"))),
    "drifted_columns": report["drifted_columns"], "dataset_drift": report["dataset_drift"],
    "columns": {c["column"]: [c["method"], c["drifted"]] for c in report["columns"]},
}))
"""
)

EVIDENTLY_METHODS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
}

EVIDENTLY_SCRIPT = (
    MEMORY
    + r"""
import json, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import evidently
from evidently import Report
from evidently.presets import DataDriftPreset
cfg = json.loads(sys.argv[1])
reference = pd.read_parquet(cfg["reference"])
current = pd.read_parquet(cfg["current"])
loaded = rss()
clean_peak = reset_peak()
t0 = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(current, reference)
t1 = time.perf_counter()
found = snapshot.dict()
t2 = time.perf_counter()
columns, drifted_count = {}, None
for metric in found["metrics"]:
    config = metric.get("config", {})
    if "column" in config and "method" in config:
        method, threshold, value = config["method"], config["threshold"], metric["value"]
        if "p_value" in method:
            # Evidently's K-S test drifts at p <= threshold, the others at p < threshold.
            drifted = value <= threshold if method.startswith("K-S") else value < threshold
        else:
            drifted = value >= threshold
        columns[config["column"]] = [method, bool(drifted)]
    elif isinstance(metric.get("value"), dict) and "count" in metric["value"]:
        drifted_count = metric["value"]["count"]
print("BENCH_RESULT " + json.dumps({
    "run_s": t1 - t0, "dict_s": t2 - t1, "total_s": t2 - t0,
    "rss_loaded": loaded, "peak_rss": peak(), "peak_includes_loading": not clean_peak,
    "drifted_columns": drifted_count, "columns": columns,
    "version": evidently.__version__, "pandas": pd.__version__,
}))
"""
)


def make_data(rows: int, folder: Path) -> dict[str, str]:
    """Reference and current Parquet files: 20 columns, 5 of them shifted in current."""
    import numpy as np
    import pandas as pd

    def frame(seed: int, shifted: bool) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        cols: dict[str, object] = {}
        makers = [
            lambda: rng.normal(0.2 if shifted else 0.0, 1.0, rows),  # mean +0.2 std
            lambda: rng.normal(5.0, 1.3 if shifted else 1.0, rows),  # std x1.3
            lambda: rng.lognormal(0.0, 1.0, rows),
            lambda: rng.uniform(-1.0, 1.0, rows),
            lambda: rng.gamma(2.0, 2.0, rows),
            lambda: rng.exponential(3.0, rows),
            lambda: rng.normal(100.0, 15.0, rows),
            lambda: rng.standard_t(5, rows),
            lambda: rng.beta(2.0, 5.0, rows),
            lambda: rng.normal(-3.0, 0.5, rows),
        ]
        for i, make in enumerate(makers):
            cols[f"num{i}"] = make()
        cols["int0"] = rng.integers(0, 1000, rows) + (100 if shifted else 0)
        cols["int1"] = rng.poisson(30, rows)
        for i, k in enumerate([3, 5, 10, 20, 50, 200]):
            labels = np.array([f"c{i}_{j}" for j in range(k + 1)])
            codes = rng.integers(0, k, rows)
            if shifted and i == 0:
                codes[rng.random(rows) < 0.05] = k  # a category new in current
            cols[f"cat{i}"] = labels[codes]
        cols["bin0"] = (rng.random(rows) < (0.6 if shifted else 0.5)).astype(np.int64)
        cols["bin1"] = np.array(["yes", "no"])[rng.integers(0, 2, rows)]
        return pd.DataFrame(cols)

    paths = {"reference": folder / "reference.parquet", "current": folder / "current.parquet"}
    frame(1, False).to_parquet(paths["reference"])
    frame(2, True).to_parquet(paths["current"])
    return {k: str(v) for k, v in paths.items()}


def measure_workbench(data: dict[str, str], work: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return run_embedded(sys.executable, WORKBENCH_SCRIPT, [json.dumps(data)], env, work)


def measure_evidently(peer_python: str | None, data: dict[str, str], work: Path) -> dict:
    if not peer_python:
        return {"skipped": "no --peer-python given"}
    if not (Path(peer_python).is_file() and os.access(peer_python, os.X_OK)):
        return {"skipped": f"--peer-python {peer_python} is not an executable file"}
    env = offline_env(os.environ)
    env.pop("PYTHONPATH", None)
    return run_embedded(peer_python, EVIDENTLY_SCRIPT, [json.dumps(data)], env, work, timeout=1800)


def agreement(ours: dict, theirs: dict) -> dict:
    """Columns where both picked the same method / reached the same decision."""
    common = sorted(set(ours) & set(theirs))
    same_method = [c for c in common if ours[c][0] == EVIDENTLY_METHODS.get(theirs[c][0])]
    same_decision = [c for c in common if ours[c][1] == theirs[c][1]]
    return {
        "columns": len(common),
        "same_method": len(same_method),
        "same_decision": len(same_decision),
        "different": {
            c: {"workbench": ours[c], "evidently": theirs[c]}
            for c in common
            if c not in same_method or c not in same_decision
        },
    }


def measure(args, log) -> dict:
    work = Path(tempfile.mkdtemp(prefix="wb-bench-drift-"))
    try:
        log(f"writing {args.rows:,} x 20 reference and current Parquet files ...")
        data = make_data(args.rows, work)
        tries = []
        for i in range(args.repeat):
            one = measure_workbench(data, work)
            if "error" in one:
                log(f"workbench: {one['error']}")
                tries.append(one)
                break
            log(
                f"workbench [{i + 1}/{args.repeat}]: profile {one['profile_s']:.2f} s + report"
                f" {one['report_s']:.2f} s = {one['total_s']:.2f} s,"
                f" peak RSS {one['peak_rss'] / 2**20:.0f} MiB"
                f" ({(one['peak_rss'] - one['rss_loaded']) / 2**20:.0f} MiB above the loaded data)"
            )
            tries.append(one)
        log("evidently DataDriftPreset ..." if args.peer_python else "evidently: no --peer-python")
        peer = measure_evidently(args.peer_python, data, work)
        if "total_s" in peer:
            log(f"evidently: {peer['total_s']:.2f} s, peak RSS {peer['peak_rss'] / 2**20:.0f} MiB")
        elif "error" in peer or "skipped" in peer:
            log(f"evidently: {peer.get('skipped') or peer.get('error')}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    good = [t for t in tries if "total_s" in t]
    result: dict = {
        "benchmark": "data_drift",
        "target": f"reference_profile + drift_report of {args.rows:,} x 20 <= {TARGET_S} s",
        "rows": args.rows,
        "columns": 20,
        "repeat": args.repeat,
        "workbench": None,
        "evidently": peer,
        "machine": machine_info(),
    }
    if good:
        median = sorted(good, key=lambda t: t["total_s"])[len(good) // 2]
        result["workbench"] = {
            **median,
            "total_s_all": [t["total_s"] for t in good],
            "total_s_median": statistics.median(t["total_s"] for t in good),
        }
        # Each try loads the data afresh; memory is reported for the try whose drift
        # work took the most memory above its loaded data.
        hungriest = max(good, key=lambda t: t["peak_rss"] - t["rss_loaded"])
        result["workbench"]["memory"] = {
            "peak_rss": hungriest["peak_rss"],
            "rss_loaded": hungriest["rss_loaded"],
            "above_loaded": hungriest["peak_rss"] - hungriest["rss_loaded"],
        }
        if "total_s" in peer:
            result["ratio_time"] = peer["total_s"] / result["workbench"]["total_s_median"]
            extra_wb = result["workbench"]["memory"]["above_loaded"]
            extra_peer = peer["peak_rss"] - peer["rss_loaded"]
            result["ratio_memory_above_loaded"] = extra_peer / extra_wb if extra_wb > 0 else None
            result["agreement"] = agreement(median["columns"], peer["columns"])
    else:
        result["workbench"] = tries[0] if tries else {"error": "no try ran"}
    wb = result["workbench"]
    result["target_met"] = bool(wb and "total_s_median" in wb and wb["total_s_median"] <= TARGET_S)
    return result


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def report(r: dict) -> str:
    lines = [
        f"data drift: {r['rows']:,} x {r['columns']} reference and current"
        f" (workbench: median of {r['repeat']} fresh processes)",
        f"{'tool':10} {'version':8} {'what':36} {'wall':>8} {'peak RSS':>9}"
        f" {'loaded':>7} {'above':>7} {'drifted':>8}",
    ]
    wb, peer = r["workbench"], r["evidently"]
    if "total_s" in wb:
        lines.append(
            f"{'workbench':10} {'-':8} {'reference_profile + drift_report':36}"
            f" {wb['total_s_median']:>6.2f} s {_mib(wb['memory']['peak_rss']):>5} MiB"
            f" {_mib(wb['memory']['rss_loaded']):>7} {_mib(wb['memory']['above_loaded']):>7}"
            f" {wb['drifted_columns']:>4} / 20"
        )
        lines.append(
            f"{'':10} {'':8} {'  of which reference_profile':36} {wb['profile_s']:>6.2f} s"
        )
        lines.append(f"{'':10} {'':8} {'  of which drift_report':36} {wb['report_s']:>6.2f} s")
    else:
        lines.append(f"workbench: {wb.get('error')}")
    if "total_s" in peer:
        lines.append(
            f"{'evidently':10} {str(peer['version'])[:8]:8} {'Report([DataDriftPreset()]).run':36}"
            f" {peer['total_s']:>6.2f} s {_mib(peer['peak_rss']):>5} MiB"
            f" {_mib(peer['rss_loaded']):>7} {_mib(peer['peak_rss'] - peer['rss_loaded']):>7}"
            f" {peer['drifted_columns'] or 0:>4.0f} / 20"
        )
        memory = r.get("ratio_memory_above_loaded")
        lines.append(
            f"evidently / workbench: {r['ratio_time']:.1f}x the wall time"
            + (f", {memory:.1f}x the memory above the loaded data" if memory else "")
        )
        agree = r["agreement"]
        lines.append(
            f"same method on {agree['same_method']}/{agree['columns']} columns,"
            f" same drift decision on {agree['same_decision']}/{agree['columns']}"
        )
        for column, both in agree["different"].items():
            lines.append(
                f"  {column}: workbench {both['workbench']}, evidently {both['evidently']}"
            )
    else:
        lines.append(f"evidently: skipped: {peer.get('skipped') or peer.get('error')}")
    lines.append("")
    if "total_s_median" in wb:
        lines.append(
            f"target: profile + report <= {TARGET_S:.0f} s: {wb['total_s_median']:.2f} s -> "
            + ("met" if r["target_met"] else "missed")
        )
    lines.append("target met" if r["target_met"] else "target missed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows of reference and of current (1M)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="workbench tries; the median is reported (3)"
    )
    parser.add_argument(
        "--peer-python",
        metavar="PATH",
        help="interpreter with evidently installed; Evidently is skipped without it",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = parser.parse_args(argv)
    if args.rows < 100 or args.repeat < 1:
        parser.error("--rows must be at least 100 and --repeat at least 1")
    if args.peer_python:
        args.peer_python = str(Path(args.peer_python).expanduser().absolute())
    emit(measure(args, log), report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
