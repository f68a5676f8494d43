"""Workbench overhead per sweep trial, over a bare Optuna loop with the same objective.

Target: `workbench sweep start PROJECT --trials N --parallel 1` costs at most 0.5 s
more per trial than a bare in-process Optuna loop.

Both sides search the same space with the same sampler (TPE, same seed) on the
penguins sample (LightGBM, 240 rows, n_jobs = 1), so they ask for the same
params and reach the same best f1:
  (a) bare       `python -c BARE`: imports, reads the data once, then an
                 in-memory Optuna study whose trials fit the workbench's own
                 LightGBMTrainer on the same split and score f1 on the hold-out.
                 Per trial = the script's wall time / N (its loop alone is
                 shown too).
  (b) workbench  `workbench sweep start bench --trials N --parallel 1 --json`, timed
                 the same way. Per trial = wall time / N: CLI start-up, Optuna's
                 import and registering the best model are spread over the
                 trials, as (a)'s imports are.
Overhead per trial = (b) − (a). Also shown: the steady-state overhead, the
median time between one trial's run being created and the next's minus (a)'s
loop per trial, and where a
trial's time goes, from the run rows' stamps:
  queued      created -> trainer started: dispatch, supervisor start-up
  trainer     started -> ended: the trainer process (start-up, imports, fit,
              artifacts, exit) and the supervisor noticing its exit
  handoff     ended -> next trial's run created: the sweep noticing, tell, ask

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_sweep.py [--trials 20] [--no-warm] [--json]
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

from _common import cli_command, emit, log, machine_info, run_embedded, summary  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_projects" / "penguins-lightgbm"
TARGET_S = 0.5
SEED = 7
SWEEP = """
[sweep]
sampler = "tpe"
pruner = "none"
seed = {seed}

[sweep.space]
learning_rate = {{ type = "log-uniform", low = 0.01, high = 0.3 }}
num_leaves = {{ type = "int", low = 4, high = 32 }}
n_estimators = {{ type = "int", low = 5, high = 20 }}
"""


def make_project(root: Path) -> Path:
    folder = root / "penguins"
    shutil.copytree(SAMPLE, folder)
    toml = folder / "workbench.toml"
    text = toml.read_text().replace('name = "penguins"', 'name = "bench"')
    # One thread: on 240 rows, OpenMP's thread start-up and spinning cost more
    # than the trees (and make both sides noisy on a busy machine).
    text = text.replace("min_child_samples = 5 }", "min_child_samples = 5, n_jobs = 1 }")
    toml.write_text(text + SWEEP.format(seed=SEED))
    return folder


BARE = """
import json, sys, time
from pathlib import Path

import optuna

from workbench.config.project import load_config
from workbench.sweeps.space import distributions
from workbench.trainers.__main__ import _split
from workbench.trainers.lightgbm_trainer import LightGBMTrainer
from workbench.trainers.metrics import classification_metrics
from workbench.trainers.tabular import load_training_table

folder, trials, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
optuna.logging.set_verbosity(optuna.logging.WARNING)
config = load_config(folder)
table = load_training_table(config)
x_train, x_test, y_train, y_test = _split(table, config.test_size, config.seed)
space = distributions(config.sweep.space)
study = optuna.create_study(
    direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True)
)
times = []
started = time.perf_counter()
for _ in range(trials):
    t0 = time.perf_counter()
    trial = study.ask(space)
    trainer = LightGBMTrainer(table, {**config.params, **trial.params}, config.seed)
    trainer.fit(x_train, y_train, x_test, y_test)
    pred, proba = trainer.predict(x_test)
    study.tell(trial, classification_metrics(y_test, pred, proba, trainer.classes)["f1"])
    times.append(time.perf_counter() - t0)
