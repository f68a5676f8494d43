"""Hostile inputs to the statistics: drift and validation of batches with all-NaN
columns, a single row, infinities, constant columns, wrong types, huge strings
and broken headers; the model's metric on hostile labelled batches; and
`model promote` with margins that are not numbers from 0 to 1e9.

Documented exit codes: `data drift` 0 with a report (columns that cannot be
tested are skipped with the reason), 1 when the file cannot be read as a table;
`data validate` 0 passed, 1 failed; `model promote --margin` 2. Every case: no
traceback, a one-line reason on failure, the user's file unchanged, and nothing
half-made left behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from _data_fixtures import train_inline
from wbtest import REPO, wb_inprocess

HEADER = "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n"


def _rows(n: int = 30, *, species="Adelie", island="Torgersen", bill=None, mass=None) -> str:
    """Penguin rows; each keyword is a value or a function of the row number."""

    def value(given, i, default):
        if given is None:
            return default
        return given(i) if callable(given) else given

    return "".join(
        f"{value(species, i, 'Adelie')},{value(island, i, 'Torgersen')},"
        f"{value(bill, i, 38 + (i % 7) * 0.9)},18.0,{190 + i % 9},"
        f"{value(mass, i, 3400 + 25 * (i % 13))},female,2008\n"
        for i in range(n)
    )


# id -> (file text, expected exit of `data drift`, of `data validate`, a phrase of the reason)
BATCHES: dict[str, tuple[str, int, int, str]] = {
    "all-NaN column": (HEADER + _rows(bill=""), 0, 0, "current has no non-null values"),
    "all-NaN column and labels": (HEADER + _rows(bill="", species=""), 0, 1, ""),
    "every column empty": (HEADER + ",,,,,,,\n" * 5, 0, 1, ""),
    "a single row": (HEADER + _rows(1), 0, 0, ""),
    "a single row of NaN": (HEADER + ",,,,,,,\n", 0, 1, ""),
    "a column of infinities": (HEADER + _rows(mass="inf"), 0, 0, "current has no non-null"),
    "a column of -infinities": (HEADER + _rows(mass="-inf"), 0, 0, ""),
    "infinities and NaN mixed": (
        HEADER + _rows(mass=lambda i: ["inf", "nan", "", "-inf"][i % 4]),
        0,
        0,
        "",
    ),
    "constant columns": (HEADER + _rows(bill=40.0, mass=4000.0), 0, 0, ""),
    # Out of the reference's range: a warning of validation, a drift (strong) of drift.
    "one constant value far away": (HEADER + _rows(mass=99999.0), 0, 0, "strong"),
    "huge finite numbers": (HEADER + _rows(bill="1e308", mass="-1e308"), 0, 0, "strong"),
    "text in a numeric column": (HEADER + _rows(bill="abc"), 0, 1, "type changed"),
    "booleans in a numeric column": (
        HEADER + _rows(bill=lambda i: "true" if i % 2 else "false"),
        0,
        0,
        "type changed",
    ),
    "numbers in a categorical column": (HEADER + _rows(island=lambda i: i), 0, 0, ""),
    "a 100 kB string in a category": (HEADER + _rows(5, island="x" * 100_000), 0, 0, ""),
    "a 2 MB string in a category": (HEADER + _rows(3, island="x" * 2_000_000), 1, 1, "not valid CSV"),
    "a column named twice": (
        HEADER.replace("year", "island") + _rows(),
        1,
        1,
        "names column(s) island more than once",
    ),
    "a header and no rows": (HEADER, 1, 1, "has a header but no rows"),
    "NUL bytes": ("\x00\x01garbage\n", 1, 1, "binary content"),
}


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    wb_inprocess("project", "add", str(folder), check=True)
    return folder


def _fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def _half_made(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.suffix in (".partial", ".tmp") or p.name.endswith("~")]


def _check_outcome(result, expected: int, phrase: str, command: str) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == expected, f"{command}: {result.returncode}\n{result.stderr}"
    if command == "drift" and expected == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot check drift: "), lines
        assert phrase in lines[0]


@pytest.mark.parametrize("case", BATCHES)
def test_hostile_batches_for_drift_and_validate(case: str, tmp_path: Path, wb_home: Path) -> None:
    text, drift_exit, validate_exit, phrase = BATCHES[case]
    _project(tmp_path)
    batch = tmp_path / "incoming" / "batch.csv"
    batch.parent.mkdir()
    batch.write_text(text)
    before = _fingerprint(batch)

    drift = wb_inprocess("data", "drift", "penguins", str(batch), "--json")
    _check_outcome(drift, drift_exit, phrase, "drift")
    if drift_exit == 0:
        report = json.loads(drift.stdout)
        for column in report["columns"]:
            assert column["reason"]  # tested or skipped, always said why
            for key in ("statistic", "p_value", "effect_size"):
                value = column[key]
                assert value is None or value == value, (column["column"], key)  # no NaN
        if phrase:
            assert any(phrase in c["reason"] for c in report["columns"]), report["columns"]
        assert report["summary"].startswith(("drift: ", "no drift: "))
        human = wb_inprocess("data", "drift", "penguins", str(batch))
        assert human.returncode == 0 and "Traceback" not in human.stderr
    validate = wb_inprocess("data", "validate", "penguins", str(batch))
    _check_outcome(validate, validate_exit, phrase, "validate")

    assert _fingerprint(batch) == before
    assert sorted(p.name for p in batch.parent.iterdir()) == ["batch.csv"]
    assert _half_made(wb_home) == []


MARGINS = ["nan", "NaN", "inf", "-inf", "-1", "-0.001", "1e10", "1e999", "abc", "", " ", "1_0", "0x1"]


@pytest.mark.parametrize("margin", MARGINS)
def test_bad_margins_are_refused_in_one_line(margin: str, tmp_path: Path, wb_home: Path) -> None:
    folder = _project(tmp_path)
    config = folder / "workbench.toml"
    before = _fingerprint(config)
    result = wb_inprocess("model", "promote", "penguins", "1", "--margin", margin)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: --margin: expected a number from 0 to 1e+09")
    assert _fingerprint(config) == before
    assert _half_made(wb_home) == []


# Labelled batches scored by a trained model: (file text, phrase of performance).
LABELLED: dict[str, tuple[str, str]] = {
    "one labelled row": (HEADER + _rows(1), ""),
    "a label the model never saw": (HEADER + _rows(species="Dodo"), "cannot score the batch"),
    "infinities in a feature": (HEADER + _rows(mass="inf"), ""),
    "labels of one class": (HEADER + _rows(20), ""),
    "all features NaN": (HEADER + "Adelie,,,,,,,\n" * 10, ""),
}


@pytest.mark.slow
def test_hostile_labelled_batches_against_a_trained_model(tmp_path: Path, wb_home: Path) -> None:
    # Trained in this process: the subject is how drift scores batches with the model.
    train_inline(_project(tmp_path), {"n_estimators": 20})
    for case, (text, phrase) in LABELLED.items():
        batch = tmp_path / f"{len(text)}.csv"
        batch.write_text(text)
        before = _fingerprint(batch)
        result = wb_inprocess("data", "drift", "penguins", str(batch), "--json")
        assert result.returncode == 0 and "Traceback" not in result.stderr, (case, result.stderr)
        performance = json.loads(result.stdout)["performance"]
        if performance["available"]:
            assert performance["degraded"] in (True, False, None), case
            for key in ("batch", "baseline"):
                value = performance.get(key)
                assert value is None or value == value, (case, key)
            assert performance.get("message") or performance["batch"] is None, case
        else:
            assert phrase and phrase in performance["reason"], (case, performance)
        assert _fingerprint(batch) == before, case
    assert _half_made(wb_home) == []
