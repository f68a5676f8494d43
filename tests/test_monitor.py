"""Closing the loop from serving: `workbench serve` on a loopback port logs what it
answers, `workbench monitor` reports traffic, input and prediction drift and (once
`workbench data labels` has brought labels) live performance, and a monitor that
sees drift queues a retraining pipeline that goes through the gate.

The penguins sample (LightGBM) is trained and exported once for the module; each
test gets its own copy of that store and an empty prediction log."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import _export_fixtures
from wbtest import REPO, regular_only, wait_until, wb_inprocess

pytestmark = pytest.mark.slow

FEATURES = [
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
    "year",
]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenMP's worker threads spin while they wait: on a busy two-core machine each
    one-row prediction of the server paid for them. The trainers fit small tables on
    one thread themselves; the server's predictions (the same answers) do too."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, shared_cache: Path
) -> tuple[Path, Path, Path]:
    """(store, project folder, bundle): penguins trained and exported once. The
    training is the run's shared one (the serving and export tests train the same
    sample); its store is copied here with the project folder, and the copy points
    at this module's folder, which the tests write into (the prediction log, the
    automation policy)."""
    root = tmp_path_factory.mktemp("monitored")
    shared = _export_fixtures.trained_home(shared_cache, ("penguins",))
    home = _export_fixtures.copy_home(shared, root / "home")
    project = Path(shutil.copytree(shared.parent / "penguins", root / "penguins"))
    conn = sqlite3.connect(home / "workbench.db")
    try:
        with conn:
            conn.execute("UPDATE projects SET path = ?", (str(project),))
            conn.execute(
                "UPDATE dataset_versions SET path = replace(path, ?, ?)",
                (str(shared.parent / "penguins"), str(project)),
            )
    finally:
        conn.close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        # The run's cache, as the tests' own stores have (what LightGBM accepts, say).
        mp.setenv("WORKBENCH_CACHE", str(shared_cache))
        mp.setenv("NO_COLOR", "1")
        wb_inprocess("model", "export", "penguins", "-o", str(root / "bundle"), check=True)
    return home, project, root / "bundle"


@pytest.fixture
def served(trained: tuple[Path, Path, Path], wb_home: Path) -> tuple[Path, Path]:
    """(project folder, bundle) over a fresh copy of the trained store, with an
    empty prediction log."""
    home, project, bundle = trained
    shutil.copytree(home, wb_home, ignore=regular_only)
    shutil.rmtree(project / ".workbench", ignore_errors=True)
    return project, bundle


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`workbench serve` in its own process on a loopback port."""

    def __init__(self, bundle: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workbench", "serve", str(bundle), "--port", str(self.port)],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_until(self._healthy, timeout=60, what=f"{self.url}/health")

    def _healthy(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> str:
        """Ctrl-C, as a user stops it: the log is flushed on the way out."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        return self.log.read_text()


@pytest.fixture
def server(served: tuple[Path, Path], tmp_path: Path) -> Iterator[Server]:
    running = Server(served[1], tmp_path / "serve.log")
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait(timeout=10)


def _rows(shift: bool, count: int, seed: int) -> pd.DataFrame:
    """Rows like the training data; shifted: mostly Gentoo penguins (the mix of the
    population moves, every value still within the schema's ranges, and every
    species still there for the macro F1 of live performance)."""
    frame = pd.read_csv(REPO / "sample_projects" / "penguins-lightgbm" / "data" / "train.csv")
    weights = (frame["species"] == "Gentoo") * 8.0 + 1.0 if shift else None
    rows = frame.sample(count, replace=True, weights=weights, random_state=seed)
    return rows.reset_index(drop=True)


def _send(url: str, rows: pd.DataFrame) -> list[str]:
    """One request per row; the request ids the server gave back."""
    ids = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for record in rows[FEATURES].to_dict("records"):
            record = {k: (None if pd.isna(v) else v) for k, v in record.items()}
            answer = client.post("/predict", json={"rows": [record]})
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-request-id"] == answer.json()["request_id"]
            ids.append(answer.json()["request_id"])
    return ids


def _monitor(*args: str, code: int = 0) -> dict:
    done = wb_inprocess("monitor", "penguins", "--json", *args)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


def _labels(path: Path, ids: list[str], labels: pd.Series, column: str = "label") -> dict:
    pd.DataFrame({"request_id": ids, column: labels}).to_csv(path, index=False)
    done = wb_inprocess("data", "labels", "penguins", str(path), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


WRONG = {"Adelie": "Gentoo", "Gentoo": "Chinstrap", "Chinstrap": "Adelie"}


def test_serve_monitor_labels_and_a_monitor_triggered_retrain(
    server: Server, served: tuple[Path, Path], tmp_path: Path
) -> None:
    """The loop: a clean stream then a shifted one through `serve`; monitor sees
    the shift in inputs and predictions and not in the clean window; delayed
    labels give live performance (degraded where they disagree); with
    retrain_on = "monitor" the labelled traffic is retrained on through the gate."""
    project, _ = served
    clean, shifted = _rows(False, 150, seed=1), _rows(True, 150, seed=2)
    clean_ids = _send(server.url, clean)
    # A request the model refuses is logged as an error, without its inputs.
    refused = httpx.post(f"{server.url}/predict", json={"rows": [{"nope": 1}]}, timeout=30)
    assert refused.status_code == 422 and refused.headers["x-request-id"]
    shifted_ids = _send(server.url, shifted)
    said = server.stop()
    assert "prediction log: 301 rows" in said, said
    assert list((project / ".workbench" / "predictions").glob("*/part-*.parquet"))

    report = _monitor("--window", "151")
    first, second = report["windows"]
    assert (first["requests"], first["errors"], second["requests"]) == (151, 1, 150)
    assert 0 < first["latency_ms"]["p50"] <= first["latency_ms"]["p99"]
    # The clean stream stays quiet ...
    assert not first["input_drift"]["dataset_drift"], first["input_drift"]["summary"]
    assert first["input_drift"]["drifted_columns"] == []
    assert not first["prediction_drift"]["dataset_drift"], first["prediction_drift"]["summary"]
    # ... and the shifted one is seen, in its inputs and in what the model answered.
    assert second["input_drift"]["dataset_drift"]
    assert {"flipper_length_mm", "island"} <= set(second["input_drift"]["drifted_columns"])
    assert second["prediction_drift"]["dataset_drift"], second["prediction_drift"]["summary"]
    assert "prediction" in second["prediction_drift"]["drifted_columns"]
    assert report["status"] == "drift" and report["drift"] is True
    assert any(a.startswith("input drift: ") for a in report["alerts"])
    assert first["performance"]["available"] is False  # no labels yet
    assert report["retrain"]["triggered"] is False  # the policy does not ask for it
    _monitor("--window", "151", "--fail-on", "drift", code=1)
    assert _monitor("--window", "1d")["windows"][0]["requests"] == 301  # one day: both

    # Labels arrive later; the newest window is judged against the noise band.
    got = _labels(tmp_path / "clean.csv", clean_ids, clean["species"])
    assert (got["labels"], got["unknown_ids"]) == (150, 0)
    _labels(tmp_path / "shifted.csv", shifted_ids, shifted["species"], "species")
    report = _monitor("--window", "151", "--fail-on", "degraded")
    older, live = report["windows"][0]["performance"], report["windows"][1]["performance"]
    assert older["available"] and older["labelled"] == 150 and older["metric"] == "f1"
    assert 0.8 < older["score"] <= 1.0 and older["degraded"] is None  # scored, not judged
    assert live["labelled"] == 150 and live["verdict"] in ("within", "improved")
    assert live["band"][0] < live["baseline"] < live["band"][1] and not report["degraded"]
    # Later labels that say the model was wrong replace those: degraded.
    _labels(tmp_path / "wrong.csv", shifted_ids, shifted["species"].map(WRONG))
    report = _monitor("--window", "151", "--fail-on", "degraded", code=1)
    wrong = report["windows"][1]["performance"]
    assert wrong["verdict"] == "degraded" and wrong["score"] < 0.2
    assert report["degraded"] and report["status"] == "degraded"

    # Into the loop: the automation policy retrains from what monitor saw.
    config = project / "workbench.toml"
    original = config.read_text()
    try:
        policy = 'promote = "if-better"\nretrain_on = "monitor"'
        # No watched folder (its sample batches are not this test's) and no export.
        changed = original.replace('promote = "if-better"', policy)
        changed = changed.replace('export = ["bundle"]', "export = []")
        config.write_text(changed.replace('watch = ["data/incoming"]', "watch = []"))
        report = _monitor()
        assert report["retrain"]["triggered"], report["retrain"]
        assert report["retrain"]["rows"] == 300  # the refused request has no inputs
        pipeline_id = report["retrain"]["pipeline"]
        assert _monitor()["retrain"]["triggered"] is False  # nothing new to hand over

        # The queued pipeline is run as the watcher would (`pipeline run` resumes it),
        # here in this process: its retrain is a supervised run (a supervisor and a
        # trainer of their own), started the usual way rather than forked from the
        # warm runner, which would outlive the command.
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WORKBENCH_WARM", "0")
            done = wb_inprocess("pipeline", "run", "penguins", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"resumed pipeline {pipeline_id}" in done.stderr
        listed = json.loads(wb_inprocess("pipeline", "list", "penguins", "--json").stdout)
        ran = next(p for p in listed if p["id"] == pipeline_id)
        assert (ran["trigger"], ran["state"]) == ("monitor", "done")
        steps = {s["step"]: s for s in ran["steps"]}
        assert steps["validate"]["status"] == "ok", steps["validate"]
        assert steps["retrain"]["status"] == "ok", steps["retrain"]
        assert "evaluate" in steps and "promote" in steps, list(steps)
        assert ran["exit_code"] in (0, 3), ran  # promoted, or the champion kept by the gate
        assert ran["outcome"] in ("promoted", "kept champion"), ran
    finally:
        config.write_text(original)


def test_predict_log_adds_request_ids_that_labels_join(
    served: tuple[Path, Path], tmp_path: Path
) -> None:
    project, bundle = served
    source = tmp_path / "batch.csv"
    rows = _rows(False, 80, seed=4)
    rows[FEATURES].to_csv(source, index=False)
    out = tmp_path / "out.csv"
    done = wb_inprocess("predict", str(bundle), str(source), "-o", str(out), "--log", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["logged_rows"] == 80
    predicted = pd.read_csv(out)
    assert predicted["row"].tolist() == list(range(80))
    labels = predicted[["request_id", "row"]].assign(label=rows["species"])
    labels.to_csv(tmp_path / "labels.csv", index=False)
    assert wb_inprocess("data", "labels", "penguins", str(tmp_path / "labels.csv")).returncode == 0
    window = _monitor()["windows"][0]
    assert window["requests"] == 1 and window["rows"] == 80
    assert window["performance"]["labelled"] == 80


def test_data_drift_fail_on_drift(served: tuple[Path, Path], tmp_path: Path) -> None:
    batch = tmp_path / "shifted.csv"
    _rows(True, 150, seed=5).to_csv(batch, index=False)
    plain = wb_inprocess("data", "drift", "penguins", str(batch))
    assert plain.returncode == 0, plain.stderr
    failing = wb_inprocess("data", "drift", "penguins", str(batch), "--fail-on", "drift", "--json")
    assert failing.returncode == 1, failing.stderr
    assert json.loads(failing.stdout)["dataset_drift"] is True
    clean = tmp_path / "clean.csv"
    _rows(False, 150, seed=6).to_csv(clean, index=False)
    quiet = wb_inprocess("data", "drift", "penguins", str(clean), "--fail-on", "drift")
    assert quiet.returncode == 0, quiet.stderr


async def test_logging_never_blocks_a_request(served: tuple[Path, Path]) -> None:
    """A writer stuck on a slow disk: every request is still answered; records
    beyond the queue are dropped and counted, the rest written on close."""
    import threading

    from workbench.config.monitor import MonitorConfig
    from workbench.models import bundle_runtime as runtime
    from workbench.monitor.log import PredictionLog

    project, bundle_path = served
    released = threading.Event()

    class StuckLog(PredictionLog):
        def _write(self, day: str, frame: object) -> None:
            released.wait(120)
            super()._write(day, frame)

    request_log = StuckLog(project, MonitorConfig(), version=1, queue_size=20, flush_seconds=0.05)
    request_log.start()
    bundle = runtime.load(bundle_path)
    app = runtime.make_app(bundle, recorder=request_log.record)
    row = _rows(False, 1, seed=8)[FEATURES].to_dict("records")[0]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://served") as client:
        answers = [await client.post("/predict", json={"rows": [row]}) for _ in range(200)]
    assert [a.status_code for a in answers] == [200] * 200
    assert len({a.headers["x-request-id"] for a in answers}) == 200
    assert request_log.stats.written_rows == 0  # the writer is still stuck
    assert request_log.stats.dropped > 0
    released.set()
    stats = request_log.close()
    assert stats.received == 200
    assert stats.written_rows + stats.dropped == 200
    assert stats.written_rows >= 20
