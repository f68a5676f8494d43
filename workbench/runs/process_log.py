"""Logging for the workbench's long-running processes (a run's supervisor, the
warm server, the watcher daemon): each module logs through its own logger;
the process's entry point calls `setup` once, which sends the `workbench`
loggers to stderr (the process's log file, where it was started detached).

Only the `workbench` logger is configured, never the root logger: a trainer
forked from the warm server must find `logging` as a fresh interpreter would.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_workbench_process_log"


def setup(fmt: str = FORMAT, stream: TextIO | None = None) -> logging.Logger:
    """Send the `workbench` loggers (INFO and up) to `stream` (stderr); once per
    process: a second call changes nothing."""
    logger = logging.getLogger("workbench")
    if not any(getattr(h, _MARK, False) for h in logger.handlers):
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter(fmt, datefmt="%Y-%m-%d %H:%M:%S"))
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
