"""GPU readings through a fake NVML, and resource samples of a real process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from fake_nvml import GIB, FakeDevice, FakeNvml

from workbench.core.gpu import GpuMonitor
from workbench.runs.sampler import TreeSampler

# --- GpuMonitor ------------------------------------------------------------


def test_one_gpu_is_available_with_its_static_facts():
    monitor = GpuMonitor(nvml=FakeNvml([FakeDevice(name="NVIDIA H100", memory_total=80 * GIB)]))

    assert monitor.available
    assert monitor.reason is None
    assert monitor.devices() == [{"index": 0, "name": "NVIDIA H100", "memory_total": 80 * GIB}]


def test_device_names_given_as_bytes_are_decoded():
    # Older pynvml releases return bytes.
    monitor = GpuMonitor(nvml=FakeNvml([FakeDevice(name=b"Tesla T4")]))

    assert monitor.devices()[0]["name"] == "Tesla T4"


def test_sample_reads_every_field_and_the_memory_of_the_given_processes():
    device = FakeDevice(
        gpu_util=87,
        memory_used=5 * GIB,
        memory_total=16 * GIB,
        temperature=71,
        power_mw=215_500,
        processes=[(1001, 2 * GIB), (1002, 512 << 20), (4242, 7 * GIB), (1003, None)],
    )
    monitor = GpuMonitor(nvml=FakeNvml([device]))

    readings = monitor.sample(pids={1001, 1002, 1003})

    assert readings is not None and len(readings) == 1
    reading = readings[0]
    assert reading["index"] == 0
    assert reading["utilization"] == 87
    assert reading["memory_used"] == 5 * GIB
    assert reading["memory_total"] == 16 * GIB
    assert reading["temperature"] == 71
    assert reading["power_w"] == pytest.approx(215.5)  # NVML reports milliwatts
    # only the processes asked about; one with unknown usage counts as 0
    assert reading["process_memory"] == 2 * GIB + (512 << 20)


def test_the_runs_processes_are_attributed_their_memory_and_utilization():
    device = FakeDevice(
        processes=[(1001, GIB), (4242, 2 * GIB)], process_util=[(1001, 35), (1002, 5), (4242, 60)]
    )
    monitor = GpuMonitor(nvml=FakeNvml([device]))

    reading = monitor.sample(pids={1001, 1002})[0]

    assert reading["attribution"] == "process"
    assert reading["process_memory"] == GIB
    assert reading["process_utilization"] == 40


def test_without_any_of_the_pids_on_the_gpu_only_device_figures_stand():
    # e.g. in a container, where NVML lists host PIDs that match nothing here
    device = FakeDevice(processes=[(4242, GIB)], process_util=[(4242, 60)])
    monitor = GpuMonitor(nvml=FakeNvml([device]))

    reading = monitor.sample(pids={1, 2})[0]

    assert reading["attribution"] == "device"
    assert reading["process_memory"] is None
    assert reading["process_utilization"] is None
    assert reading["utilization"] == 42
    assert reading["memory_used"] == 3 * GIB


def test_sample_without_pids_has_no_process_memory():
    monitor = GpuMonitor(nvml=FakeNvml())

    reading = monitor.sample()[0]

    assert "process_memory" not in reading
    assert reading["utilization"] == 42


def test_each_device_gets_its_own_reading():
    nvml = FakeNvml(
        [
            FakeDevice(gpu_util=10, processes=[(7, GIB)]),
            FakeDevice(gpu_util=90, processes=[(7, 3 * GIB), (8, GIB)]),
        ]
    )
    readings = GpuMonitor(nvml=nvml).sample(pids={7})

    assert [r["index"] for r in readings] == [0, 1]
    assert [r["utilization"] for r in readings] == [10, 90]
    assert [r["process_memory"] for r in readings] == [GIB, 3 * GIB]


def test_nvml_that_cannot_start_means_no_gpu_and_says_why():
    monitor = GpuMonitor(nvml=FakeNvml(fail_init=True))

    assert not monitor.available
    assert monitor.sample(pids={os.getpid()}) is None
    assert monitor.devices() == []
    assert "NVML" in monitor.reason
    assert "Shared Library Not Found" in monitor.reason


def test_nvml_with_no_devices_means_no_gpu_and_says_why():
    monitor = GpuMonitor(nvml=FakeNvml([]))

    assert not monitor.available
    assert monitor.sample() is None
    assert "no GPU" in monitor.reason


@pytest.mark.parametrize(
    ("unsupported", "missing"),
    [
        ("nvmlDeviceGetPowerUsage", "power_w"),
        ("nvmlDeviceGetTemperature", "temperature"),
        ("nvmlDeviceGetUtilizationRates", "utilization"),
        ("nvmlDeviceGetComputeRunningProcesses", "process_memory"),
        ("nvmlDeviceGetProcessUtilization", "process_utilization"),
    ],
)
def test_one_unsupported_reading_costs_only_that_field(unsupported, missing):
    monitor = GpuMonitor(
        nvml=FakeNvml(
            [FakeDevice(processes=[(5, GIB)], process_util=[(5, 30)])], unsupported=(unsupported,)
        )
    )

    reading = monitor.sample(pids={5})[0]

    assert reading[missing] is None
    expected = {
        "utilization": 42,
        "memory_used": 3 * GIB,
        "temperature": 55,
        "power_w": pytest.approx(123.456),
        "process_memory": GIB,
        "process_utilization": 30,
    }
    for key, value in expected.items():
        if key != missing:
            assert reading[key] == value, key


def test_no_nvml_installed_is_a_normal_state_with_a_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    monitor = GpuMonitor()

    assert not monitor.available
    assert monitor.sample(pids={os.getpid()}) is None
    assert "not installed" in monitor.reason


def test_nvml_is_initialised_lazily_once_and_shut_down_on_close():
    nvml = FakeNvml()
    monitor = GpuMonitor(nvml=nvml)
    assert nvml.init_calls == 0  # nothing happens until a reading is wanted

    monitor.sample()
    monitor.sample()
    monitor.devices()
    assert nvml.init_calls == 1

    monitor.close()
    assert nvml.shutdown_calls == 1


# --- TreeSampler on a real process tree --------------------------------------

# A child that starts a busy grandchild, reports both pids, then busy-loops too.
# Both stop on their own after a while in case the test cannot kill them.
_TREE = """
import subprocess, sys, time
busy = "import time\\nend = time.time() + 20\\nwhile time.time() < end: pass"
grandchild = subprocess.Popen([sys.executable, "-c", busy])
print(grandchild.pid, flush=True)
end = time.time() + 20
while time.time() < end:
    pass
