"""`workbench predict` over files of every format, and `workbench serve` (and the
bundle's own runtime) as real servers on a loopback port, driven with httpx."""

from __future__ import annotations

import io
import json
import math
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import _export_fixtures
from wbtest import REPO, wb_auto, wb_inprocess

from workbench.models import bundle_runtime as runtime


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto

pytestmark = pytest.mark.slow

BLOCK_WORKBENCH = (
    "import sys, runpy; sys.modules['workbench'] = None; sys.argv = sys.argv[1:];"
    " runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.fixture(scope="module")
def exported(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the penguins sample (LightGBM) trained, and its champion exported
    once as a bundle folder (`bundle`, signed with the store's key, beside `home`)."""
    root = tmp_path_factory.mktemp("exported")
    trained = _export_fixtures.trained_home(shared_cache, ("penguins",))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", str(_export_fixtures.copy_home(trained, root / "home")))
        env.setenv("WORKBENCH_CACHE", str(shared_cache))
        env.setenv("NO_COLOR", "1")
        wb_auto("model", "export", "penguins", "-o", str(root / "bundle"), check=True)
    return root


@pytest.fixture
def bundle(exported: Path, wb_home: Path, tmp_path: Path) -> Path:
    """The penguins champion exported as a bundle folder; the test's store is a copy of
    the one that exported it (and holds the key that signed it)."""
    _export_fixtures.copy_home(exported / "home", wb_home)
    return Path(shutil.copytree(exported / "bundle", tmp_path / "penguins-bundle"))


@pytest.fixture
def holdout(bundle: Path) -> pd.DataFrame:
    from workbench.models.registry import resolve
    from workbench.store import open_store

    store = open_store()
    try:
        return pd.read_parquet(resolve(store, "penguins").holdout_path)
    finally:
        store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """Start a server command on a free loopback port; wait (bounded) until /health
    answers; stop it at the end of the test."""
    started: list[subprocess.Popen] = []

    def start(*command: str) -> tuple[str, int]:
        port = _free_port()
        log = (tmp_path / f"server-{port}.log").open("w")
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / f"server-{port}.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return url, port
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"no answer from {url}/health within 60 s")

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_serve_answers_health_metadata_predict_and_422(
    cli, bundle, holdout, start_server, tmp_path
):
    from workbench.models.registry import load_model, resolve
    from workbench.store import open_store

    store = open_store()
    try:
        expected, expected_proba = load_model(resolve(store, "penguins")).predict(holdout)
    finally:
        store.close()
    archive = tmp_path / "penguins.zip"
    cli("model", "export", "penguins", "-o", str(archive), check=True)
    url, port = start_server(sys.executable, "-m", "workbench", "serve", str(archive))

    health = httpx.get(f"{url}/health").json()
    assert health == {"status": "ok", "model": "penguins@1"}
    metadata = httpx.get(f"{url}/metadata").json()
    assert [f["name"] for f in metadata["features"]][:2] == ["island", "bill_length_mm"]
    assert metadata["target"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert "files" not in metadata

    rows = _records(holdout.drop(columns=["species"]))
    answer = httpx.post(f"{url}/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["predictions"] == list(expected)
    assert body["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    np.testing.assert_allclose(np.array(body["probabilities"]), expected_proba, rtol=1e-12)
    # The same rows as a bare list, and as columns.
    assert httpx.post(f"{url}/predict", json=rows[:5]).json()["predictions"] == list(expected[:5])
    columns = {k: [r[k] for r in rows[:5]] for k in rows[0]}
    by_columns = httpx.post(f"{url}/predict", json={"columns": columns}).json()
    assert by_columns["predictions"] == list(expected[:5])

    missing = httpx.post(f"{url}/predict", json={"rows": [{**rows[0], "sex": None}]})
    assert missing.status_code == 200  # a null value is a missing value, not a missing column
    no_column = httpx.post(
        f"{url}/predict", json={"rows": [{k: v for k, v in rows[0].items() if k != "sex"}]}
    )
    assert no_column.status_code == 422 and "sex" in no_column.json()["error"]
    not_json = httpx.post(f"{url}/predict", content=b"{rows: nope")
    assert not_json.status_code == 422 and "not JSON" in not_json.json()["error"]
    wrong_type = httpx.post(f"{url}/predict", json=[{**rows[0], "body_mass_g": "heavy"}])
    assert wrong_type.status_code == 422
    assert "'body_mass_g' must be numeric; got 'heavy'" in wrong_type.json()["error"]
    nested = httpx.post(f"{url}/predict", json=[{**rows[0], "island": {"name": "Dream"}}])
    assert nested.status_code == 422 and "island" in nested.json()["error"]
    assert httpx.post(f"{url}/predict", json={"rows": []}).status_code == 422
    assert httpx.get(f"{url}/predict").status_code == 405

    # The port is taken now: a clear error, no traceback. The command ends there
    # without serving, so it runs in this process.
    taken = wb_inprocess("serve", str(archive), "--port", str(port), timeout=60)
    assert taken.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in taken.stderr
    assert "Traceback" not in taken.stderr


def test_the_bundles_own_runtime_serves_without_workbench(bundle, holdout, start_server):
    url, _ = start_server(
        sys.executable, "-c", BLOCK_WORKBENCH, str(bundle / "wb_runtime.py"), "serve", str(bundle)
    )
    rows = _records(holdout.drop(columns=["species"]).head(3))
    body = httpx.post(f"{url}/predict", json=rows).json()
    assert len(body["predictions"]) == 3 and set(body["predictions"]) <= {
        "Adelie",
        "Chinstrap",
        "Gentoo",
    }
    assert httpx.post(f"{url}/predict", json=[{"island": "Dream"}]).status_code == 422


def test_loopback_is_told_apart_from_other_hosts():
    assert runtime.is_loopback("127.0.0.1") and runtime.is_loopback("localhost")
    assert runtime.is_loopback("::1")
    assert not runtime.is_loopback("0.0.0.0") and not runtime.is_loopback("10.1.2.3")


def test_predict_reads_and_writes_every_format_in_chunks(cli, bundle, holdout, tmp_path):
    loaded = runtime.load(bundle)
    frame = pd.concat([holdout] * 20, ignore_index=True)  # 1,200 rows
    frame["row_id"] = range(len(frame))  # not a feature: kept as it is
    frame.loc[::100, "island"] = "Atlantis"  # a category the model never saw
    expected, expected_proba = loaded.predict(frame)
    inputs = {
        "in.parquet": lambda p: frame.to_parquet(p, row_group_size=100),
        "in.csv.gz": lambda p: frame.to_csv(p, index=False),
        "in.csv": lambda p: frame.to_csv(p, index=False),
    }
    for name, write in inputs.items():
        write(tmp_path / name)

    result = cli(
        "predict", str(bundle), str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.csv"),
        "--chunk-rows", "250", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == len(frame) and summary["chunks"] > 1
    assert summary["unseen_categories"] == {"island": math.ceil(len(frame) / 100)}
    assert sorted(summary["ignored_columns"]) == ["row_id", "species"]
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["row_id"].tolist() == list(range(len(frame)))
    assert out["prediction"].tolist() == list(expected)

    result = cli(
        "predict", str(bundle), str(tmp_path / "in.csv.gz"), "-o", str(tmp_path / "out.parquet"),
        "--chunk-rows", "500",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    unseen = math.ceil(len(frame) / 100)
    assert f"categories the model never saw, predicted as missing: island ({unseen})" in (
        result.stderr
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["prediction"].tolist() == list(expected)
    np.testing.assert_allclose(
        out[["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]].to_numpy(), expected_proba
    )

    result = cli("predict", str(bundle), str(tmp_path / "in.csv"))  # CSV on stdout
    assert result.returncode == 0, result.stderr
    streamed = pd.read_csv(io.StringIO(result.stdout))
    assert len(streamed) == len(frame) and streamed["prediction"].tolist() == list(expected)

    out = tmp_path / "out.csv.gz"
    result = cli("predict", str(bundle), str(tmp_path / "in.csv"), "-o", str(out))
    assert result.returncode == 0 and pd.read_csv(out)["prediction"].tolist() == list(expected)


def test_predict_refuses_bad_input_clearly_and_leaves_no_partial_output(cli, bundle, tmp_path):
    train = pd.read_csv(REPO / "sample_projects" / "penguins-lightgbm" / "data" / "train.csv")
    frame = pd.concat([train] * 5, ignore_index=True)
    frame["bill_length_mm"] = frame["bill_length_mm"].astype(object)
    frame.loc[1000, "bill_length_mm"] = "n/a mm"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    out = tmp_path / "out.parquet"
    result = cli(
        "predict", str(bundle), str(tmp_path / "bad.csv"), "-o", str(out), "--chunk-rows", "300"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "column 'bill_length_mm' must be numeric; got 'n/a mm' in row 1001" in result.stderr
    assert list(tmp_path.glob("*out*")) == []  # neither the output nor its partial file

    for args, message in (
        ((str(tmp_path / "none.csv"),), "none.csv: no such file"),
        ((str(tmp_path / "bad.csv"), "-o", str(tmp_path / "out.xlsx")), "expected a .csv"),
        ((str(tmp_path / "bad.csv"), "--json"), "--json"),
    ):
        result = cli("predict", str(bundle), *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    result = cli("predict", str(tmp_path / "no-bundle"), str(tmp_path / "bad.csv"))
    assert result.returncode == 2 and "no such bundle" in result.stderr


def test_predict_checks_the_file_first_and_skip_invalid_sets_rows_aside(cli, bundle, tmp_path):
    train = (REPO / "sample_projects" / "penguins-lightgbm" / "data" / "train.csv").read_text()
    lines = train.splitlines(keepends=True)[:101]  # the header and 100 rows
    header_only = tmp_path / "header.csv"
    header_only.write_text(lines[0])
    result = cli("predict", str(bundle), str(header_only), "-o", str(tmp_path / "o.csv"))
    assert result.returncode == 2 and "has a header but no rows" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o.csv").exists()

    # Cut short in the middle of its last row, and a row in the middle with too few fields;
    # row 50's body mass is not a number.
    fields = lines[50].rstrip("\n").split(",")
    fields[5] = "heavy"
    broken = [*lines[:10], "Adelie,Dream,39.0\n", *lines[10:50], ",".join(fields) + "\n"]
    broken += lines[51:]
    truncated = tmp_path / "truncated.csv"
    truncated.write_text("".join(broken)[:-20])
    out = tmp_path / "scored.csv"
    result = cli("predict", str(bundle), str(truncated), "-o", str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "row 10: 3 fields where the header has 8" in result.stderr
    assert "--skip-invalid" in result.stderr and not out.exists()

    result = cli("predict", str(bundle), str(truncated), "-o", str(out), "--skip-invalid")
    assert result.returncode == 0, result.stderr
    assert "set aside 3 invalid rows" in result.stderr
    rejected = pd.read_csv(tmp_path / "scored.rejected.csv")
    assert rejected["row"].tolist() == [10, 101, 51]
    assert "cut short" in rejected["reason"][1]
    assert rejected["reason"][2] == "column 'body_mass_g': 'heavy' is not a number"
    assert rejected["record"][0] == "Adelie,Dream,39.0"
    scored = pd.read_csv(out)
    assert len(scored) == 101 - 3  # every other row, in order
    kept = pd.read_csv(io.StringIO("".join([lines[0], *lines[1:50], *lines[51:100]])))
    pd.testing.assert_series_equal(scored["bill_length_mm"], kept["bill_length_mm"])

    result = cli("predict", str(bundle), str(truncated), "--skip-invalid")
    assert result.returncode == 2 and "give -o OUTPUT" in result.stderr


def test_serve_bounds_requests_in_flight_and_body_size(bundle, holdout, start_server):
    url, _ = start_server(
        sys.executable, "-m", "workbench", "serve", str(bundle),
        "--max-in-flight", "1", "--max-request-mb", "0.5",
    )  # fmt: skip
    rows = _records(holdout.drop(columns=["species"]).head(2))
    body = json.dumps({"rows": rows}).encode()
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    def hold() -> socket.socket:
        """A request whose body stops halfway: it keeps the one slot while it waits."""
        sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=30)
        sock.sendall(head + body[:5])
        return sock

    def answered(sock: socket.socket) -> bool:
        sock.settimeout(0.05)
        try:
            sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            return False
        finally:
            sock.settimeout(30)
        return True

    holder, busy = hold(), None
    deadline = time.monotonic() + 60
    while busy is None and time.monotonic() < deadline:
        if answered(holder):  # a probe had the slot when it came: try again
            holder.close()
            holder = hold()
        answer = httpx.post(f"{url}/predict", json=rows, timeout=30)
        if answer.status_code == 503:
            busy = answer  # probes go one at a time: the holder has the slot
        else:
            time.sleep(0.1)  # a gap between probes for the holder to take the slot
    assert busy is not None, "no 503 while a request was in flight"
    assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
    holder.sendall(body[5:])
    received = b""
    while chunk := holder.recv(65536):
        received += chunk
    holder.close()
    assert received.startswith(b"HTTP/1.1 200"), received[:300]
    # The slot is free again; a body over 0.5 MB is refused with the reason.
    assert httpx.post(f"{url}/predict", json=rows, timeout=30).status_code == 200
    big = httpx.post(f"{url}/predict", content=b" " * (600 << 10), timeout=30)
    assert big.status_code == 413 and "524,288 bytes" in big.json()["error"]
    nan = httpx.post(f"{url}/predict", content=json.dumps(rows).replace("39", "NaN", 1))
    assert nan.status_code in (200, 422)  # only a NaN token is refused, with the reason
    inf = httpx.post(f"{url}/predict", content=json.dumps(rows)[:-2] + ', "year": 1e999}]')
    assert inf.status_code == 422 and "out of range" in inf.json()["error"]
