"""The files that make an install reproducible hold nothing tied to one machine."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^[A-Za-z0-9_.\-]+(\[[^\]]*\])?==[^\s;@]+(\s*;.*)?$")


def test_constraints_pin_every_package_by_version_only() -> None:
    lines = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pins = [line for line in lines if line.strip() and not line.startswith("#")]
    assert len(pins) > 20
    not_pins = [line for line in pins if not PIN.match(line)]
    # A direct reference ("name @ file:///...") installs only on the machine that wrote it.
    assert not_pins == []


def test_the_package_ships_its_licence_and_type_marker() -> None:
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT")
    assert (ROOT / "workbench" / "py.typed").exists()