grandchild.kill()
"""


@pytest.fixture
def busy_tree():
    """(child pid, grandchild pid) of a running, CPU-busy process tree."""
    child = subprocess.Popen(
        [sys.executable, "-c", _TREE],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    grandchild_pid = None
    try:
        grandchild_pid = int(child.stdout.readline())
        yield child.pid, grandchild_pid
    finally:
        # The grandchild is in the child's session and process group.
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)
        if grandchild_pid:
            with contextlib.suppress(psutil.Error):
                psutil.Process(grandchild_pid).kill()
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()


def _sample_when_busy(sampler: TreeSampler):
    """The first sample that saw CPU use; the interval is the sampler's own concern."""
    deadline = time.monotonic() + 60
    while True:
        time.sleep(0.3)
        sample = sampler.sample()
        if sample.cpu_percent > 0 or time.monotonic() > deadline:
            return sample


def test_tree_sampler_sees_the_whole_tree_and_its_gpu_memory(busy_tree):
    child_pid, grandchild_pid = busy_tree
    nvml = FakeNvml(
        [
            FakeDevice(
                processes=[(child_pid, GIB), (grandchild_pid, 2 * GIB), (1, 4 * GIB)],
                process_util=[(grandchild_pid, 25), (1, 50)],
            )
        ]
    )
    sampler = TreeSampler(child_pid, gpu=GpuMonitor(nvml=nvml))

    sample = _sample_when_busy(sampler)

    assert sample.num_procs >= 2
    assert sample.rss_bytes > 0
    assert sample.num_threads >= 2
    assert sample.cpu_percent > 0
    assert sample.sys_mem_percent > 0
    assert sample.sys_mem_used > 0
    assert isinstance(sample.gpu, list) and len(sample.gpu) == 1
    # the GPU memory of the child and the grandchild, not of other processes
    assert sample.gpu[0]["process_memory"] == 3 * GIB
    assert sample.gpu[0]["process_utilization"] == 25
    assert sample.gpu[0]["attribution"] == "process"
    assert sample.gpu[0]["power_w"] == pytest.approx(123.456)


def test_tree_sampler_without_nvml_has_no_gpu_readings(busy_tree):
    child_pid, _ = busy_tree
    sampler = TreeSampler(child_pid, gpu=GpuMonitor(nvml=FakeNvml(fail_init=True)))

    sample = _sample_when_busy(sampler)

    assert sample.num_procs >= 2
    assert sample.gpu is None
    row = sample.as_row()
    assert row["gpu"] is None and row["num_procs"] == sample.num_procs


def test_tree_sampler_of_a_process_that_is_gone_reads_empty():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=10)

    sample = TreeSampler(proc.pid, gpu=GpuMonitor(nvml=FakeNvml(fail_init=True))).sample()

    assert sample.num_procs == 0
    assert sample.rss_bytes == 0
    assert sample.cpu_percent == 0
