"""Imported as `pynvml` by workbench subprocesses in tests that put this folder
first on PYTHONPATH: one fake GPU on which every descendant of the importing
process (the run's supervisor) holds 512 MiB and 30% of the SMs, as NVML
reports a real training job under its own PID."""

import os
import sys
from types import SimpleNamespace

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_nvml import NVML_TEMPERATURE_GPU, FakeNvml, NVMLError  # noqa: E402

PROCESS_MEMORY = 512 << 20


class _TreeNvml(FakeNvml):
    def _descendants(self) -> list[int]:
        try:
            return [p.pid for p in psutil.Process().children(recursive=True)]
        except psutil.Error:
            return []

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        self._check("nvmlDeviceGetComputeRunningProcesses")
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=PROCESS_MEMORY) for pid in self._descendants()
        ]

    def nvmlDeviceGetProcessUtilization(self, handle, last_seen):
        self._device(handle).process_util = [(pid, 30) for pid in self._descendants()]
        return super().nvmlDeviceGetProcessUtilization(handle, last_seen)


_nvml = _TreeNvml()
for _name in dir(_nvml):
    if _name.startswith("nvml"):
        globals()[_name] = getattr(_nvml, _name)

__all__ = ["NVMLError", "NVML_TEMPERATURE_GPU"]
