"""A stand-in for the `pynvml` module (nvidia-ml-py), with the API that
`workbench.core.gpu.GpuMonitor` uses, so GPU readings can be tested on any machine.

    nvml = FakeNvml([FakeDevice(power_mw=150_000)])
    monitor = GpuMonitor(nvml=nvml)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace


class NVMLError(Exception):
    """The fake library's error, like `pynvml.NVMLError`."""


NVML_TEMPERATURE_GPU = 0
GIB = 1 << 30


@dataclass
class FakeDevice:
    name: str | bytes = "NVIDIA Fake GPU 80GB"
    gpu_util: int = 42
    mem_util: int = 17
    memory_used: int = 3 * GIB
    memory_total: int = 80 * GIB
    temperature: int = 55
    power_mw: int = 123_456
    # (pid, usedGpuMemory in bytes or None when the driver cannot tell)
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    # (pid, SM utilization %) reported by nvmlDeviceGetProcessUtilization
    process_util: list[tuple[int, int]] = field(default_factory=list)


class FakeNvml:
    """Behaves like the `pynvml` module for the calls the workbench makes.

    `fail_init` makes `nvmlInit` raise (no driver); `unsupported` names
    functions that raise `NVMLError` (e.g. power not supported on the board).
    """

    NVMLError = NVMLError
    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU

    def __init__(
        self,
        devices: list[FakeDevice] | None = None,
        *,
        fail_init: bool = False,
        unsupported: tuple[str, ...] = (),
    ) -> None:
        self.devices = [FakeDevice()] if devices is None else devices
        self.fail_init = fail_init
        self.unsupported = set(unsupported)
        self.initialized = False
        self.init_calls = 0
        self.shutdown_calls = 0
        self.clock = 1_000_000  # microseconds, for process utilization samples

    # -- library lifetime -------------------------------------------------
    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.fail_init:
            raise NVMLError("NVML Shared Library Not Found")
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1
        self.initialized = False

    # -- devices ----------------------------------------------------------
    def _check(self, fn: str) -> None:
        if not self.initialized:
            raise NVMLError("Uninitialized")
        if fn in self.unsupported:
            raise NVMLError("Not Supported")

    def _device(self, handle: SimpleNamespace) -> FakeDevice:
        return self.devices[handle.index]

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimpleNamespace:
        self._check("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.devices):
            raise NVMLError("Invalid Argument")
        return SimpleNamespace(index=index)

    def nvmlDeviceGetName(self, handle: SimpleNamespace) -> str | bytes:
        self._check("nvmlDeviceGetName")
        return self._device(handle).name

    def nvmlDeviceGetUtilizationRates(self, handle: SimpleNamespace) -> SimpleNamespace:
        self._check("nvmlDeviceGetUtilizationRates")
        device = self._device(handle)
        return SimpleNamespace(gpu=device.gpu_util, memory=device.mem_util)

    def nvmlDeviceGetMemoryInfo(self, handle: SimpleNamespace) -> SimpleNamespace:
        self._check("nvmlDeviceGetMemoryInfo")
        device = self._device(handle)
        return SimpleNamespace(
            used=device.memory_used,
            total=device.memory_total,
            free=device.memory_total - device.memory_used,
        )

    def nvmlDeviceGetTemperature(self, handle: SimpleNamespace, sensor: int) -> int:
        self._check("nvmlDeviceGetTemperature")
        if sensor != NVML_TEMPERATURE_GPU:
            raise NVMLError("Invalid Argument")
        return self._device(handle).temperature

    def nvmlDeviceGetPowerUsage(self, handle: SimpleNamespace) -> int:
        self._check("nvmlDeviceGetPowerUsage")
        return self._device(handle).power_mw

    def nvmlDeviceGetComputeRunningProcesses(self, handle: SimpleNamespace) -> list:
        self._check("nvmlDeviceGetComputeRunningProcesses")
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=used)
            for pid, used in self._device(handle).processes
        ]

    def nvmlDeviceGetProcessUtilization(self, handle: SimpleNamespace, last_seen: int) -> list:
        """Samples newer than `last_seen` (microseconds); like NVML, raises
        "Not Found" when there are none."""
        self._check("nvmlDeviceGetProcessUtilization")
        self.clock += 1000
        samples = [
            SimpleNamespace(
                pid=pid, timeStamp=self.clock, smUtil=sm, memUtil=0, encUtil=0, decUtil=0
            )
            for pid, sm in self._device(handle).process_util
        ]
        if not [x for x in samples if x.timeStamp > last_seen]:
            raise NVMLError("Not Found")
        return samples
