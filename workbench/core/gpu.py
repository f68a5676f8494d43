"""GPU readings through NVML, initialised lazily; no NVML is a normal state.

`GpuMonitor(nvml=...)` takes any object with pynvml's functions, which is how
tests give it a fake library.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any


class GpuMonitor:
    """Per-device utilization, memory, temperature and power, plus the GPU
    memory held by a given set of processes."""

    def __init__(self, nvml: Any = None) -> None:
        self._nvml = nvml
        self._handles: list[Any] | None = None
        self.reason: str | None = None  # why no GPU readings, when there are none
        self._warned: set[str] = set()
        self._last_seen: dict[int, int] = {}  # device -> newest process-utilization timestamp

    @property
    def available(self) -> bool:
        return bool(self._start())

    def devices(self) -> list[dict[str, Any]]:
        """Static facts about each device (index, name, memory_total)."""
        out = []
        for index, handle in enumerate(self._start()):
            out.append(
                {
                    "index": index,
                    "name": self._read("name", self._nvml.nvmlDeviceGetName, handle),
                    "memory_total": self._read(
                        "memory", lambda h: self._nvml.nvmlDeviceGetMemoryInfo(h).total, handle
                    ),
                }
            )
        return out

    def sample(self, pids: set[int] | None = None) -> list[dict[str, Any]] | None:
        """One reading per device, or None when no GPU can be read."""
        handles = self._start()
        if not handles:
            return None
        nvml = self._nvml
        readings = []
        for index, handle in enumerate(handles):
            util = self._read("utilization", nvml.nvmlDeviceGetUtilizationRates, handle)
            memory = self._read("memory", nvml.nvmlDeviceGetMemoryInfo, handle)
            power_mw = self._read("power", nvml.nvmlDeviceGetPowerUsage, handle)
            reading = {
                "index": index,
                "utilization": getattr(util, "gpu", None),
                "memory_used": getattr(memory, "used", None),
                "memory_total": getattr(memory, "total", None),
                "temperature": self._read(
                    "temperature",
                    lambda h: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU),
                    handle,
                ),
                "power_w": power_mw / 1000 if power_mw is not None else None,
            }
            if pids is not None:
                reading.update(self._attribute(index, handle, pids))
            readings.append(reading)
        return readings

    def _attribute(self, index: int, handle: Any, pids: set[int]) -> dict[str, Any]:
        """GPU memory and SM utilization of the given processes on one device.

        Inside containers NVML may list host PIDs that match nothing here; then
        `attribution` is "device" and only the device-wide figures stand for the
        run. "process" means at least one of the run's PIDs was found.
        """
        procs = self._read("processes", self._nvml.nvmlDeviceGetComputeRunningProcesses, handle)
        mine = [p for p in procs or () if p.pid in pids]
        utilization = None
        samples = self._read(
            "process utilization",
            lambda h: self._nvml.nvmlDeviceGetProcessUtilization(h, self._last_seen.get(index, 0)),
            handle,
        )
        if samples:
            self._last_seen[index] = max(getattr(x, "timeStamp", 0) for x in samples)
            matched = [x.smUtil for x in samples if x.pid in pids]
            utilization = sum(matched) if matched else None
        return {
            "process_memory": sum(p.usedGpuMemory or 0 for p in mine) if mine else None,
            "process_utilization": utilization,
            "attribution": "process" if mine or utilization is not None else "device",
        }

    def _start(self) -> list[Any]:
        if self._handles is not None:
            return self._handles
        self._handles = []
        try:
            if self._nvml is None:
                self._nvml = importlib.import_module("pynvml")
            self._nvml.nvmlInit()
            count = self._nvml.nvmlDeviceGetCount()
            self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except ImportError:
            self.reason = "nvidia-ml-py is not installed"
        except Exception as exc:  # NVMLError: no driver, no library, no permission
            self.reason = f"NVML is not usable here: {exc}"
        else:
            if not self._handles:
                self.reason = "NVML found no GPU"
        return self._handles

    def _read(self, what: str, fn: Any, handle: Any) -> Any:
        # One failing reading (not supported on this board, a GPU fallen off the
        # bus) must not cost the others.
        try:
            value = fn(handle)
        except Exception:
            self._warned.add(what)
            return None
        return value.decode() if isinstance(value, bytes) else value

    def close(self) -> None:
        if self._handles:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
        self._handles = None
