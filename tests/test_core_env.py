"""core.env names every WORKBENCH_* variable the package reads or sets."""

from __future__ import annotations

import re
from pathlib import Path

import workbench
from workbench.core import env
from workbench.models import bundle_runtime

PACKAGE = Path(workbench.__file__).parent


def test_every_variable_in_the_package_is_named_in_core_env():
    used = set()
    for file in PACKAGE.rglob("*.py"):
        used |= set(re.findall(r"WORKBENCH_[A-Z][A-Z0-9_]*[A-Z0-9]", file.read_text()))
    missing = sorted(used - set(env.ALL.values()))
    assert not missing, f"add these to workbench/core/env.py: {missing}"


def test_names_are_unique_and_well_formed():
    values = list(env.ALL.values())
    assert len(values) == len(set(values)) >= 15
    assert all(re.fullmatch(r"WORKBENCH_[A-Z0-9_]+", v) for v in values)
    assert env.ALL["HOME"] == "WORKBENCH_HOME"


def test_the_bundle_runtime_copies_match():
    # The runtime runs inside bundles without Workbench, so it keeps its own names.
    assert bundle_runtime.MAX_BUNDLE_ENV == env.MAX_BUNDLE_MB
    assert bundle_runtime.MAX_FILE_ENV == env.MAX_FILE_MB
    assert bundle_runtime.MAX_RATIO_ENV == env.MAX_ZIP_RATIO
    assert bundle_runtime.MAX_REQUEST_ENV == env.MAX_REQUEST_MB
    assert bundle_runtime.MAX_IN_FLIGHT_ENV == env.MAX_IN_FLIGHT
