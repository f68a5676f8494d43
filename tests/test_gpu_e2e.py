"""A run on a (fake) GPU: the supervisor records device and per-process figures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_runs_e2e import script_project, show

FAKE = Path(__file__).resolve().parent / "fake_pynvml"


@pytest.fixture
def fake_gpu(monkeypatch, fast_sampling):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKE), os.environ["PYTHONPATH"]]))


@pytest.mark.slow
def test_run_records_gpu_samples_attributed_to_its_processes(cli, tmp_path, fake_gpu):
    project = script_project(tmp_path / "g", "import time; time.sleep(1.2)\n", name="g")
    cli("project", "add", str(project), check=True)
    run_id = cli("run", "start", "g", "--wait", check=True).stdout.split()[0]
    info = show(cli, run_id)
    (device,) = info["resources"]["gpu"]
    assert device["utilization_max"] == 42
    assert device["memory_used_max"] == 3 << 30
    assert device["memory_total"] == 80 << 30
    assert device["temperature_max"] == 55
    assert device["power_w_max"] == pytest.approx(123.456)
    assert device["attribution"] == "process"
    assert device["process_memory_max"] == 512 << 20
    assert device["process_utilization_max"] == 30
    assert info["environment"]["gpus"] == [
        {"name": "NVIDIA Fake GPU 80GB", "memory_total": 80 << 30}
    ]


def test_doctor_sees_the_gpu(cli, fake_gpu):
    info = json.loads(cli("doctor", "--json", check=True).stdout)
    assert info["gpu"]["available"] is True
    assert info["gpu"]["devices"][0]["name"] == "NVIDIA Fake GPU 80GB"
    assert info["gpu"]["reason"] is None
