"""User settings from `$WORKBENCH_HOME/config.toml`, validated like project configs."""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from workbench.core import paths
from workbench.core.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    sample_interval: float = 1.0  # seconds between resource samples
    stop_grace: float = 5.0  # seconds between SIGTERM and SIGKILL on `run stop`
    max_parallel: int | None = None  # runs at once; None: see `parallel_slots`
    max_log_mb: float = 100.0  # a run's output on disk at most (output.log + output.log.1)
    theme: str = "dark"  # the terminal UI's colours: "dark" or "light"
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> keys, for the UI
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)  # [plugins.<name>] tables

    def parallel_slots(self) -> int:
        """`max_parallel`, else one run per GPU, else half the cores (at least one)."""
        if self.max_parallel:
            return self.max_parallel
        from workbench.core.gpu import GpuMonitor

        gpu = GpuMonitor()
        try:
            gpus = len(gpu.devices()) if gpu.available else 0
        finally:
            gpu.close()
        return gpus or max(1, (os.cpu_count() or 2) // 2)


THEMES = ("dark", "light")
# [section] -> key -> (low, high, whole number?): every number is range-checked.
_RANGES: dict[str, dict[str, tuple[float, float, bool]]] = {
    "runs": {
        "sample_interval": (0.05, 3600.0, False),
        "stop_grace": (0.0, 3600.0, False),
        "max_parallel": (1, 1024, True),
        "max_log_mb": (0.01, 1_000_000.0, False),
    },
}
_KNOWN = {"runs": set(_RANGES["runs"]), "ui": {"theme"}}


def load_settings() -> Settings:
    """`$WORKBENCH_HOME/config.toml`, every value checked; `ConfigError` names the
    file and the key of the first bad one."""
    path = paths.user_config_path()
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, "not UTF-8 text") from exc
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(path, None, f"not valid TOML: {exc}") from exc
    values: dict[str, Any] = {}
    for section, body in raw.items():
        if section == "keys":
            values["keys"] = _keys(path, body)
            continue
        if section == "plugins":
            values["plugins"] = _plugins(path, body)
            continue
        if section not in _KNOWN:
            known = ", ".join(sorted([*_KNOWN, "keys", "plugins"]))
            raise ConfigError(path, section, f"unknown section; expected one of {known}")
        if not isinstance(body, dict):
            raise ConfigError(
                path, section, f"expected a table, e.g. [{section}], got {type(body).__name__}"
            )
        for key, value in body.items():
            if key not in _KNOWN[section]:
                known = ", ".join(sorted(_KNOWN[section]))
                raise ConfigError(path, f"{section}.{key}", f"unknown key; expected one of {known}")
            if key == "theme":
                if value not in THEMES:
                    raise ConfigError(
                        path, "ui.theme", f"expected one of {', '.join(THEMES)}, got {value!r}"
                    )
                values[key] = value
                continue
            values[key] = _number(path, f"{section}.{key}", value, *_RANGES[section][key])
    return Settings(**values)


def _number(path: object, key: str, value: Any, low: float, high: float, whole: bool) -> Any:
    """`value` if it is a (whole) number within [low, high], else a ConfigError."""
    kind = "a whole number" if whole else "a number of seconds"
    wrong_type = isinstance(value, bool) or not isinstance(value, int if whole else int | float)
    if wrong_type or not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(path, key, f"expected {kind} from {low:g} to {high:g}, got {value!r}")
    return value if whole else float(value)


def _keys(path: object, body: Any) -> dict[str, str]:
    """[keys]: binding id -> key(s), e.g. "project.start" = "s" or "s,ctrl+n"."""
    if not isinstance(body, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in body.items()
    ):
        raise ConfigError(
            path, "keys", 'expected binding ids mapped to keys, e.g. "project.start" = "s"'
        )
    return dict(body)


def _plugins(path: object, body: Any) -> dict[str, dict[str, Any]]:
    """[plugins.<name>]: each plugin's own settings, checked by the plugin."""
    if not isinstance(body, dict) or not all(isinstance(v, dict) for v in body.values()):
        raise ConfigError(
            path, "plugins", "expected one table per plugin, e.g. [plugins.notify-shell]"
        )
    return body
