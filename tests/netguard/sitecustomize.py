"""Loaded by every Python subprocess the tests start: refuses non-loopback connections,
so a test that reaches for the network fails instead of passing on a networked machine."""

import ipaddress
import socket

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _allowed(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded(original):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _allowed(address):
            raise OSError(f"network access is disabled in tests (tried {address!r})")
        return original(self, address)

    return connect


def install() -> None:
    """(Re)install the guard; idempotent."""
    socket.socket.connect = _guarded(_connect)
    socket.socket.connect_ex = _guarded(_connect_ex)


install()
