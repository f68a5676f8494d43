"""Project archives of a store with 1,000 runs and 1 million metric points.

Targets: `archive export` of the whole project <= 10 s, `archive import` of
that archive into an empty store <= 10 s, and importing it again (every record
identical, nothing written) <= 1 s.

Builds the store as bench_big_store.py does (one run with 100,000 points, the
rest spread over the other runs), then measures, in this process, the
functions the commands run (`export_archive`, `import_archive`), each `--repeat`
times (median): the export; the import into a new empty store; the re-import.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_archive.py [--runs 1000] [--points 1000000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import sandbox  # noqa: E402
from bench_big_store import build  # noqa: E402

EXPORT_TARGET_S = 10.0
IMPORT_TARGET_S = 10.0
REIMPORT_TARGET_S = 1.0


def measure(runs: int, points: int, repeat: int, log) -> dict:
    from workbench.archive.export import export_archive
    from workbench.archive.importer import import_archive
    from workbench.store import open_store

    with sandbox("", name="bench") as box:
        os.environ["WORKBENCH_HOME"] = str(box.home)
        store = open_store(box.db)
        try:
            project_id = store.scalar("SELECT id FROM projects WHERE name = ?", (box.project,))
            log(f"building a store with {runs:,} runs and {points:,} points")
            built = build(store, project_id, runs, points, min(100_000, points), log)
        finally:
            store.close()
        work = Path(tempfile.mkdtemp(prefix="wb-bench-archive-"))
        out = work / "project.wbx"
        export_s, import_s, reimport_s = [], [], []
        try:
            for i in range(repeat):
                os.environ["WORKBENCH_HOME"] = str(box.home)
                store = open_store(box.db)
                try:
                    start = time.perf_counter()
                    made = export_archive(store, [box.project], out, force=True)
                    export_s.append(time.perf_counter() - start)
                finally:
                    store.close()
                log(f"  export {i + 1}: {export_s[-1]:.2f} s")

                target = work / f"home{i}"
                os.environ["WORKBENCH_HOME"] = str(target)
                store = open_store()  # a new, empty store (made and migrated untimed)
                try:
                    start = time.perf_counter()
                    first = import_archive(store, out)
                    import_s.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    again = import_archive(store, out)
                    reimport_s.append(time.perf_counter() - start)
                finally:
                    store.close()
                    shutil.rmtree(target, ignore_errors=True)
                assert first.counts["runs"]["new"] == runs
                assert first.metric_points_added == built["points"]
                assert again.counts["runs"]["identical"] == runs
                assert again.metric_points_added == 0
                log(f"  import {i + 1}: {import_s[-1]:.2f} s, again {reimport_s[-1]:.2f} s")
            size = out.stat().st_size
        finally:
            os.environ["WORKBENCH_HOME"] = str(box.home)
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "runs": runs,
        "points": built["points"],
        "archive_bytes": size,
        "members": made.members,
        "export_s": statistics.median(export_s),
        "import_s": statistics.median(import_s),
        "reimport_s": statistics.median(reimport_s),
        "all_s": {"export": export_s, "import": import_s, "reimport": reimport_s},
    }
    result["target_met"] = (
        result["export_s"] <= EXPORT_TARGET_S
        and result["import_s"] <= IMPORT_TARGET_S
        and result["reimport_s"] <= REIMPORT_TARGET_S
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    r = measure(args.runs, args.points, args.repeat, log)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"store: {r['runs']:,} runs, {r['points']:,} points")
    print(f"archive file {r['archive_bytes'] / (1 << 20):.1f} MB, {r['members']} members")
    print(f"archive export     {r['export_s']:6.2f} s  (target <= {EXPORT_TARGET_S:g} s)")
    print(f"archive import     {r['import_s']:6.2f} s  (target <= {IMPORT_TARGET_S:g} s)")
    print(f"import again       {r['reimport_s']:6.2f} s  (target <= {REIMPORT_TARGET_S:g} s)")
    print("target met" if r["target_met"] else "target missed")


if __name__ == "__main__":
    main()
