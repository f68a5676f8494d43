"""User settings from `$WORKBENCH_HOME/config.toml`, validated like project configs."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from workbench import paths
from workbench.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    sample_interval: float = 1.0  # seconds between resource samples
    stop_grace: float = 5.0  # seconds between SIGTERM and SIGKILL on `run stop`


_KNOWN = {"runs": {"sample_interval", "stop_grace"}}


def load_settings() -> Settings:
    path = paths.user_config_path()
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"not valid TOML: {exc}") from exc
    values: dict[str, float] = {}
    for section, body in raw.items():
        if section not in _KNOWN:
            raise ConfigError(path, section, f"unknown section; expected one of {sorted(_KNOWN)}")
        for key, value in body.items():
            if key not in _KNOWN[section]:
                raise ConfigError(path, f"{section}.{key}", "unknown key")
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(path, f"{section}.{key}", f"expected a positive number, got {value!r}")
            values[key] = float(value)
    return Settings(**values)
