"""CPU per test, its subprocesses included (detached ones too), for finding what
makes the suite slow on a busy machine.

    # as root, on Linux with the cgroup v1 cpuacct controller mounted:
    PYTHONPATH=benchmarks .venv/bin/python -m pytest -p suite_cpu
    python benchmarks/suite_cpu.py [--top 30]     # the summary, by file and by test

Each xdist worker moves itself into a cgroup of its own
(`/sys/fs/cgroup/cpuacct/workbench-suite/<worker>`); every process it starts
stays in it, detached supervisors and trainers included, which `RUSAGE_CHILDREN`
would miss. The cgroup's CPU counter is read before and after each test and
written, with the test's wall time, to `<worker>.jsonl` in $SUITE_CPU_DIR
(default: a `suite-cpu` folder in the temp folder). A process a
test leaves running is counted in the tests after it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from pathlib import Path

import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup/cpuacct/workbench-suite")


def _out_dir() -> Path:
    return Path(os.environ.get("SUITE_CPU_DIR") or Path(tempfile.gettempdir()) / "suite-cpu")


class _Recorder:
    def __init__(self) -> None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.group = CGROUP_ROOT / worker
        self.group.mkdir(parents=True, exist_ok=True)
        (self.group / "cgroup.procs").write_text(str(os.getpid()))
        _out_dir().mkdir(parents=True, exist_ok=True)
        self.out = (_out_dir() / f"{worker}.jsonl").open("a")

    def usage(self) -> float:
        return int((self.group / "cpuacct.usage").read_text()) / 1e9


_recorder: _Recorder | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _recorder
    _recorder = _Recorder()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    assert _recorder is not None
    cpu, wall = _recorder.usage(), time.monotonic()
    yield
    record = {"id": item.nodeid, "cpu": _recorder.usage() - cpu, "wall": time.monotonic() - wall}
    _recorder.out.write(json.dumps(record) + "\n")
    _recorder.out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description="Summarise a run recorded with -p suite_cpu.")
    parser.add_argument("--top", type=int, default=30, help="how many files and tests to list")
    args = parser.parse_args()
    rows = [json.loads(line) for path in _out_dir().glob("*.jsonl") for line in path.open()]
    if not rows:
        raise SystemExit(f"nothing recorded in {_out_dir()}")
    print(
        f"{len(rows)} tests: {sum(r['cpu'] for r in rows):.0f} CPU-s,"
        f" {sum(r['wall'] for r in rows):.0f} s of wall time summed over the workers"
    )
    files: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for r in rows:
        entry = files[r["id"].split("::")[0]]
        entry[0] += r["cpu"]
        entry[1] += r["wall"]
        entry[2] += 1
    print(f"\n{'CPU-s':>7} {'wall-s':>7} {'tests':>5}  file")
    for name, (cpu, wall, count) in sorted(files.items(), key=lambda kv: -kv[1][0])[: args.top]:
        print(f"{cpu:7.1f} {wall:7.1f} {count:5d}  {name}")
    print(f"\n{'CPU-s':>7} {'wall-s':>7}  test")
    for r in sorted(rows, key=lambda r: -r["cpu"])[: args.top]:
        print(f"{r['cpu']:7.1f} {r['wall']:7.1f}  {r['id']}")


if __name__ == "__main__":
    main()
