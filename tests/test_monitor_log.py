"""The prediction log on its own: rows from answered requests, parts renamed into
place only when whole, the [monitor] bounds (sample rate, size, retention), the
flush on close, reading parts of different shapes, and window specs."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from workbench.config.monitor import MONITOR, MonitorConfig, monitor_config
from workbench.config.project import PROJECT_FILE
from workbench.config.spec import check_table
from workbench.core.errors import ConfigError, UsageError
from workbench.monitor.log import PredictionLog, day_name, iter_parts, read_log, records_frame
from workbench.monitor.report import parse_window


def _record(i: int, ts: float, **inputs: object) -> dict:
    return {
        "request_id": f"r{i}",
        "ts": ts,
        "status": 200,
        "latency_s": 0.004,
        "error": None,
        "frame": pd.DataFrame([inputs or {"x": float(i), "colour": "red"}]),
        "predictions": [i % 2],
        "probabilities": [[0.25, 0.75]],
        "classes": [0, 1],
        "model": "p@3",
    }


def test_records_become_rows_with_uniform_types() -> None:
    now = time.time()
    records = [
        _record(0, now, x=1, colour="red"),
        _record(1, now, x=2.5, colour=7),  # a number where others sent text
        {
            **_record(2, now),
            "status": 422,
            "error": "bad",
            "frame": None,
            "predictions": None,
            "probabilities": None,
        },
        _record(3, now, x=float("nan"), colour=float("nan")),  # nulls read from a file
    ]
    frame = records_frame(records, "serve", 3)
    assert frame["request_id"].tolist() == ["r0", "r1", "r2", "r3"]
    assert pd.isna(frame["input:colour"].iloc[3]) and pd.isna(frame["input:x"].iloc[3])
    assert frame["input:x"].dtype == "float64" and frame["input:x"].tolist()[:2] == [1.0, 2.5]
    assert frame["input:colour"].tolist()[:2] == ["red", "7"]
    assert frame["prediction"].tolist()[:2] == ["0", "1"]  # a classifier's classes as text
    assert frame["proba:1"].tolist()[:2] == [0.75, 0.75]
    assert frame["status"].tolist() == [200, 200, 422, 200] and frame["error"].iloc[2] == "bad"
    assert frame["version"].tolist() == [3] * 4 and frame["latency_ms"].iloc[0] == 4.0
    assert pd.isna(frame["input:x"].iloc[2])


def test_close_flushes_into_whole_parts(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, MonitorConfig(), version=3, roll_seconds=3600).start()
    now = time.time()
    for i in range(50):
        log.record(_record(i, now))
    stats = log.close()
    assert (stats.received, stats.written_rows, stats.dropped) == (50, 50, 0)
    parts = list(iter_parts(log.folder))
    assert len(parts) == stats.parts == 1 and parts[0].parent.name == day_name(now)
    assert not list(log.folder.rglob("*.inprogress"))
    frame, damaged = read_log(log.folder)
    assert damaged == [] and frame["request_id"].tolist() == [f"r{i}" for i in range(50)]


def test_sample_rate_keeps_that_share(tmp_path: Path) -> None:
    draws = iter([0.1, 0.9] * 50)
    log = PredictionLog(tmp_path, MonitorConfig(sample_rate=0.5), rng=lambda: next(draws)).start()
    for i in range(100):
        log.record(_record(i, time.time()))
    stats = log.close()
    assert (stats.sampled_out, stats.written_rows) == (50, 50)


def test_retention_and_size_bound_the_log(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, MonitorConfig(max_mb=0.05, retention_days=2))
    log.folder.mkdir(parents=True)
    now = time.time()
    old = now - 5 * 86_400
    log.write_part(day_name(old), records_frame([_record(0, old)], "serve", 1))
    assert (log.folder / day_name(old)).exists() is False  # past retention: gone at once
    for i in range(30):  # ~100 KB of parts against a 50 KB bound
        rows = [
            _record(i * 100 + k, now, x=float(k), note="y" * 40 + str(i * 100 + k))
            for k in range(100)
        ]
        log.write_part(day_name(now), records_frame(rows, "serve", 1))
    parts = list(iter_parts(log.folder))
    assert sum(p.stat().st_size for p in parts) <= 0.05 * (1 << 20)
    assert log.stats.evicted_parts > 0 and parts
    kept, _ = read_log(log.folder)
    assert kept["request_id"].iloc[-1] == "r2999"  # the newest requests stay


def test_parts_of_different_shapes_read_together(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, MonitorConfig())
    log.folder.mkdir(parents=True)
    now = time.time()
    log.write_part(day_name(now), records_frame([_record(0, now, x=1)], "serve", 1))
    later = records_frame([_record(1, now + 1, x=2.0, extra="e")], "serve", 2)
    log.write_part(day_name(now), later)
    frame, damaged = read_log(log.folder)
    assert damaged == [] and frame["input:x"].tolist() == [1.0, 2.0]
    assert frame["version"].tolist() == [1, 2] and pd.isna(frame["input:extra"].iloc[0])


@pytest.mark.parametrize(
    ("text", "seconds", "rows"),
    [("1h", 3600, None), ("30m", 1800, None), ("1d", 86_400, None), ("5000", None, 5000)],
)
def test_windows(text: str, seconds: int | None, rows: int | None) -> None:
    window = parse_window(text)
    assert (window.seconds, window.rows) == (seconds, rows)


def test_bad_window() -> None:
    with pytest.raises(UsageError, match="--window"):
        parse_window("2w")


def test_monitor_table_is_checked() -> None:
    assert monitor_config({}).sample_rate == 1.0
    settings = monitor_config({"monitor": {"sample_rate": 0.25, "max_mb": 10, "retention_days": 7}})
    got = (settings.sample_rate, settings.max_bytes, settings.retention_days)
    assert got == (0.25, 10 << 20, 7)
    for bad in (
        {"sample_rate": 0},
        {"sample_rate": 1.5},
        {"max_mb": -1},
        {"retention_days": 0},
        {"log": "yes"},
        {"sample": 1},
    ):
        with pytest.raises(ConfigError, match=r"\[monitor\."):
            check_table("workbench.toml", PROJECT_FILE, {"monitor": bad})
    assert "sample_rate" in MONITOR.names
