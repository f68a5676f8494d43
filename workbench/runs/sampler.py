"""Resource samples of a run's whole process tree, plus the system and GPUs."""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from workbench.core.gpu import GpuMonitor


@dataclass
class Sample:
    ts: float
    cpu_percent: float  # summed over the tree; 100 = one core
    rss_bytes: int
    num_threads: int
    num_procs: int
    read_bytes: int | None  # cumulative, of the processes alive now
    write_bytes: int | None
    sys_cpu_percent: float
    sys_mem_percent: float
    sys_mem_used: int
    gpu: list[dict[str, Any]] | None  # None when no GPU can be read

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


class TreeSampler:
    """Samples one process and all its descendants, and those of `adopter`
    (a supervisor that is a child subreaper: what the trainer orphans is
    re-parented to it, and still belongs to the run).

    psutil's `cpu_percent` measures since the previous call on the *same*
    Process object, so the objects are kept between samples; new descendants
    join the cache and read 0 on their first sample.
    """

    def __init__(
        self, root_pid: int, gpu: GpuMonitor | None = None, adopter: int | None = None
    ) -> None:
        self.root_pid = root_pid
        self.adopter = adopter
        self.gpu = gpu or GpuMonitor()
        self._procs: dict[int, psutil.Process] = {}
        psutil.cpu_percent(interval=None)  # primes the system-wide counter
        self.sample()  # primes the per-process counters

    def processes(self) -> list[psutil.Process]:
        """The processes seen by the last sample."""
        return list(self._procs.values())

    def _current(self) -> list[psutil.Process]:
        found: list[psutil.Process] = []
        if self.adopter is not None:
            # One scan when the root is the adopter's child (a Popen'd trainer).
            with contextlib.suppress(psutil.Error):
                found = psutil.Process(self.adopter).children(recursive=True)
        if not any(p.pid == self.root_pid for p in found):
            try:
                root = self._procs.get(self.root_pid) or psutil.Process(self.root_pid)
                found += [root, *root.children(recursive=True)]
            except psutil.Error:
                pass
        live = {}
        for proc in found:
            live[proc.pid] = self._procs.get(proc.pid, proc)
        self._procs = live
        return list(live.values())

    def sample(self) -> Sample:
        cpu = 0.0
        rss = threads = 0
        read = write = 0
        io_ok = True
        procs = 0
        for proc in self._current():
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(interval=None)
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                    try:
                        counters = proc.io_counters()
                        read += counters.read_bytes
                        write += counters.write_bytes
                    except (psutil.AccessDenied, AttributeError):
                        io_ok = False
                procs += 1
            except psutil.Error:  # exited between listing and reading
                continue
        memory = psutil.virtual_memory()
        gpu = None
        with contextlib.suppress(Exception):
            gpu = self.gpu.sample(pids=set(self._procs))
        return Sample(
            ts=time.time(),
            cpu_percent=round(cpu, 2),
            rss_bytes=rss,
            num_threads=threads,
            num_procs=procs,
            read_bytes=read if io_ok else None,
            write_bytes=write if io_ok else None,
            sys_cpu_percent=psutil.cpu_percent(interval=None),
            sys_mem_percent=memory.percent,
            sys_mem_used=memory.total - memory.available,
            gpu=gpu,
        )
