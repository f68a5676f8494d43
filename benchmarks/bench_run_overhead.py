"""Overhead of `workbench run start PROJECT --wait` over running the script directly.

Target (issue 18): on a script that does nothing, `run start --wait` costs at
most 0.3 s more wall-clock time than `python script.py`.

Alternates N times between
  (a) `python train.py`                         (the empty script, directly)
  (b) `workbench run start bench --wait`        (the same script as a supervised run)
and reports median / p90 of each and the overhead (median b - median a).

Where (b)'s time goes, from the timestamps the run records in the store
(all `time.time()` on the same clock):
  cli_to_queued     CLI start -> run row inserted (`created_at`): CLI start-up,
                    store open, project config, insert
  queued_to_started `created_at` -> trainer spawned (`started_at`): supervisor
                    process start, imports, store open, config, Popen
  trainer           `started_at` -> `ended_at` = `run show --json` duration_s:
                    the trainer's own run plus the supervisor noticing its exit
  finish_to_exit    `ended_at` -> CLI exited: wait for the supervisor to exit,
                    `run show`, printing, interpreter shutdown
plus two reference figures: `workbench --version` (bare CLI start-up) and
`python -c "import workbench.runs.supervisor"` (the supervisor's import cost).

Python may write bytecode (.pyc) in the sandbox, as an installed package ships
it: with PYTHONDONTWRITEBYTECODE set (some shells and CI images set it), every
start would compile each module from source again, unless some earlier run
left fresh caches in the checkout, which no user pays and which made figures
depend on the checkout's history. The warm-up run writes the caches.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_run_overhead.py [--repeat 10] [--warmup 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, sandbox, summary  # noqa: E402

TARGET_S = 0.3
PHASES = ("cli_to_queued", "queued_to_started", "trainer", "finish_to_exit")


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float, str]:
    """(seconds, wall start, wall end, stdout) of one run of `cmd`."""
    wall0 = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    wall1 = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    return elapsed, wall0, wall1, proc.stdout


def measure(repeat: int, warmup: int, log) -> dict:
    with sandbox("") as box:
        box.env.pop("PYTHONDONTWRITEBYTECODE", None)  # see the module docstring
        direct = [sys.executable, str(box.project_dir / "train.py")]
        supervised = [*box.cli, "run", "start", box.project, "--wait"]
        log("(a) python train.py  (the empty script, run directly)")
        log(f"(b) {' '.join([Path(supervised[0]).name, *supervised[1:]])}")
        direct_s: list[float] = []
        supervised_s: list[float] = []
        phases: dict[str, list[float]] = {p: [] for p in PHASES}
        show_duration: list[float] = []
        for i in range(warmup + repeat):
            a, *_ = timed(direct, box.env, box.project_dir)
            b, wall0, wall1, out = timed(supervised, box.env, box.project_dir)
            if i < warmup:
                continue
            direct_s.append(a)
            supervised_s.append(b)
            run_id = int(out.split()[0])
            created, started, ended, status = box.query(
                "SELECT created_at, started_at, ended_at, status FROM runs WHERE id = ?", (run_id,)
            )[0]
            if status != "succeeded":
                raise SystemExit(f"run {run_id} ended {status}")
            phases["cli_to_queued"].append(created - wall0)
            phases["queued_to_started"].append(started - created)
            phases["trainer"].append(ended - started)
            phases["finish_to_exit"].append(wall1 - ended)
            shown = json.loads(box.wb("run", "show", str(run_id), "--json").stdout)
            show_duration.append(shown["duration_s"])
            log(
                f"  {i - warmup + 1:>2}/{repeat}: direct {a * 1000:6.0f} ms"
                f"   run start --wait {b * 1000:6.0f} ms"
            )
        version_s = [
            timed([*box.cli, "--version"], box.env, box.project_dir)[0] for _ in range(repeat)
        ]
        import_s = [
            timed(
                [sys.executable, "-c", "import workbench.runs.supervisor"], box.env, box.project_dir
            )[0]
            for _ in range(repeat)
        ]
        cli = box.cli
    a_sum, b_sum = summary(direct_s), summary(supervised_s)
    overhead = b_sum["median"] - a_sum["median"]
    return {
        "benchmark": "run_start_overhead",
        "target": f"median(run start --wait) - median(python script.py) <= {TARGET_S} s",
        "target_s": TARGET_S,
        "cli": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cli)),
        "repeat": repeat,
        "warmup": warmup,
        "direct_s": a_sum,
        "run_start_wait_s": b_sum,
        "overhead_s": overhead,
        "overhead_p90_s": b_sum["p90"] - a_sum["p90"],
        "target_met": overhead <= TARGET_S,
        "breakdown_median_s": {p: summary(v)["median"] for p, v in phases.items()},
        "run_show_duration_s": summary(show_duration),
        "cli_version_s": summary(version_s),
        "supervisor_import_s": summary(import_s),
        "machine": machine_info(),
    }


def report(r: dict) -> str:
    ms = lambda s: f"{s * 1000:7.0f} ms"  # noqa: E731
    lines = [
        f"run start overhead ({r['repeat']} runs each, {r['warmup']} warm-up, CLI: {r['cli']})",
        f"{'':42} {'median':>10} {'p90':>10}",
        f"{'(a) python train.py':42} {ms(r['direct_s']['median'])} {ms(r['direct_s']['p90'])}",
        f"{'(b) workbench run start --wait':42} {ms(r['run_start_wait_s']['median'])}"
        f" {ms(r['run_start_wait_s']['p90'])}",
        f"{'overhead (b - a)':42} {ms(r['overhead_s'])} {ms(r['overhead_p90_s'])}",
        "",
        "where (b) goes (medians):",
    ]
    bd = r["breakdown_median_s"]
    labels = {
        "cli_to_queued": "CLI start -> run queued",
        "queued_to_started": "queued -> trainer spawned (supervisor)",
        "trainer": "trainer running (run show duration_s)",
        "finish_to_exit": "run ended -> CLI exited",
    }
    for key, label in labels.items():
        lines.append(f"  {label:40} {ms(bd[key])}")
    lines += [
        f"  {'workbench --version (bare CLI)':40} {ms(r['cli_version_s']['median'])}",
        f"  {'import workbench.runs.supervisor':40} {ms(r['supervisor_import_s']['median'])}",
        "",
        f"target: overhead <= {r['target_s']:.1f} s -> "
        + ("target met" if r["target_met"] else "target missed"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed runs of each (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    result = measure(args.repeat, max(0, args.warmup), log)
    if args.json:
        print(json.dumps(result, indent=2))
        log(report(result).splitlines()[-1])
    else:
        print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
