"""The watcher's timing options (quiet period, debounce, rescan interval):
their defaults and the bounds `watch` and `Watcher` enforce."""

from __future__ import annotations

import math

from workbench.core.errors import UsageError

DEFAULT_QUIET = 2.0
DEFAULT_DEBOUNCE = 1.0
DEFAULT_RESCAN = 30.0
# Sane bounds (seconds) for the options; `watch` enforces them, as does `Watcher`.
QUIET_RANGE = (0.1, 3600.0)
DEBOUNCE_RANGE = (0.0, 600.0)
RESCAN_RANGE = (1.0, 86400.0)


def check_interval(name: str, value: float, bounds: tuple[float, float]) -> float:
    """`value` if it is a finite number of seconds within `bounds`, else UsageError."""
    low, high = bounds
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{name}: expected a finite number of seconds, got {value!r}")
    if not low <= value <= high:
        raise UsageError(f"{name}: expected {low:g} to {high:g} seconds, got {value:g}")
    return float(value)
