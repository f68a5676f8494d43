"""Tying a trainer's life to its supervisor's, through Linux's prctl(2).

A trainer is started with `die_with_parent` (a `preexec_fn`, or called right
after a fork): the kernel SIGKILLs it the moment the process that started it
exits, even by SIGKILL or the OOM killer, so a run never leaves a trainer
writing on alone. A supervisor calls `become_subreaper`: processes that its
trainer orphans (a double-forked daemon, say) are re-parented to it instead of
to init, so it sees, samples, stops and reaps them.

Elsewhere (macOS, or a kernel that refuses) both return False and nothing
changes; the tracking API's own parent check then stops a trainer that uses it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_prctl: Callable[..., int] | None = None


def available() -> bool:
    """Whether prctl can be called; call it in a parent before it forks, so
    that the child only makes the call (no dynamic loading after a fork)."""
    return _load() is not None


def _load() -> Callable[..., int] | None:
    global _prctl
    if _prctl is None and sys.platform.startswith("linux"):
        try:
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            return None
    return _prctl


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> bool:
    """In a freshly forked child: receive `sig` when the parent exits. If the
    parent is already gone (it died between the fork and this call), the
    signal comes at once. Returns whether the kernel took the request."""
    prctl = _prctl
    done = prctl is not None and prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
    return done


def child_setup(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A `preexec_fn` for Popen that ties the child to this process, or None
    where prctl is not available (no preexec_fn: Popen keeps its fast path)."""
    if _load() is None:
        return None
    parent = os.getpid()

    def setup() -> None:
        die_with_parent(parent, sig)

    return setup


def become_subreaper() -> bool:
    """Orphaned descendants of this process are re-parented to it, not to init."""
    prctl = _load()
    return prctl is not None and prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
