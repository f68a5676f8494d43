"""`workbench data check`: validation and drift of a batch from one read. Its two
reports are the ones `data validate` and `data drift` store for the same file, the
batch is read, hashed and registered once, a broken file fails with its reason,
and the exit codes follow the two commands'. Also the read itself
(`workbench.data.reading`): the SHA-256 it takes on the way, and where it finds
a byte that is not UTF-8."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from wbtest import REPO, wb_inprocess

from workbench.data import checks, versions
from workbench.data.reading import Malformed, read_batch
from workbench.store import open_store

CORPUS = Path(__file__).parent / "data" / "corpus"


@pytest.fixture
def penguins(tmp_path: Path) -> Path:
    """The sample project, registered, with its incoming batches."""
    folder = tmp_path / "penguins-lightgbm"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    wb_inprocess("project", "add", str(folder), check=True)
    return folder / "data" / "incoming"


def _reports() -> list[tuple[str, int, dict]]:
    """(kind, passed, report) of every stored data report, oldest first."""
    store = open_store()
    try:
        rows = store.rows("SELECT kind, passed, report FROM data_reports ORDER BY id")
        return [(r["kind"], r["passed"], json.loads(r["report"])) for r in rows]
    finally:
        store.close()


def _versions() -> int:
    store = open_store()
    try:
        return int(store.scalar("SELECT count(*) FROM dataset_versions"))
    finally:
        store.close()


def _check(*args: str):
    return wb_inprocess("data", "check", "penguins", *args)


def test_the_reports_are_those_of_validate_and_drift(penguins):
    batch = str(penguins / "batch_02_shifted.csv")
    wb_inprocess("data", "validate", "penguins", batch, check=True)
    wb_inprocess("data", "drift", "penguins", batch, check=True)
    separate = _reports()
    assert [kind for kind, _, _ in separate] == ["validation", "drift"]

    done = _check(batch, "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    together = _reports()[2:]
    assert together == separate  # the same verdicts, the same stored documents
    assert printed["validation"] == separate[0][2]
    assert printed["drift"] == separate[1][2]
    assert printed["drift"]["dataset_drift"] is True and printed["passed"] is True


def test_the_batch_is_read_hashed_and_registered_once(penguins, monkeypatch):
    batch = penguins / "batch_01_clean.csv"
    registered, hashed = [], []
    register, sha256_of = checks.register_version, versions.sha256_of
    monkeypatch.setattr(
        checks, "register_version", lambda *a, **k: registered.append(a[2]) or register(*a, **k)
    )
    monkeypatch.setattr(versions, "sha256_of", lambda p: hashed.append(p) or sha256_of(p))
    before = _versions()

    done = _check(str(batch), "--json")
    assert done.returncode == 0, done.stderr
    assert registered.count(batch.resolve()) == 1
    assert batch.resolve() not in hashed  # hashed by the read itself, not again
    assert _versions() == before + 2  # the reference (first drift check) and the batch
    report = json.loads(done.stdout)
    digest = hashlib.sha256(batch.read_bytes()).hexdigest()
    assert report["validation"]["dataset_version"]["sha256"] == digest
    kinds = [kind for kind, _, _ in _reports()]
    assert kinds == ["validation", "drift"]


def test_json_shape_and_exit_codes_with_fail_on_drift(penguins):
    clean, shifted = str(penguins / "batch_01_clean.csv"), str(penguins / "batch_02_shifted.csv")
    result = json.loads(_check(clean, "--json", "--fail-on", "drift").stdout)
    assert set(result) == {
        "file",
        "passed",
        "dataset_drift",
        "validation",
        "drift",
        "drift_error",
    }
    assert result["passed"] is True and result["dataset_drift"] is False
    assert result["drift_error"] is None
    assert {"checks", "errors", "warnings", "rows"} <= set(result["validation"])
    assert {"columns", "dataset_drift", "verdict_reason", "performance"} <= set(result["drift"])

    assert _check(clean, "--fail-on", "drift").returncode == 0
    assert _check(shifted).returncode == 0  # drift alone fails nothing without --fail-on
    failed = _check(shifted, "--fail-on", "drift")
    assert failed.returncode == 1
    assert "drift" in failed.stderr and "Traceback" not in failed.stderr
    assert json.loads(_check(shifted, "--json", "--fail-on", "drift").stdout)["dataset_drift"]


def test_human_output_has_both_verdicts(penguins):
    done = _check(str(penguins / "batch_02_shifted.csv"))
    assert done.returncode == 0, done.stderr
    assert "passed (0 errors, 2 warnings, 52 rows)" in done.stderr
    assert "batch_02_shifted.csv: drift:" in done.stderr
    assert "body_mass_g" in done.stdout  # the per-column drift table
    assert "model performance: not computed (no model version yet)" in done.stderr


@pytest.mark.parametrize(
    "name,reason",
    [
        ("batch_03_malformed.csv", "separated by semicolons"),
        (str(CORPUS / "not_utf8_latin1.csv"), "not UTF-8 text: byte 0xf8"),
        (str(CORPUS / "binary_content.csv"), "binary content"),
        (str(CORPUS / "truncated_gzip.csv.gz"), "cut short"),
    ],
)
def test_a_broken_file_fails_with_its_reason(penguins, name, reason):
    path = str(penguins / name) if "/" not in name else name
    done = _check(path)
    assert done.returncode == 1
    assert reason in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert "drift not checked" in done.stderr

    result = json.loads(_check(path, "--json").stdout)
    assert result["passed"] is False and result["drift"] is None
    assert reason in result["drift_error"]
    assert any(reason in c["message"] for c in result["validation"]["checks"])
    # The validation report is stored, as `data validate` stores it; no drift report.
    assert [kind for kind, _, _ in _reports()] == ["validation", "validation"]


def test_a_missing_file_and_an_unknown_project_are_one_line_errors(penguins, tmp_path):
    done = _check(str(tmp_path / "nope.csv"))
    assert done.returncode == 1 and "no such file" in done.stderr
    unknown = wb_inprocess("data", "check", "no-such-project", str(tmp_path / "x.csv"))
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr


# --------------------------------------------------------------------------- the read


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_the_read_hashes_the_bytes_of_the_file(tmp_path, suffix):
    frame = pd.DataFrame({"x": [1.5, 2.5, None], "name": ["a", "é", None]})
    path = tmp_path / f"batch{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False, compression="gzip" if suffix.endswith("gz") else None)
    batch = read_batch(path, ["x", "name"])
    assert batch.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert batch.frame["name"].tolist()[:2] == ["a", "é"]


def test_a_gzip_file_with_bytes_after_its_stream_is_refused(tmp_path):
    path = tmp_path / "batch.csv.gz"
    path.write_bytes(gzip.compress(b"x,y\n1,2\n") + b"trailing")
    with pytest.raises(Malformed) as caught:
        read_batch(path)
    assert caught.value.check == "truncated"


def test_a_bad_byte_is_placed_by_offset_and_line_past_the_first_chunk(tmp_path):
    # ASCII lines over 1 MiB (the chunk the text check reads), then one Latin-1 byte,
    # and a UTF-8 character cut by the chunk boundary before it, which is fine.
    line = b"1,abcdefghij\n"
    lines = (1 << 20) // len(line) + 10
    head = b"n,s\n" + line * lines
    cut = (1 << 20) - 1  # "é" (2 bytes) straddles the first chunk's end
    text = head[:cut] + "é".encode() + head[cut:] + b"2,caf\xe9\n"
    path = tmp_path / "batch.csv"
    path.write_bytes(text)
    with pytest.raises(Malformed) as caught:
        read_batch(path, ["n", "s"])
    offset = len(text) - 2
    expected_line = text[:offset].count(b"\n") + 1
    assert caught.value.check == "encoding"
    assert f"byte 0xe9 at offset {offset} (line {expected_line})" in caught.value.message


def test_shared_value_counts_change_no_check_and_no_drift_result():
    from workbench.data.counts import ValueCounts
    from workbench.data.drift import drift_report, reference_profile
    from workbench.data.validate import validate_frame

    reference = pd.DataFrame(
        {
            "city": pd.Series(["Oslo", "Bergen", None] * 40, dtype="str"),
            "mixed": pd.Series(["a", 1, None] * 40, dtype=object),
            "label": pd.Series(["yes", "no", "no"] * 40, dtype="str"),
            "n": [1, 2, 3] * 40,
        }
    )
    batch = pd.DataFrame(
        {
            "city": pd.Series(["Oslo", "Tromsø", None, "Tromsø"] * 30, dtype="str"),
            "mixed": pd.Series(["a", 2, None, "b"] * 30, dtype=object),
            "label": pd.Series(["yes", "maybe", "no", "no"] * 30, dtype="str"),
            "n": [1, 2, 7, 3] * 30,
        }
    )
    schema = {
        "columns": {
            "city": {"type": "string", "categories": ["Oslo", "Bergen"]},
            "mixed": {"type": "string", "categories": ["a", "1"]},
            "n": {"type": "integer", "categories": [1, 2, 3]},
        },
        "target": {"name": "label", "labels": ["yes", "no"]},
    }
    counts = ValueCounts(batch)
    shared = validate_frame(batch, schema, counts=counts)
    assert shared == validate_frame(batch, schema)
    unseen = next(c for c in shared if c.check == "categories" and c.column == "city")
    assert unseen.details == {"unseen": ["Tromsø"], "count": 60}
    target = next(c for c in shared if c.check == "target")
    assert not target.passed and "maybe" in target.message
    profile = reference_profile(reference)
    assert drift_report(profile, batch, counts=counts) == drift_report(profile, batch)


@pytest.mark.slow  # a fresh interpreter, to see what the command imports
def test_data_check_without_a_model_imports_no_sklearn_or_ui(penguins):
    import subprocess
    import sys

    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.stderr.write("
        "'\\nMODULES ' + json.dumps(sorted({m.split('.')[0] for m in sys.modules})) + '\\n'))\n"
        "sys.argv = ['workbench', *sys.argv[1:]]\n"
        "from workbench.cli import main\n"
        "main()\n"
    )
    batch = str(penguins / "batch_02_shifted.csv")  # labelled, but no model to score
    done = subprocess.run(
        [sys.executable, "-c", probe, "data", "check", "penguins", batch, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    modules = set(json.loads(line.removeprefix("MODULES ")))
    assert {"pandas", "pyarrow", "scipy"} <= modules  # it did read and test the batch
    assert not modules & {"sklearn", "lightgbm", "textual", "optuna", "torch"}
