"""Hostile input to monitoring: labels files with unknown, duplicate, clashing or
missing request ids, files that are not tables, and damaged parts in the
prediction log. Each gets a one-line reason (exit 2 for what is refused), and
nothing already received or logged is lost."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from wbtest import REPO
from wbtest import wb_inprocess as wbi

from workbench.config.monitor import MonitorConfig
from workbench.monitor.log import PredictionLog, day_name, records_frame


@pytest.fixture
def project(tmp_path: Path, wb_home: Path) -> Path:
    """The penguins sample registered (no model needed) with 40 logged requests."""
    folder = tmp_path / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    assert wbi("project", "add", str(folder)).returncode == 0
    rows = pd.read_csv(folder / "data" / "train.csv").head(40)
    now = time.time()
    records = [
        {
            "request_id": f"req-{i}",
            "ts": now,
            "status": 200,
            "latency_s": 0.002,
            "error": None,
            "frame": rows.drop(columns="species").iloc[[i]],
            "predictions": [rows["species"].iloc[i]],
            "probabilities": None,
            "classes": ["Adelie", "Chinstrap", "Gentoo"],
            "model": "penguins@1",
        }
        for i in range(40)
    ]
    log = PredictionLog(folder, MonitorConfig(), version=1)
    log.folder.mkdir(parents=True)
    log.write_part(day_name(now), records_frame(records, "serve", 1))
    return folder


def _labels(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _stored(project: Path) -> list[Path]:
    return sorted((project / ".workbench" / "labels").glob("labels-*.parquet"))


def _one_line_error(done) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_clashing_labels_are_refused_and_earlier_ones_kept(project: Path, tmp_path: Path) -> None:
    first = pd.DataFrame({"request_id": ["req-1"], "label": ["Adelie"]})
    good = _labels(tmp_path, "good.csv", first)
    assert wbi("data", "labels", "penguins", str(good)).returncode == 0
    before = _stored(project)
    clash = pd.DataFrame(
        {"request_id": ["req-2", "req-2", "req-3"], "label": ["Adelie", "Gentoo", "Adelie"]}
    )
    path = _labels(tmp_path, "c.csv", clash)
    message = _one_line_error(wbi("data", "labels", "penguins", str(path)))
    assert "two different labels" in message and "req-2" in message
    assert "nothing was received" in message
    assert _stored(project) == before  # the earlier labels are untouched


def test_unknown_and_repeated_ids_are_counted_and_kept(project: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "request_id": ["req-1", "req-1", "ghost-1", "ghost-2", "req-4"],
            "label": ["Adelie", "Adelie", "Gentoo", "Gentoo", None],
        }
    )
    done = wbi("data", "labels", "penguins", str(_labels(tmp_path, "l.csv", frame)), "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert (got["labels"], got["repeated_rows"], got["unlabelled_rows"]) == (3, 1, 1)
    assert (got["unknown_ids"], got["unknown_examples"]) == (2, ["ghost-1", "ghost-2"])
    human = wbi("data", "labels", "penguins", str(_labels(tmp_path, "m.csv", frame.head(3))))
    assert "1 request ids are not in the prediction log" in human.stderr
    again = wbi("data", "labels", "penguins", str(tmp_path / "l.csv"), "--json")
    assert json.loads(again.stdout)["already_received"] is True


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x00\x01\x02binary\xff" * 50, "cannot read the labels"),
        (b"id,label\nreq-1,Adelie\n", "expected a request_id column"),
        (b"request_id,label\n,Adelie\n", "row 1 has no request_id"),
        (b"request_id,label,row\nreq-1,Adelie,-3\n", "`row` must be a whole number"),
    ],
)
def test_malformed_labels_files(
    project: Path, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(content)
    assert expected in _one_line_error(wbi("data", "labels", "penguins", str(path)))
    assert _stored(project) == []


def test_a_damaged_log_part_is_reported_skipped_and_kept(project: Path) -> None:
    day = next((project / ".workbench" / "predictions").iterdir())
    cut = day / f"part-{int(time.time() * 1000) + 1}-1-9.parquet"
    whole = next(day.glob("part-*.parquet")).read_bytes()
    cut.write_bytes(whole[: len(whole) // 2])  # a part cut short (a full disk, a crash)
    alien = day / f"part-{int(time.time() * 1000) + 2}-1-10.parquet"
    pd.DataFrame({"x": [1, 2]}).to_parquet(alien)  # Parquet, but not a log part
    done = wbi("monitor", "penguins", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["requests_total"] == 40  # the whole part still counts
    damaged = {Path(d["path"]).name: d["reason"] for d in report["damaged_parts"]}
    assert set(damaged) == {cut.name, alien.name}
    assert "not a prediction log part" in damaged[alien.name]
    assert cut.exists() and alien.exists()  # reported, never deleted
    human = wbi("monitor", "penguins")
    assert human.returncode == 0 and "skipped a damaged log part" in human.stderr
    assert "Traceback" not in human.stderr


def test_bad_windows_are_usage_errors(project: Path) -> None:
    for window in ("0", "-5", "10s", "1w", "abc", "1.5h"):
        assert "--window" in _one_line_error(wbi("monitor", "penguins", "--window", window))


def test_monitor_without_a_model_still_reports_traffic(project: Path) -> None:
    report = json.loads(wbi("monitor", "penguins", "--json", "--window", "20").stdout)
    assert [w["requests"] for w in report["windows"]] == [20, 20]
    assert report["windows"][0]["input_drift"]["available"] is True
    assert report["windows"][0]["prediction_drift"]["available"] is False
