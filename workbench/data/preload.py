"""Modules imported on a daemon thread while the caller does other work, such
as reading a batch: reading and parsing spend most of their time outside the
GIL, so an import started first is often done by the time it is needed.

The caller later imports the module as usual and finds it loaded, or waits for
the thread to finish it (the import system locks each module). An error on the
thread is ignored: the caller's own import raises it where it is handled."""

from __future__ import annotations

import contextlib
import sys
import threading


def start(*modules: str) -> None:
    """Import `modules`, in order, on one daemon thread (those not loaded yet)."""
    missing = [name for name in modules if name not in sys.modules]
    if missing:
        threading.Thread(
            target=_import, args=(missing,), name=f"import {missing[0]}", daemon=True
        ).start()


def _import(modules: list[str]) -> None:
    import importlib

    for name in modules:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
