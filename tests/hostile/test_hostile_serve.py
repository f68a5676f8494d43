"""Hostile input to `workbench serve` and `workbench predict`: malformed, oversized
and deceptive HTTP bodies and headers, and broken input files. Every case gets its
documented status or exit code with a one-line reason, never a 500 or a traceback,
and a refused file leaves nothing behind. The server listens on loopback only."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _data_fixtures import train_inline
from wbtest import NETGUARD, REPO, wb_inprocess

pytestmark = pytest.mark.slow

ROW = {
    "island": "Dream",
    "bill_length_mm": 40.1,
    "bill_depth_mm": 18.0,
    "flipper_length_mm": 190,
    "body_mass_g": 3800,
    "sex": "male",
    "year": 2008,
}
RAW = json.dumps([ROW])
JSON = {"content-type": "application/json"}
LIMIT_MB = 1  # the server below is started with --max-request-mb 1


def _with(text: str, old: str, new: str) -> bytes:
    assert old in text
    return text.replace(old, new, 1).encode()


# (id, body, headers, status, words the reason must hold)
BODIES = [
    ("not-json", b"{rows: nope", JSON, 422, "not JSON"),
    ("trailing-garbage", RAW.encode() + b"garbage", JSON, 422, "not JSON"),
    ("truncated-json", RAW.encode()[:-5], JSON, 422, "not JSON"),
    ("empty-body", b"", JSON, 422, "empty"),
    ("whitespace-body", b" \n\t ", JSON, 422, "empty"),
    ("string-top-level", b'"rows"', JSON, 422, "expected"),
    ("number-top-level", b"42", JSON, 422, "expected"),
    ("null-top-level", b"null", JSON, 422, "expected"),
    ("true-top-level", b"true", JSON, 422, "expected"),
    ("object-without-rows", b'{"data": []}', JSON, 422, "expected"),
    ("rows-not-a-list", b'{"rows": {"island": "Dream"}}', JSON, 422, '"rows" must be a list'),
    ("rows-empty", b'{"rows": []}', JSON, 422, "no rows"),
    ("bare-empty-list", b"[]", JSON, 422, "no rows"),
    ("row-is-list", b"[[1, 2, 3]]", JSON, 422, "row 1 is not an object"),
    ("row-is-string", b'["island"]', JSON, 422, "row 1 is not an object"),
    ("row-is-null", b"[null]", JSON, 422, "row 1 is not an object"),
    ("empty-row", b"[{}]", JSON, 422, "row 1 is empty"),
    (
        "nested-object",
        json.dumps([{**ROW, "island": {"name": "Dream"}}]).encode(),
        JSON,
        422,
        "'island'",
    ),
    ("nested-list", json.dumps([{**ROW, "sex": ["male"]}]).encode(), JSON, 422, "'sex'"),
    ("deep-nesting", b"[" * 100_000 + b"]" * 100_000, JSON, 422, "nested too deeply"),
    ("moderate-nesting", b"[" * 500 + b"]" * 500, JSON, 422, "not an object"),
    ("huge-exponent", _with(RAW, "40.1", "1e999"), JSON, 422, "out of range"),
    ("negative-huge-exponent", _with(RAW, "40.1", "-1e400"), JSON, 422, "out of range"),
    ("nan-token", _with(RAW, "40.1", "NaN"), JSON, 422, "NaN"),
    ("infinity-token", _with(RAW, "40.1", "Infinity"), JSON, 422, "Infinity"),
    ("minus-infinity-token", _with(RAW, "40.1", "-Infinity"), JSON, 422, "-Infinity"),
    ("huge-integer", _with(RAW, "3800", "9" * 400), JSON, 422, "out of range"),
    ("giant-integer", _with(RAW, "3800", "9" * 5000), JSON, 422, "out of range"),
    (
        "infinite-as-text",
        json.dumps([{**ROW, "body_mass_g": "inf"}]).encode(),
        JSON,
        422,
        "not a finite number",
    ),
    (
        "huge-as-text",
        json.dumps([{**ROW, "body_mass_g": "1e999"}]).encode(),
        JSON,
        422,
        "not a finite number",
    ),
    (
        "duplicate-keys",
        _with(RAW, '"sex": "male"', '"sex": "male", "sex": "female"'),
        JSON,
        422,
        "appears twice",
    ),
    ("invalid-utf8", RAW.encode().replace(b"Dream", b"Dr\xffeam"), JSON, 422, "not UTF-8"),
    ("utf16-body", RAW.encode("utf-16"), JSON, 422, "not UTF-8"),
    (
        "mixed-types-in-column",
        json.dumps([ROW, {**ROW, "body_mass_g": "heavy"}]).encode(),
        JSON,
        422,
        "'body_mass_g' must be numeric",
    ),
    (
        "empty-string-number",
        json.dumps([{**ROW, "bill_length_mm": ""}]).encode(),
        JSON,
        422,
        "'bill_length_mm'",
    ),
    (
        "unknown-column",
        json.dumps([{**ROW, "zzz": 1}]).encode(),
        JSON,
        422,
        "unknown columns: 'zzz'",
    ),
    (
        "target-column-sent",
        json.dumps([{**ROW, "species": "Adelie"}]).encode(),
        JSON,
        422,
        "unknown columns: 'species'",
    ),
    (
        "missing-column",
        json.dumps([{k: v for k, v in ROW.items() if k != "sex"}]).encode(),
        JSON,
        422,
        "sex",
    ),
    (
        "columns-different-lengths",
        b'{"columns": {"island": ["Dream"], "sex": ["a", "b"]}}',
        JSON,
        422,
        "different lengths",
    ),
    ("columns-not-lists", b'{"columns": {"island": "Dream"}}', JSON, 422, "list of values"),
    ("text-plain", RAW.encode(), {"content-type": "text/plain"}, 415, "not JSON"),
    (
        "form-encoded",
        RAW.encode(),
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "not JSON",
    ),
    (
        "multipart",
        RAW.encode(),
        {"content-type": "multipart/form-data; boundary=x"},
        415,
        "not JSON",
    ),
    (
        "latin1-charset",
        RAW.encode(),
        {"content-type": "application/json; charset=latin-1"},
        415,
        "UTF-8",
    ),
    ("over-the-limit", b"[" + b" " * (LIMIT_MB << 20) + b"]", JSON, 413, "larger than the limit"),
    (
        "lying-content-length-huge",
        None,
        {**JSON, "content-length": str(10 << 30)},
        413,
        "larger than the limit",
    ),
]

GOOD = [
    ("plain-rows", json.dumps({"rows": [ROW]}).encode(), JSON),
    ("no-content-type", RAW.encode(), {}),
    ("json-with-charset", RAW.encode(), {"content-type": "application/json; charset=utf-8"}),
    ("utf8-bom", b"\xef\xbb\xbf" + RAW.encode(), JSON),
    ("null-value-is-missing", json.dumps([{**ROW, "sex": None}]).encode(), JSON),
    ("number-as-text", json.dumps([{**ROW, "body_mass_g": "3800"}]).encode(), JSON),
    ("by-columns", json.dumps({"columns": {k: [v] for k, v in ROW.items()}}).encode(), JSON),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict]]:
    """The penguins sample trained and exported once; its bundle served on loopback
    with a 1 MB request limit. Yields (url, bundle, env)."""
    root = tmp_path_factory.mktemp("hostile-serve")
    env = {
        **os.environ,
        "WORKBENCH_HOME": str(root / "home"),
        "NO_COLOR": "1",
        "PYTHONPATH": os.pathsep.join([str(NETGUARD), os.environ.get("PYTHONPATH", "")]),
    }
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", root / "penguins")
    bundle = root / "bundle"
    # Trained and exported in this process (what is served is the point here, not how
    # the model was made); only the server runs in a process of its own.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", env["WORKBENCH_HOME"])
        patch.setenv("NO_COLOR", "1")
        wb_inprocess("project", "add", str(root / "penguins"), check=True)
        train_inline(root / "penguins")
        wb_inprocess("model", "export", "penguins", "-o", str(bundle), check=True)
    port = _free_port()
    log = (root / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "workbench", "serve", str(bundle), "--port", str(port),
         "--max-request-mb", str(LIMIT_MB)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, (root / "server.log").read_text()
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the server did not answer within 120 s"
            time.sleep(0.1)
    yield url, bundle, env
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)
    log.close()
    assert "Traceback" not in (root / "server.log").read_text()


def _raw(url: str, head: dict[str, str], body: bytes) -> httpx.Response:
    """A request written on the socket as it is (httpx refuses headers that lie)."""
    port = int(url.rsplit(":", 1)[1])
    lines = ["POST /predict HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in head.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return httpx.Response(int(status_line.split()[1]), content=payload)


def _post(url: str, body: bytes | None, headers: dict[str, str]) -> httpx.Response:
    if body is None:  # headers that lie about a body that never comes
        return _raw(url, headers, b"[]")
    return httpx.post(f"{url}/predict", content=body, headers=headers, timeout=60)


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in BODIES],
)
def test_a_hostile_body_gets_its_status_and_a_reason(served, body, headers, status, reason):
    url, _, _ = served
    answer = _post(url, body, headers)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert reason in error and "\n" not in error and "Traceback" not in error
    assert httpx.get(f"{url}/health", timeout=60).status_code == 200  # still serving


@pytest.mark.parametrize(("body", "headers"), [pytest.param(*c[1:], id=c[0]) for c in GOOD])
def test_the_forms_a_client_may_use_are_answered(served, body, headers):
    url, _, _ = served
    answer = _post(url, body, headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0] in {"Adelie", "Chinstrap", "Gentoo"}


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(served):
    url, _, _ = served
    sent = []

    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 64 MB if it were all read
            sent.append(1)
            yield b" " * (1 << 20)

    # No Content-Length: only counting the body as it streams in can refuse it.
    answer = httpx.post(f"{url}/predict", content=chunks(), headers=JSON, timeout=60)
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413 and "larger than the limit" in answer.json()["error"]
    assert len(sent) > 1 and httpx.get(f"{url}/health", timeout=60).status_code == 200


def _write_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """Hostile input files and the reason each must be refused with."""
    train = (REPO / "sample_projects" / "penguins-lightgbm" / "data" / "train.csv").read_bytes()
    head = train.split(b"\n", 1)[0] + b"\n"
    rows = train.splitlines(keepends=True)[:40]
    cases: dict[str, tuple[bytes, str]] = {
        "empty.csv": (b"", "is empty"),
        "header-only.csv": (head, "has a header but no rows"),
        "header-only-no-newline.csv": (head.rstrip(b"\n"), "has a header but no rows"),
        "blank-lines.csv": (b"\n\n\n", "no header"),
        "truncated.csv": (b"".join(rows)[:-15], "cut short"),
        "ragged-middle.csv": (
            b"".join(rows[:10]) + b"1,2,3\n" + b"".join(rows[10:]),
            "wrong number of fields",
        ),
        "extra-field.csv": (
            b"".join(rows[:5]) + rows[5].rstrip(b"\n") + b",extra\n",
            "wrong number of fields",
        ),
        "binary.csv": (b"\x00\x01\x02PK\x03\x04" * 100, "binary content"),
        "latin1.csv": (head + rows[1].replace(b"Torgersen", b"Torg\xe9rsen"), "not UTF-8"),
        "semicolons.csv": (b"".join(r.replace(b",", b";") for r in rows), "semicolons"),
        "tabs.csv": (b"".join(r.replace(b",", b"\t") for r in rows), "tabs"),
        "unterminated-quote.csv": (
            b"".join(rows[:5]) + b'"Adelie,Dream,1,2,3,4,male,2008\n',
            "not valid CSV",
        ),
        "truncated.csv.gz": (gzip.compress(b"".join(rows))[:-30], "gzip stream"),
        "not-gzip.csv.gz": (b"".join(rows), "gzip stream"),
        "not-parquet.parquet": (b"PAR1" + b"\x00" * 64, "not a valid Parquet file"),
        "number-not-numeric.csv": (
            b"".join(rows[:3]) + _field(rows[3], 2, b"ten mm") + b"".join(rows[4:]),
            "must be numeric; got 'ten mm' in row 3",
        ),
    }
    written = {}
    for name, (data, reason) in cases.items():
        path = folder / name
        path.write_bytes(data)
        written[name] = (path, reason)
    return written


def _field(row: bytes, index: int, value: bytes) -> bytes:
    fields = row.rstrip(b"\n").split(b",")
    fields[index] = value
    return b",".join(fields) + b"\n"


INPUTS = [
    "empty.csv", "header-only.csv", "header-only-no-newline.csv", "blank-lines.csv",
    "truncated.csv", "ragged-middle.csv", "extra-field.csv", "binary.csv", "latin1.csv",
    "semicolons.csv", "tabs.csv", "unterminated-quote.csv", "truncated.csv.gz",
    "not-gzip.csv.gz", "not-parquet.parquet", "number-not-numeric.csv",
]  # fmt: skip


@pytest.mark.parametrize("name", INPUTS)
def test_a_hostile_input_file_is_refused_with_the_reason(served, tmp_path, name, monkeypatch):
    _, bundle, env = served
    monkeypatch.setenv("WORKBENCH_HOME", env["WORKBENCH_HOME"])  # whose key signed the bundle
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    path, reason = _write_inputs(inputs)[name]
    before = path.read_bytes()
    out = tmp_path / "out" / "predictions.csv"
    out.parent.mkdir()
    # In process: what is tested is the refusal, its exit code and its one line.
    result = wb_inprocess("predict", str(bundle), str(path), "-o", str(out))
    assert result.returncode == 2, result.stderr
    assert reason in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line
    assert path.read_bytes() == before  # the input is untouched
    assert list(out.parent.iterdir()) == []  # no output, no partial file
