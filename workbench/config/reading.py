"""Reading a TOML file a user edits, as untrusted input: a regular file, of a
size a config file has, UTF-8, valid TOML, nested no deeper than a person writes.
Every refusal is a `ConfigError` naming the file, so the CLI exits 2 with one line."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from workbench.core.errors import ConfigError

MAX_BYTES = 1024 * 1024  # a config file is a few kilobytes; a schema of 1,000 columns ~200 KB


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, or `ConfigError` saying why it cannot be read."""
    try:
        with open(path, "rb", opener=_nonblocking) as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(path, None, "not a regular file")
            if info.st_size > MAX_BYTES:
                raise ConfigError(
                    path, None, f"{info.st_size:,} bytes; a config file is at most {MAX_BYTES:,}"
                )
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:  # grew while being read
        raise ConfigError(path, None, f"more than {MAX_BYTES:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, None, "not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(path, None, "not valid TOML: arrays or tables nested too deeply") from None


def _nonblocking(path: str, flags: int) -> int:
    """Open without waiting on a named pipe (a FIFO is refused, not read)."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