loop = time.perf_counter() - started
print("BENCH_RESULT " + json.dumps({"loop_s": loop, "times": times, "best": study.best_value}))
"""


def bare_loop(folder: Path, trials: int) -> dict:
    """(a): the same objective in one plain process, no workbench around it."""
    t0 = time.perf_counter()
    found = run_embedded(
        sys.executable, BARE, [str(folder), str(trials), str(SEED)], dict(os.environ), REPO
    )
    wall = time.perf_counter() - t0
    if "error" in found:
        raise SystemExit(f"the bare loop failed: {found['error']}")
    return {
        "wall_s": wall,
        "per_trial_s": wall / trials,
        "loop_per_trial_s": found["loop_s"] / trials,
        "trial_s": summary(found["times"]),
        "best_value": found["best"],
    }


def workbench_sweep(folder: Path, home: Path, trials: int, env_extra: dict[str, str]) -> dict:
    """(b): the real CLI, one trial at a time."""
    env = dict(os.environ, WORKBENCH_HOME=str(home), NO_COLOR="1", **env_extra)
    cli = cli_command()
    subprocess.run([*cli, "project", "add", str(folder)], env=env, check=True, capture_output=True)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*cli, "sweep", "start", "bench", "--trials", str(trials), "--parallel", "1", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"workbench sweep exited {proc.returncode}:\n{proc.stderr}")
    document = json.loads(proc.stdout)
    import sqlite3

    conn = sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT created_at, started_at, ended_at FROM runs WHERE parent_id = ? ORDER BY id",
        (document["sweep_run_id"],),
    ).fetchall()
    conn.close()
    created = [r[0] for r in rows]
    return {
        "wall_s": wall,
        "per_trial_s": wall / trials,
        "steady_trial_s": statistics.median(
            b - a for a, b in zip(created, created[1:], strict=False)
        )
        if len(created) > 1
        else None,
        "queued_s": summary([r[1] - r[0] for r in rows]),
        "trainer_s": summary([r[2] - r[1] for r in rows]),
        "handoff_s": summary([b - r[2] for r, b in zip(rows, created[1:], strict=False)])
        if len(rows) > 1
        else None,
        "best_value": document["best"]["value"],
        "completed": sum(t["state"] == "complete" for t in document["trials"]),
    }


def measure(trials: int, env_extra: dict[str, str]) -> dict:
    root = Path(tempfile.mkdtemp(prefix="wb-bench-sweep-"))
    try:
        folder = make_project(root)
        log(f"bare Optuna loop, {trials} trials ...")
        bare = bare_loop(folder, trials)
        log(f"workbench sweep, {trials} trials, --parallel 1 ...")
        wb = workbench_sweep(folder, root / "home", trials, env_extra)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "machine": machine_info(),
        "trials": trials,
        "warm": env_extra.get("WORKBENCH_WARM") != "0",
        "target_s": TARGET_S,
        "bare": bare,
        "workbench": wb,
        "overhead_per_trial_s": wb["per_trial_s"] - bare["per_trial_s"],
        "steady_overhead_per_trial_s": (wb["steady_trial_s"] or 0) - bare["loop_per_trial_s"],
    }


def report(result: dict) -> str:
    bare, wb = result["bare"], result["workbench"]
    lines = [
        f"{result['trials']} trials, --parallel 1"
        + ("" if result["warm"] else ", WORKBENCH_WARM=0 (no warm server)"),
        f"  bare Optuna script     {bare['per_trial_s'] * 1000:8.0f} ms/trial"
        f"   (wall {bare['wall_s']:.1f} s, best f1 {bare['best_value']:.4f})",
        f"    its loop alone       {bare['loop_per_trial_s'] * 1000:8.0f} ms/trial",
        f"  workbench sweep        {wb['per_trial_s'] * 1000:8.0f} ms/trial"
        f"   (wall {wb['wall_s']:.1f} s, best f1 {wb['best_value']:.4f},"
        f" {wb['completed']} complete)",
        f"    steady pace          {(wb['steady_trial_s'] or 0) * 1000:8.0f} ms/trial",
        f"    queued -> started    {wb['queued_s']['median'] * 1000:8.0f} ms median",
        f"    trainer              {wb['trainer_s']['median'] * 1000:8.0f} ms median",
    ]
    if wb["handoff_s"]:
        lines.append(f"    handoff              {wb['handoff_s']['median'] * 1000:8.0f} ms median")
    overhead = result["overhead_per_trial_s"]
    lines += [
        f"  overhead per trial     {overhead * 1000:8.0f} ms"
        f"   (steady: {result['steady_overhead_per_trial_s'] * 1000:.0f} ms)",
        f"target {TARGET_S * 1000:.0f} ms: "
        + ("target met" if overhead <= TARGET_S else "target missed"),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--no-warm",
        action="store_true",
        help="WORKBENCH_WARM=0: fresh interpreters for supervisors and trainers (the baseline)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    emit(measure(args.trials, {"WORKBENCH_WARM": "0"} if args.no_warm else {}), report, args.json)


if __name__ == "__main__":
    main()
