"""Schema inference and validation, on a corpus of malformed and edge-case files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from wbtest import wb_inprocess

from workbench.data.checks import project_schema, validate
from workbench.data.schema import load_schema, write_schema
from workbench.projects import add_project
from workbench.store import open_store

CORPUS = Path(__file__).parent / "data" / "corpus"
REFERENCE = Path(__file__).parent / "data" / "reference.csv"

# file -> (passes?, the failing check, its severity, a fragment of its message)
EXPECTED = {
    "ok_clean.csv": (True, None, None, None),
    "ok_gzip.csv.gz": (True, None, None, None),
    "crlf_line_endings.csv": (True, None, None, None),
    "utf8_bom.csv": (True, None, None, None),
    "empty_0_bytes.csv": (False, "empty", "error", "is empty (0 bytes)"),
    "header_only.csv": (False, "empty", "error", "has a header but no rows"),
    "wrong_delimiter_semicolon.csv": (False, "delimiter", "error", "separated by semicolons"),
    "wrong_delimiter_tab.csv": (False, "delimiter", "error", "separated by tabs"),
    "truncated_last_line.csv": (False, "ragged", "error", "wrong number of fields"),
    "ragged_extra_field.csv": (False, "ragged", "error", "Expected 5 columns, got 6"),
    "not_utf8_latin1.csv": (False, "encoding", "error", "not UTF-8 text: byte 0xf8"),
    "binary_content.csv": (False, "text", "error", "binary content"),
    "truncated_gzip.csv.gz": (False, "truncated", "error", "cut short"),
    "not_parquet.parquet": (False, "parse", "error", "not a valid Parquet file"),
    "wrong_suffix.txt": (False, "format", "error", "expected a .csv, .csv.gz or .parquet"),
    "missing_column.csv": (False, "missing_columns", "error", "missing columns: income"),
    "text_in_numeric.csv": (False, "type", "error", "1 values are not numbers (e.g. 'forty')"),
    "nulls_in_required.csv": (False, "nulls", "error", "1 missing values"),
    "unknown_label.csv": (False, "target", "error", "unknown labels: 'maybe'"),
    "too_many_rows.csv": (False, "row_count", "error", "at most 1000"),
    "extra_column.csv": (True, "extra_columns", "warn", "columns not in the schema: notes"),
    "null_rate_too_high.csv": (True, "nulls", "warn", "100.0% missing values"),
    "out_of_range.csv": (True, "range", "warn", "1 values outside"),
    "unseen_category.csv": (True, "categories", "warn", "unseen categories: 'Tromsø'"),
    "duplicate_rows.csv": (True, "duplicates", "warn", "3 duplicate rows"),
    "no_labels.csv": (True, "target", "warn", "no labels"),
    "fractional_integers.csv": (True, "type", "warn", "fractional part"),
}


@pytest.fixture
def cli():
    """`data validate` and `data schema` start no process: run them in this one."""
    return wb_inprocess


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "people"
    (folder / "data").mkdir(parents=True)
    shutil.copy(REFERENCE, folder / "data" / "train.csv")
    (folder / "workbench.toml").write_text(
        '[project]\nname = "people"\n[data]\ntrain = "data/train.csv"\ntarget = "churned"\n'
        '[train]\ntrainer = "lightgbm"\n'
    )
    store = open_store()
    add_project(store, folder)
    schema, path = project_schema(store, "people")
    schema["dataset"]["max_rows"] = 1000
    write_schema(path, schema, "reference.csv")
    yield store
    store.close()


def test_the_corpus_is_complete():
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(EXPECTED)
    assert len([e for e in EXPECTED.values() if e[1]]) >= 20


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_gives_its_expected_check(project, name):
    passes, check, severity, fragment = EXPECTED[name]
    path = CORPUS / name
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    report = validate(project, "people", path)
    assert report["passed"] is passes, report
    failed = [c for c in report["checks"] if not c["passed"]]
    if check is None:
        assert failed == []
    else:
        match = [c for c in failed if c["check"] == check]
        assert match, failed
        assert match[0]["severity"] == severity
        assert fragment in match[0]["message"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # never changed
    stored = project.row("SELECT passed, report FROM data_reports ORDER BY id DESC LIMIT 1")
    assert bool(stored["passed"]) is passes
    assert json.loads(stored["report"])["file"].endswith(name)


def test_a_directory_and_a_missing_path_fail_with_a_reason(project, tmp_path):
    for path, fragment in ((tmp_path, "is a directory"), (tmp_path / "nope.csv", "no such file")):
        report = validate(project, "people", path)
        assert report["passed"] is False
        assert fragment in report["checks"][0]["message"]


def test_inferred_schema_describes_the_reference(project, tmp_path):
    schema = load_schema(tmp_path / "people" / "schema.toml")
    columns = schema["columns"]
    assert columns["age"]["type"] == "integer" and not columns["age"]["nullable"]
    assert 18 <= columns["age"]["min"] <= columns["age"]["max"] <= 80
    assert columns["income"]["nullable"] and 0 < columns["income"]["max_null_rate"] < 0.2
    assert columns["city"]["categories"] == ["Bergen", "Oslo", "Trondheim"]
    assert schema["target"] == {"name": "churned", "labels": ["no", "yes"]}


def test_pinned_edits_survive_reinference(project, tmp_path):
    path = tmp_path / "people" / "schema.toml"
    text = path.read_text()
    text = text.replace('[columns."city"]\n', '[columns."city"]\npinned = true\n')
    text = text.replace(
        'categories = ["Bergen", "Oslo", "Trondheim"]',
        'categories = ["Bergen", "Oslo", "Trondheim", "Tromsø"]',
    )
    path.write_text(text)
    assert validate(project, "people", CORPUS / "unseen_category.csv")["warnings"] == 0
    schema, _ = project_schema(project, "people", infer=True)
    assert "Tromsø" in schema["columns"]["city"]["categories"]
    assert schema["columns"]["city"]["pinned"] is True
    assert schema["dataset"]["max_rows"] == 1000  # dataset settings are kept too


def test_cli_validate_exit_codes_and_no_tracebacks(cli, project):
    ok = cli("data", "validate", "people", str(CORPUS / "ok_clean.csv"))
    assert ok.returncode == 0 and "passed" in ok.stderr
    bad = cli("data", "validate", "people", str(CORPUS / "not_utf8_latin1.csv"), "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["checks"][0]["check"] == "encoding"
    for name in ("binary_content.csv", "wrong_delimiter_tab.csv", "truncated_gzip.csv.gz"):
        result = cli("data", "validate", "people", str(CORPUS / name))
        assert result.returncode == 1 and "Traceback" not in result.stderr
    shown = cli("data", "schema", "people", "--json", check=True)
    assert json.loads(shown.stdout)["columns"]["city"]["type"] == "string"


def test_a_broken_schema_file_names_the_key(cli, project, tmp_path):
    path = tmp_path / "people" / "schema.toml"
    path.write_text(path.read_text().replace('type = "integer"', 'type = "int64"', 1))
    result = cli("data", "validate", "people", str(CORPUS / "ok_clean.csv"))
    assert result.returncode == 2
    assert "schema.toml" in result.stderr and ".type" in result.stderr
