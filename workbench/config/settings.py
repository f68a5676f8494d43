"""User settings from `$WORKBENCH_HOME/config.toml`, validated like project configs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from workbench.core import paths
from workbench.config.reading import read_toml
from workbench.config.spec import Key, Table, check_file


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

# `$WORKBENCH_HOME/config.toml`, declared: every number range-checked.
RUNS = Table(
    "runs",
    (
        Key(
            "sample_interval",
            (float, int),
            "seconds between resource samples of a running run",
            default=1.0,
            low=0.05,
            high=3600.0,
            range_text="a number of seconds from 0.05 to 3600",
        ),
        Key(
            "stop_grace",
            (float, int),
            "seconds between SIGTERM and SIGKILL on `run stop`",
            default=5.0,
            low=0.0,
            high=3600.0,
            range_text="a number of seconds from 0 to 3600",
        ),
        Key(
            "max_parallel",
            int,
            "runs at once (default: one per GPU, else half the cores)",
            low=1,
            high=1024,
        ),
        Key(
            "max_log_mb",
            (float, int),
            "a run's output on disk at most, in MB",
            default=100.0,
            low=0.01,
            high=1_000_000.0,
        ),
    ),
    "How runs are started, sampled, stopped and logged.",
)
UI = Table(
    "ui",
    (Key("theme", str, "the terminal UI's colours", default="dark", choices=THEMES),),
    "The terminal UI.",
)
SETTINGS_FILE = Table(
    "config.toml",
    (
        Key(
            "keys",
            dict,
            "binding id -> key(s) of the terminal UI, e.g. \"project.start\" = \"s,ctrl+n\"",
            values=Key(
                "binding",
                str,
                "the key(s) of a binding",
                pattern=r"(?s).*\S.*",
                pattern_text='one or more keys, e.g. "s" or "s,ctrl+n"',
            ),
        ),
        Key(
            "plugins",
            dict,
            "each plugin's own settings, checked by the plugin",
            each=Table("plugin", (), "a plugin's settings", open=True),
            each_text="one table per plugin, e.g. [plugins.notify-shell]",
        ),
        Key("runs", dict, RUNS.help, table=RUNS),
        Key("ui", dict, UI.help, table=UI),
    ),
    "User settings, for every project.",
    word="section",
)


def load_settings() -> Settings:
    """`$WORKBENCH_HOME/config.toml`, every value checked; `ConfigError` names the
    file and the key of the first bad one."""
    path = paths.user_config_path()
    if not path.exists():
        return Settings()
    raw = read_toml(path)
    check_file(path, SETTINGS_FILE, raw)
    runs, ui = raw.get("runs", {}), raw.get("ui", {})
    return Settings(
        sample_interval=float(runs.get("sample_interval", RUNS.defaults()["sample_interval"])),
        stop_grace=float(runs.get("stop_grace", RUNS.defaults()["stop_grace"])),
        max_parallel=runs.get("max_parallel"),
        max_log_mb=float(runs.get("max_log_mb", RUNS.defaults()["max_log_mb"])),
        theme=ui.get("theme", UI.defaults()["theme"]),
        keys=dict(raw.get("keys", {})),
        plugins=dict(raw.get("plugins", {})),
    )
