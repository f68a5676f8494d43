"""The `[monitor]` table of workbench.toml: how served predictions are logged.

`workbench serve` and `workbench predict --log` record requests to per-day
Parquet files under the project (`workbench.monitor.log`); these keys bound
that log: the share of requests kept, its size on disk and how many days it
reaches back. Nothing here opens a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.config.spec import Key, Table

MAX_LOG_MB = 1 << 20  # 1 TB: beyond it, a typo rather than a plan
MAX_RETENTION_DAYS = 36_500

MONITOR = Table(
    "monitor",
    (
        Key("log", bool, "whether `serve` logs the requests it answers", default=True),
        Key(
            "sample_rate",
            (float, int),
            "the share of requests logged (1: all of them)",
            default=1.0,
            low=0,
            high=1,
            low_open=True,
            range_text="a fraction in (0, 1]",
        ),
        Key(
            "max_mb",
            (float, int),
            "the most disk the prediction log may use; the oldest parts go first",
            default=1024,
            low=0,
            high=MAX_LOG_MB,
            low_open=True,
            range_text=f"a number of MB greater than 0 and at most {MAX_LOG_MB}",
        ),
        Key(
            "retention_days",
            int,
            "days of prediction log kept; older day folders are deleted",
            default=30,
            low=1,
            high=MAX_RETENTION_DAYS,
        ),
    ),
    "How served predictions are logged for `workbench monitor`.",
)


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """A checked `[monitor]` table, with the defaults filled in."""

    log: bool = True
    sample_rate: float = 1.0
    max_mb: float = 1024.0
    retention_days: int = 30

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * (1 << 20))


def monitor_config(raw: dict[str, Any]) -> MonitorConfig:
    """The `[monitor]` settings of an already checked workbench.toml (its raw dict)."""
    table = {**MONITOR.defaults(), **raw.get("monitor", {})}
    return MonitorConfig(
        log=bool(table["log"]),
        sample_rate=float(table["sample_rate"]),
        max_mb=float(table["max_mb"]),
        retention_days=int(table["retention_days"]),
    )
