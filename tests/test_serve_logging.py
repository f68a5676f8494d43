"""`serve`'s prediction log, written by a process of its own fed through a pipe:
the rows it writes are those the thread writer made for the same requests; a
burst of concurrent requests is logged once each, with the request id the client
was given, and none is lost at shutdown; a server killed outright still leaves
what it had sent; a stalled writer costs requests nothing (records are dropped
and counted instead)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pytest
from bundle_craft import lightgbm_text, write_bundle
from wbtest import REPO, wait_until

from workbench.config.monitor import MonitorConfig
from workbench.models import bundle_runtime as runtime
from workbench.monitor.log import iter_parts, log_folder, read_log, records_frame, wire_frame
from workbench.monitor.writer import HEAD, LogProcess, decode, encode


def _event(
    i: int, body: Any, answer: dict[str, Any] | None, status: int = 200, **extra: Any
) -> dict[str, Any]:
    """A record as `make_app` hands it to the recorder, with its objects (for the
    thread writer) and its bytes (for the process)."""
    raw = json.dumps(body).encode()
    frame = runtime.frame_from_json(runtime.decode_body(raw)) if answer else None
    return {
        "request_id": f"{i:032x}",
        "ts": 1_800_000_000.0 + i,
        "status": status,
        "latency_s": 0.002 * (i + 1),
        "error": None if answer else f"refused {i} ✗",
        "classes": (answer or {}).get("classes") or extra.pop("classes", None),
        "model": "craft@1",
        "frame": frame,
        "predictions": None if answer is None else answer["predictions"],
        "probabilities": None if answer is None else answer.get("probabilities"),
        "body": raw,
        "response": json.dumps(answer).encode() if answer else b'{"error": "refused"}',
        **extra,
    }


def _through_the_pipe(events: list[dict[str, Any]]) -> list[Any]:
    stream = b"".join(encode(e) for e in events)
    half = len(stream) // 2 + 7  # the pipe hands over bytes, not messages
    first, used = decode(stream[:half])
    rest, used_rest = decode(stream[used:])
    assert used < half and used + used_rest == len(stream)
    return first + rest


def test_the_process_writes_the_rows_the_thread_wrote() -> None:
    classes = ["Adelie", "Gentoo"]
    classified = [
        _event(0, {"rows": [{"x": 1, "colour": "red", "flag": True}]},
               {"predictions": ["Adelie"], "probabilities": [[0.75, 0.25]], "classes": classes}),
        _event(1, [{"x": 2.5, "colour": None}, {"x": None, "colour": 7, "new": "ü"}],
               {"predictions": ["Gentoo", "Adelie"], "probabilities": [[0.1, 0.9], [0.6, 0.4]],
                "classes": classes}),
        _event(2, {"rows": "not rows"}, None, status=422, classes=classes),
        _event(3, {"columns": {"x": [3, 4], "colour": ["blue", "green"]}},
               {"predictions": ["Adelie", "Adelie"], "probabilities": [[1.0, 0.0], [0.5, 0.5]],
                "classes": classes}),
        _event(4, {"rows": [{"x": 123456789012345678901234}]}, None, status=503, classes=classes),
        _event(7, {"rows": [{"colour": 1, "flag": None}, {"colour": 2, "flag": False}]},
               {"predictions": ["Gentoo", "Gentoo"], "probabilities": [[0, 1], [0, 1]],
                "classes": classes}),
    ]
    regression = [
        _event(5, {"rows": [{"a": 0.5, "b": -1}]}, {"predictions": [1.25], "classes": None}),
        _event(6, {"rows": [{"a": 1, "b": 2}, {"a": 3}]},
               {"predictions": [0.5, 7.0], "classes": None}),
    ]
    for events in (classified, regression):
        expected = records_frame(events, "serve", 3)
        got = wire_frame(_through_the_pipe(events), "serve", 3)
        pd.testing.assert_frame_equal(got, expected)
        assert pa.Table.from_pandas(got, preserve_index=False).schema.equals(
            pa.Table.from_pandas(expected, preserve_index=False).schema, check_metadata=True
        )
    assert got["input:b"].isna().tolist() == [False, False, True]
    # Text as the request's frame held it: 7 beside a gap was 7.0; 1 and 2 stay ints.
    colour = wire_frame(_through_the_pipe(classified), "serve", 3)["input:colour"]
    assert colour.fillna("-").tolist() == ["red", "-", "7.0", "-", "blue", "green", "-", "1", "2"]
    with pytest.raises(ValueError, match="damaged"):  # not a stream the server wrote
        decode(HEAD.pack(0.0, 0.0, 200, 0, 1 << 30, 0, 0, 0, 0) + b"x" * 64)
    refused = wire_frame(_through_the_pipe(classified), "serve", 3)
    assert refused.loc[refused["status"] == 422, "error"].tolist() == ["refused 2 ✗"]


def _bundle(tmp_path: Path) -> runtime.Bundle:
    return runtime.load(write_bundle(tmp_path / "bundle", lightgbm_text()))


async def test_a_burst_is_logged_once_each_with_the_id_the_client_got(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    request_log = LogProcess(tmp_path, MonitorConfig(), version=1).start()
    try:
        app = runtime.make_app(bundle, max_in_flight=3, recorder=request_log.record)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://served") as client:
            bodies = [{"rows": [{"a": i / 10, "b": -i / 20}] * (1 + i % 3)} for i in range(240)]
            answers = await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))
            answers.append(await client.post("/predict", content=b"{not json"))
    finally:
        stats = request_log.close()
    codes = {a.status_code for a in answers}
    assert 200 in codes and 503 in codes and 422 in codes  # answered, busy and refused
    assert stats.received == len(answers) and stats.dropped == 0 and stats.failures == 0
    assert list(iter_parts(log_folder(tmp_path))) and not list(
        log_folder(tmp_path).rglob("*.inprogress")
    )
    frame, damaged = read_log(log_folder(tmp_path))
    assert damaged == []
    firsts = frame[frame["row"] == 0].set_index("request_id")
    assert len(firsts) == len(answers) == firsts.index.nunique()
    for body, answer in zip(bodies, answers, strict=False):
        logged = firsts.loc[answer.headers["x-request-id"]]
        assert logged["status"] == answer.status_code
        if answer.status_code == 200:
            assert answer.json()["request_id"] == answer.headers["x-request-id"]
            rows = frame[frame["request_id"] == answer.headers["x-request-id"]]
            assert rows["prediction"].tolist() == answer.json()["predictions"]
            assert rows["input:a"].tolist() == [r["a"] for r in body["rows"]]
        else:
            assert logged["error"] == answer.json()["error"]
    assert stats.written_rows == len(frame)


def test_a_server_killed_outright_leaves_what_it_had_sent(tmp_path: Path) -> None:
    """The writer reads until the pipe ends, which a SIGKILL does too."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from workbench.config.monitor import MonitorConfig
        from workbench.monitor.writer import LogProcess
        log = LogProcess(Path({str(tmp_path)!r}), MonitorConfig(), version=1).start()
        for i in range(150):
            log.record({{"request_id": f"id{{i}}", "ts": 1.8e9 + i, "status": 200,
                        "latency_s": 0.001, "error": None, "classes": None, "model": "m@1",
                        "body": b'{{"rows": [{{"a": %d}}]}}' % i,
                        "response": b'{{"predictions": [%d.5]}}' % i}})
        assert log.stats.dropped == 0
        print(log.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    writer = int(done.stdout.strip())
    wait_until(lambda: not _alive(writer), timeout=120, what="the writer to finish")
    frame, damaged = read_log(log_folder(tmp_path))
    assert damaged == [] and frame["request_id"].tolist() == [f"id{i}" for i in range(150)]
    assert frame["prediction"].tolist() == [i + 0.5 for i in range(150)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_stalled_writer_drops_and_counts_but_never_blocks(tmp_path: Path) -> None:
    request_log = LogProcess(tmp_path, MonitorConfig(), version=1).start()
    assert request_log.pid is not None
    os.kill(request_log.pid, signal.SIGSTOP)
    big = b'{"rows": [{"a": "%s"}]}' % (b"x" * 200_000)
    try:
        def burst() -> None:  # 60 records of 200 kB: many times what the pipe holds
            for i in range(60):
                request_log.record(
                    {"request_id": f"r{i}", "ts": 1.8e9, "status": 200, "latency_s": 0.001,
                     "error": None, "classes": None, "model": "m@1", "body": big,
                     "response": b'{"predictions": [1.0]}'}
                )

        sender = threading.Thread(target=burst)
        sender.start()
        sender.join(120)
        assert not sender.is_alive(), "record() blocked on a full pipe"
        assert request_log.stats.dropped > 0
    finally:
        os.kill(request_log.pid, signal.SIGCONT)
        stats = request_log.close()
    assert stats.received == 60 and stats.failures == 0
    assert stats.written_rows + stats.dropped == 60 and stats.written_rows >= 1
    frame, _ = read_log(log_folder(tmp_path))
    assert len(frame) == stats.written_rows == frame["request_id"].nunique()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # a real `workbench serve` process
def test_serve_stopped_by_sigterm_writes_every_request_and_says_so(tmp_path: Path) -> None:
    """`kill` (or `docker stop`) ends `workbench serve` as Ctrl-C does: exit 143,
    every answered request in the log, and the log's note on the way out."""
    from wbtest import wb_inprocess

    project = tmp_path / "craft"
    (project / "data").mkdir(parents=True)
    (project / "data" / "train.csv").write_text("a,b,y\n0.1,0.2,0.3\n1.0,2.0,4.0\n")
    (project / "train.py").write_text("")
    (project / "workbench.toml").write_text(
        '[project]\nname = "craft"\n[data]\ntrain = "data/train.csv"\ntarget = "y"\n'
        '[train]\ntrainer = "script"\nscript = "train.py"\n'
    )
    wb_inprocess("project", "add", str(project), check=True)
    bundle = write_bundle(tmp_path / "bundle", lightgbm_text())
    port = _free_port()
    output = tmp_path / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "workbench", "serve", str(bundle), "--port", str(port)],
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:

        def healthy() -> bool:
            assert server.poll() is None, output.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=120, what="the server to answer")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            ids = [
                client.post("/predict", json={"rows": [{"a": i, "b": 1}]}).headers["x-request-id"]
                for i in range(40)
            ]
        server.terminate()
        assert server.wait(timeout=120) == 143, output.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
    text = output.read_text()
    assert "prediction log: 40 rows in 1 parts" in text and "Traceback" not in text, text
    frame, damaged = read_log(log_folder(project))
    assert damaged == [] and frame["request_id"].tolist() == ids
    assert frame["input:a"].tolist() == [float(i) for i in range(40)]
