"""Exports carry every framework their model needs: the requirements of a bundle and
of an MLflow export come from the types the saved model is made of (lightgbm for an
LGBMClassifier inside a scikit-learn Pipeline), and a fresh virtual environment
built offline from a bundle's own requirements and wheels predicts with the
bundle's own runtime."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import _export_fixtures
from wbtest import NETGUARD, REPO, wb_auto

from workbench.models import wheels

pytestmark = pytest.mark.slow

# The store the export-format tests use, with LightGBM's scikit-learn estimator inside
# a Pipeline (lgbm-pipeline) added; penguins-rf is a random forest on the same data.
PROJECTS = ("penguins", "autompg", "penguins-rf", "lgbm-pipeline")


@pytest.fixture(scope="module")
def trained_home(shared_cache: Path) -> Path:
    return _export_fixtures.trained_home(shared_cache, PROJECTS)


@pytest.fixture
def home(trained_home: Path, wb_home: Path) -> Path:
    return _export_fixtures.copy_home(trained_home, wb_home)


def _names(requirements: str) -> dict[str, str]:
    pins = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    return dict(pin.split("==") for pin in pins)


def test_lightgbm_inside_a_pipeline_is_in_the_bundle_and_mlflow_requirements(home, tmp_path):
    bundle = tmp_path / "bundle"
    wb_auto("model", "export", "lgbm-pipeline", "-o", str(bundle), check=True)
    pinned = _names((bundle / "requirements.txt").read_text())
    assert {"lightgbm", "scikit-learn", "skops", "numpy", "pandas"} <= set(pinned)
    mlflow = tmp_path / "mlflow"
    wb_auto("model", "export", "lgbm-pipeline", "--format", "mlflow", "-o", str(mlflow), check=True)
    assert "lightgbm" in _names((mlflow / "requirements.txt").read_text())

    # Derived, not listed by hand: a forest's bundle does not carry lightgbm.
    forest = tmp_path / "forest"
    wb_auto("model", "export", "penguins-rf", "-o", str(forest), check=True)
    assert "lightgbm" not in _names((forest / "requirements.txt").read_text())
    assert "scikit-learn" in _names((forest / "requirements.txt").read_text())


def test_model_types_include_the_ones_skops_trusts_by_default(home, tmp_path):
    from workbench.models.registry import resolve
    from workbench.store import open_store

    store = open_store()
    try:
        version = resolve(store, "lgbm-pipeline")
    finally:
        store.close()
    types = wheels.model_types("sklearn", version.model_path)
    assert "sklearn.pipeline.Pipeline" in types  # trusted by skops, so not "untrusted"
    assert "lightgbm.sklearn.LGBMClassifier" in types
    assert wheels.model_distributions("lightgbm", None) == ["lightgbm"]


def test_a_fresh_environment_from_the_bundle_alone_predicts(home, tmp_path):
    """The bundle's wheels come from pip's cache (what `pip install` of the project
    left there) or pip's configured local indexes; WORKBENCH_TEST_WHEELHOUSE may
    name a folder of wheels too. Without the wheels the test is skipped, naming them."""
    bundle = tmp_path / "bundle"
    extra = os.environ.get("WORKBENCH_TEST_WHEELHOUSE")
    args = ["--wheelhouse", extra] if extra else []
    made = wb_auto("model", "export", "lgbm-pipeline", "-o", str(bundle), "--with-wheels", *args)
    if made.returncode != 0 and "no wheel for" in made.stderr and not extra:
        # CI names a wheelhouse (scripts/ci_wheelhouse.sh); there a missing wheel fails.
        pytest.skip(f"wheels missing on this machine: {made.stderr.strip()[:300]}")
    assert made.returncode == 0, made.stderr
    assert any(p.name.startswith("lightgbm-") for p in (bundle / "wheels").iterdir())

    # A venv without a pip of its own (ensurepip unpacks and byte-compiles pip: most of
    # making a venv); this interpreter's pip installs into it (`pip --python`).
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300
    )
    python = venv / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    # No byte-compiling: most of an install's CPU and files, and not what is tested here
    # (pip reads PIP_NO_COMPILE=1 as "compile: yes", so it is said this way).
    clean |= {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1", "PIP_COMPILE": "false"}
    clean["PYTHONPATH"] = str(NETGUARD)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install",
         "--disable-pip-version-check", "--no-index", "--find-links", str(bundle / "wheels"),
         "-r", str(bundle / "requirements.txt")],
        env=clean, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]

    batch = tmp_path / "batch.csv"
    data = REPO / "sample_projects" / "penguins-lightgbm" / "data" / "train.csv"
    pd.read_csv(data).head(30).to_csv(batch, index=False)
    out = tmp_path / "predictions.csv"
    ran = subprocess.run(
        [str(python), "-B", str(bundle / "wb_runtime.py"), "predict", str(bundle), str(batch),
         "-o", str(out)],
        env=clean, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stderr.strip().splitlines()[-1])["rows"] == 30
    predicted = pd.read_csv(out)["prediction"]
    assert set(predicted) <= {"Adelie", "Chinstrap", "Gentoo"} and len(predicted) == 30
    workbench_there = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('workbench'))"],
        env=clean, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert workbench_there.stdout.strip() == "None"  # the runtime stood alone
    shutil.rmtree(venv)  # passed: its files go now, so pytest's temp folders stay small
