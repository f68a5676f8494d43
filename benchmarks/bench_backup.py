"""Backup and restore of a store with 1,000 runs and 1 million metric points.

Target: `workbench backup` within 2x, and `workbench restore` within 4x, of a
bare SQLite online backup of the same database (`sqlite3.Connection.backup`,
what `sqlite3 .backup` does), measured in the same run. A restore reads every
member twice over (CRC and SHA-256) and runs `PRAGMA integrity_check` on the
database, which is timed separately too.

Builds the store as bench_big_store.py does (direct SQL through
`workbench.store.metrics.append_points`), with 200 artifact files of 64 KiB
besides, then measures, each 3 times (median), after one untimed warm-up:
  - the bare copy: `Connection.backup` of the database into a new file;
  - `create_backup` (what `workbench backup` runs), in this process;
  - `restore_backup` (what `workbench restore` runs) into a new empty home;
  - `PRAGMA integrity_check` of the database alone, for reference.
And reports the sizes of the database and of the backup file.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_backup.py [--runs 1000] [--points 1000000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import sandbox  # noqa: E402
from bench_big_store import build  # noqa: E402

BACKUP_TARGET = 2.0
RESTORE_TARGET = 4.0
ARTIFACTS = 200
ARTIFACT_BYTES = 64 << 10


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm-up: the page cache holds the database for every variant alike
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def add_artifacts(home: Path) -> None:
    for i in range(ARTIFACTS):
        data = os.urandom(ARTIFACT_BYTES // 2) + bytes(ARTIFACT_BYTES // 2)
        digest = hashlib.sha256(data + bytes([i % 256])).hexdigest()
        path = home / "artifacts" / digest[:2] / digest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def measure(runs: int, points: int, repeat: int, log) -> dict:
    from workbench.store import open_store
    from workbench.store.backup import create_backup, restore_backup

    with sandbox("", name="bench") as box:
        os.environ["WORKBENCH_HOME"] = str(box.home)
        store = open_store(box.db, migrate=False)
        try:
            project_id = store.scalar("SELECT id FROM projects WHERE name = ?", (box.project,))
            log(f"building a store with {runs:,} runs and {points:,} points")
            built = build(store, project_id, runs, points, min(100_000, points), log)
        finally:
            store.close()
        add_artifacts(box.home)
        work = Path(tempfile.mkdtemp(prefix="wb-bench-backup-"))
        try:
            copy = work / "plain.db"

            def plain() -> None:
                copy.unlink(missing_ok=True)
                src = sqlite3.connect(box.db)
                dst = sqlite3.connect(copy)
                try:
                    src.backup(dst, pages=-1)
                finally:
                    dst.close()
                    src.close()

            out = work / "store.zip"

            def backup() -> None:
                os.environ["WORKBENCH_HOME"] = str(box.home)
                create_backup(out, force=True)

            homes = iter(range(10_000))

            def restore() -> None:
                target = work / f"home{next(homes)}"
                os.environ["WORKBENCH_HOME"] = str(target)
                try:
                    restore_backup(out)
                finally:
                    shutil.rmtree(target, ignore_errors=True)

            def integrity() -> None:
                conn = sqlite3.connect(f"file:{box.db}?mode=ro", uri=True)
                try:
                    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                finally:
                    conn.close()

            log(f"timing, {repeat} times each")
            plain_s = timed(plain, repeat)
            backup_s = timed(backup, repeat)
            restore_s = timed(restore, repeat)
            integrity_s = timed(integrity, repeat)
            result = {
                "runs": runs,
                "points": built["points"],
                "artifacts": ARTIFACTS,
                "db_bytes": box.db.stat().st_size,
                "backup_bytes": out.stat().st_size,
                "plain_backup_s": statistics.median(plain_s),
                "backup_s": statistics.median(backup_s),
                "restore_s": statistics.median(restore_s),
                "integrity_check_s": statistics.median(integrity_s),
                "all_s": {
                    "plain": plain_s,
                    "backup": backup_s,
                    "restore": restore_s,
                    "integrity_check": integrity_s,
                },
            }
        finally:
            os.environ["WORKBENCH_HOME"] = str(box.home)
            shutil.rmtree(work, ignore_errors=True)
    result["backup_ratio"] = result["backup_s"] / result["plain_backup_s"]
    result["restore_ratio"] = result["restore_s"] / result["plain_backup_s"]
    result["target_met"] = (
        result["backup_ratio"] <= BACKUP_TARGET and result["restore_ratio"] <= RESTORE_TARGET
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
    mb = 1 << 20
    print(f"store: {r['runs']:,} runs, {r['points']:,} points, {r['artifacts']} artifacts")
    print(f"database {r['db_bytes'] / mb:.1f} MB, backup file {r['backup_bytes'] / mb:.1f} MB")
    print(f"Connection.backup alone  {r['plain_backup_s'] * 1000:8.0f} ms")
    print(
        f"workbench backup         {r['backup_s'] * 1000:8.0f} ms"
        f"  ({r['backup_ratio']:.2f}x, target <= {BACKUP_TARGET:g}x)"
    )
    print(
        f"workbench restore        {r['restore_s'] * 1000:8.0f} ms"
        f"  ({r['restore_ratio']:.2f}x, target <= {RESTORE_TARGET:g}x)"
    )
    print(
        f"  of which integrity_check {r['integrity_check_s'] * 1000:8.0f} ms"
        f"  ({r['integrity_check_s'] / r['plain_backup_s']:.2f}x)"
    )
    print("target met" if r["target_met"] else "target missed")


if __name__ == "__main__":
    main()
