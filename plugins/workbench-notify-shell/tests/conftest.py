"""Hermetic tests of the plugin: each test has its own WORKBENCH_HOME (where
config.toml lives), and this process cannot reach beyond loopback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

_connect = socket.socket.connect


def _guarded(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in (
        "127.0.0.1",
        "::1",
        "localhost",
    ):
        raise OSError(f"network access is disabled in tests (tried {address!r})")
    return _connect(self, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded)


@pytest.fixture(autouse=True)
def wb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "wbhome"
    home.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    return home
