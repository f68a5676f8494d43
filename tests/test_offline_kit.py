"""`workbench offline-kit`: a folder of wheels, install.sh and README.txt that
installs workbench on a machine with no network."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from wbtest import NETGUARD
from wbtest import wb_inprocess as wbi

from workbench.cli.offline_kit import pack_workbench_wheel, requirements


def test_requirements_are_the_installed_dependencies_pinned():
    pins = requirements()
    from importlib.metadata import version

    for name in ("click", "textual", "scikit-learn", "lightgbm", "optuna", "rich"):
        assert pins[name] == version(name)
    assert "pip" not in pins and "workbench-mlops" not in pins
    assert "onnx" not in pins  # an extra, not asked for
    assert "onnx" in requirements(("onnx",))


def test_the_packed_workbench_wheel_is_a_valid_wheel(tmp_path):
    wheel = pack_workbench_wheel(tmp_path)
    assert wheel.name == "workbench_mlops-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = "workbench_mlops-0.1.0.dist-info"
        assert {"workbench/cli/__init__.py", f"{info}/METADATA", f"{info}/RECORD"} <= names
        assert "workbench = workbench.cli:main" in zf.read(f"{info}/entry_points.txt").decode()
        assert any(n.startswith("workbench/_sample_projects/") for n in names)
        assert not any("__pycache__" in n for n in names)
        record = zf.read(f"{info}/RECORD").decode().splitlines()
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if not digest:
                continue
            data = zf.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode() and int(size) == len(data)
        assert len(record) == len(names)


def test_a_wheelhouse_that_lacks_wheels_is_named_and_nothing_is_made(tmp_path):
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    (wheelhouse / "not-a-wheel.txt").write_text("x")
    out = tmp_path / "kit"
    made = wbi("offline-kit", "-o", str(out), "--from", str(wheelhouse))
    assert made.returncode == 1
    assert "no wheel for this platform" in made.stderr and "textual==" in made.stderr
    assert str(wheelhouse) in made.stderr
    assert "Traceback" not in made.stderr
    assert {p.name for p in tmp_path.iterdir()} <= {"wbhome", "wheels"}  # no kit, no staging


def test_bad_arguments_are_refused_with_exit_2(tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "file").write_text("keep")
    refused = wbi("offline-kit", "-o", str(used))
    assert refused.returncode == 2 and "not an empty folder" in refused.stderr
    assert (used / "file").read_text() == "keep"
    refused = wbi("offline-kit", "-o", str(tmp_path / "k"), "--extras", "gpu")
    assert refused.returncode == 2 and "--extras" in refused.stderr and "'gpu'" in refused.stderr
    assert not (tmp_path / "k").exists()


@pytest.mark.slow
def test_the_kit_installs_offline_and_doctor_passes(tmp_path, monkeypatch):
    wheelhouse = os.environ.get("WORKBENCH_TEST_WHEELHOUSE")
    if not wheelhouse:
        pytest.skip(
            "WORKBENCH_TEST_WHEELHOUSE is not set: no wheelhouse of the project's"
            " dependencies to make the kit from (CI makes one with scripts/ci_wheelhouse.sh)"
        )
    kit = tmp_path / "kit"
    made = wbi("offline-kit", "-o", str(kit), "--from", wheelhouse, "--json", timeout=600)
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)
    assert summary["wheels"] >= 40
    assert {"install.sh", "README.txt", "wheels"} <= {p.name for p in kit.iterdir()}
    assert "--no-index" in (kit / "install.sh").read_text()

    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    clean |= {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_CACHE_DIR": "1",
        # Byte-compiling ~7,000 modules is most of an install's CPU and files, and
        # is not what this test is about. pip reads PIP_NO_COMPILE=1 as "compile:
        # yes" (a true value for the option's destination), so it is said this way.
        "PIP_COMPILE": "false",
        "PYTHONPATH": str(NETGUARD),  # any attempt to reach the network fails
        "PYTHON": sys.executable,
    }
    install = subprocess.run(
        ["sh", str(kit / "install.sh")], env=clean, capture_output=True, text=True, timeout=1200
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    workbench = kit / ".venv" / "bin" / "workbench"
    clean["WORKBENCH_HOME"] = str(tmp_path / "fresh-home")
    doctor = subprocess.run(
        [str(workbench), "doctor"], env=clean, capture_output=True, text=True, timeout=300,
        cwd=tmp_path,
    )  # fmt: skip
    assert doctor.returncode == 0, doctor.stdout[-2000:] + doctor.stderr[-2000:]
    assert "integrity ok" in doctor.stdout
    # The installed workbench is the kit's, not this checkout's.
    where = subprocess.run(
        [str(kit / ".venv" / "bin" / "python"), "-c",
         "import workbench; print(workbench.__file__)"],
        env=clean, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert str(kit / ".venv") in where.stdout
    # Passed: the installed environment (tens of thousands of files) goes now, so
    # pytest's temp folders stay small (a failed run keeps it to look at).
    shutil.rmtree(kit)
