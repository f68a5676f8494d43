"""User settings from `$WORKBENCH_HOME/config.toml`, validated like project configs."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from workbench import paths
from workbench.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    sample_interval: float = 1.0  # seconds between resource samples
    stop_grace: float = 5.0  # seconds between SIGTERM and SIGKILL on `run stop`
    max_parallel: int | None = None  # runs at once; None: see `parallel_slots`
    theme: str = "dark"  # the terminal UI's colours: "dark" or "light"
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> keys, for the UI
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)  # [plugins.<name>] tables

    def parallel_slots(self) -> int:
        """`max_parallel`, else one run per GPU, else half the cores (at least one)."""
        if self.max_parallel:
            return self.max_parallel
        from workbench.gpu import GpuMonitor

        gpu = GpuMonitor()
        try:
            gpus = len(gpu.devices()) if gpu.available else 0
        finally:
            gpu.close()
        return gpus or max(1, (os.cpu_count() or 2) // 2)


_KNOWN = {"runs": {"sample_interval", "stop_grace", "max_parallel"}, "ui": {"theme"}}
THEMES = ("dark", "light")
_INTEGERS = {"max_parallel"}


def load_settings() -> Settings:
    path = paths.user_config_path()
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
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
            known = sorted([*_KNOWN, "keys", "plugins"])
            raise ConfigError(path, section, f"unknown section; expected one of {known}")
        for key, value in body.items():
            if key not in _KNOWN[section]:
                raise ConfigError(path, f"{section}.{key}", "unknown key")
            if key == "theme":
                if value not in THEMES:
                    raise ConfigError(path, "ui.theme", f"expected one of {THEMES}, got {value!r}")
                values[key] = value
                continue
            if key in _INTEGERS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigError(
                        path,
                        f"{section}.{key}",
                        f"expected a whole number of at least 1, got {value!r}",
                    )
                values[key] = value
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(
                    path, f"{section}.{key}", f"expected a positive number, got {value!r}"
                )
            values[key] = float(value)
    return Settings(**values)


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
