"""Comparing runs: `workbench run compare` and the TUI's Compare screen, for 2,
10 and 50 runs of very different lengths.

Targets (50 runs):
  `workbench run compare` (table, data rows, curves; a subprocess)
      <= 1 s wall, and <= 2x `workbench run show` of one run (the floor of a
      command that opens the store, timed the same way)
  Compare screen: from opening to its chart drawn, in process       <= 0.5 s

The store is built through the store API (`store.runs.create`,
`store.metrics.append_points`), no training: 50 succeeded runs of one script
project, each with params, a final `accuracy` and `rmse`, and a `val_accuracy`
curve of 1,000 steps (the first run: 100,000 steps). The screen is timed with
`App.run_test()` at 120x40, from `open_compare` until the chart shows every
run's curve (median of `--repeat`); the CLI as a subprocess, median of
`--repeat` after one untimed warm-up.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_compare.py [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, log, machine_info, sandbox, summary  # noqa: E402

SIZES = (2, 10, 50)
CLI_TARGET = 1.0
SCREEN_TARGET = 0.5


def build(box, runs: int) -> list[int]:
    """`runs` finished runs with params, final metrics and a val_accuracy curve."""
    os.environ["WORKBENCH_HOME"] = str(box.home)
    from workbench.store import open_store
    from workbench.store import runs as run_store
    from workbench.store.metrics import append_points

    store = open_store()
    ids = []
    now = time.time()
    try:
        project = store.scalar("SELECT id FROM projects WHERE name = ?", (box.project,))
        for i in range(runs):
            steps = 100_000 if i == 0 else 1_000
            with store.write() as conn:
                run_id = run_store.create(
                    store,
                    project,
                    "script",
                    event_message="run {id} made by the benchmark",
                    status="succeeded",
                    params={"lr": 0.1 / (i + 1), "seed": 0, "layers": 2 + i % 3},
                    started_at=now - 60,
                    ended_at=now,
                )
                curve = [(s, now - 60 + s * 1e-3, 0.9 * (1 - 1 / s)) for s in range(1, steps + 1)]
                append_points(
                    conn,
                    run_id,
                    {
                        "val_accuracy": curve,
                        "accuracy": [(None, now, 0.9 + i / 1000)],
                        "rmse": [(None, now, 0.1 - i / 1000)],
                    },
                )
            ids.append(run_id)
    finally:
        store.close()
    return ids


def time_cli(box, args: list[str], repeat: int) -> dict[str, float]:
    box.wb(*args)  # warm-up: the OS's file cache, Python's bytecode
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        box.wb(*args)
        times.append(time.perf_counter() - start)
    return summary(times)


def time_screen(ids: list[int], repeat: int) -> dict[str, float]:
    from workbench.config.settings import Settings
    from workbench.tui.app import WorkbenchApp
    from workbench.tui.screens.compare import CompareScreen
    from workbench.tui.widgets.compare_chart import CompareChart

    async def once() -> float:
        app = WorkbenchApp(Settings())
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.5)  # the home screen settles first
            start = time.perf_counter()
            app.open_compare(ids)
            while True:
                screen = app.screen
                if isinstance(screen, CompareScreen):
                    chart = screen.query(CompareChart)
                    if chart and len(chart.first().curves) == len(ids):
                        return time.perf_counter() - start
                await asyncio.sleep(0.005)

    return summary([asyncio.run(once()) for _ in range(repeat)])


def report(result: dict) -> str:
    floor = result["run_show"]["median"]
    lines = [
        f"`run show` of one run (the floor): {floor:.3f} s",
        f"{'runs':>5}  {'run compare (s)':>16}  {'/ floor':>8}  {'screen to chart (s)':>20}",
    ]
    for row in result["sizes"]:
        cli, screen = row["cli"]["median"], row["screen"]["median"]
        lines.append(f"{row['runs']:>5}  {cli:>16.3f}  {cli / floor:>8.2f}  {screen:>20.3f}")
    last = result["sizes"][-1]
    cli, screen = last["cli"]["median"], last["screen"]["median"]
    met = cli <= CLI_TARGET and cli <= 2 * floor and screen <= SCREEN_TARGET
    lines.append(
        f"target {'met' if met else 'missed'}: {last['runs']} runs (medians), run compare"
        f" {cli:.3f} s (<= {CLI_TARGET} s and <= 2x run show), screen"
        f" {screen:.3f} s (<= {SCREEN_TARGET} s)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed tries of each measure")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    result: dict = {"machine": machine_info(), "sizes": []}
    with sandbox("", name="bench") as box:
        log(f"building {max(SIZES)} runs…")
        ids = build(box, max(SIZES))
        result["run_show"] = time_cli(box, ["run", "show", str(ids[1])], args.repeat)
        for size in SIZES:
            log(f"{size} runs…")
            chosen = ids[:size]
            compare = ["run", "compare", *map(str, chosen), "--baseline", str(chosen[0])]
            result["sizes"].append(
                {
                    "runs": size,
                    "cli": time_cli(box, compare, args.repeat),
                    "screen": time_screen(chosen, args.repeat),
                }
            )
    emit(result, report, args.json)


if __name__ == "__main__":
    main()
