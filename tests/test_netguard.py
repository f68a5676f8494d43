import socket
import subprocess
import sys

import pytest


def test_outbound_connection_is_refused_in_tests():
    with pytest.raises(OSError, match="network access is disabled"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)


def test_outbound_connection_is_refused_in_subprocesses():
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "network access is disabled" in result.stderr


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    with socket.create_connection(server.getsockname(), timeout=1):
        pass
    server.close()
