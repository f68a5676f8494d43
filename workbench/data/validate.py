"""Validation of a data file against the project's schema: every check has a
severity, and the file passes when no error-level check fails."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.data.counts import ValueCounts
from workbench.data.reading import Malformed, read_checked

EXAMPLES = 3


@dataclass
class Check:
    check: str
    severity: str  # "error" or "warn"
    passed: bool
    message: str
    column: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def validate_file(
    path: Path, schema: dict[str, Any], project_dir: Path | None = None
) -> dict[str, Any]:
    """The validation report of one file; a malformed file gives a failed report.
    Plugins' validators (the project's own among them) add their checks."""
    try:
        # Kept for `data drift` of the same file, which then reads it back unparsed.
        frame = read_checked(path, expected_columns(schema), keep=True)
    except Malformed as exc:
        return validation_report(path, None, schema, project_dir, malformed=exc)
    return validation_report(path, frame, schema, project_dir)


def expected_columns(schema: dict[str, Any]) -> list[str]:
    """The columns the schema expects, in order (what tells another delimiter)."""
    return list(schema.get("columns", {}))


def validation_report(
    path: Path,
    frame: pd.DataFrame | None,
    schema: dict[str, Any],
    project_dir: Path | None = None,
    *,
    malformed: Malformed | None = None,
    counts: ValueCounts | None = None,
) -> dict[str, Any]:
    """The report of `path` read as `frame`, or, when it could not be read as a
    table, failed by the reason (`malformed`). `counts`: the frame's value counts,
    shared with a drift report of the same frame."""
    if frame is None:
        assert malformed is not None
        checks = [Check(malformed.check, "error", False, malformed.message)]
    else:
        checks = validate_frame(frame, schema, project_dir, counts=counts)
    result = report(path, checks, rows=None if frame is None else len(frame))
    result["columns"] = None if frame is None else [str(c) for c in frame.columns]
    return result


def report(path: Path, checks: list[Check], rows: int | None) -> dict[str, Any]:
    failed = [c for c in checks if not c.passed]
    return {
        "file": str(path),
        "rows": rows,
        "passed": not any(c.severity == "error" for c in failed),
        "errors": sum(c.severity == "error" for c in failed),
        "warnings": sum(c.severity == "warn" for c in failed),
        "checks": [asdict(c) for c in checks],
    }


def validate_frame(
    frame: pd.DataFrame,
    schema: dict[str, Any],
    project_dir: Path | None = None,
    *,
    counts: ValueCounts | None = None,
) -> list[Check]:
    dataset = schema.get("dataset", {})
    columns: dict[str, dict] = schema.get("columns", {})
    target = schema.get("target", {}).get("name")
    checks = [_row_count(frame, dataset)]
    missing = [c for c in columns if c not in frame.columns and c != target]
    checks.append(
        Check(
            "missing_columns",
            "error",
            not missing,
            f"missing columns: {', '.join(missing)}" if missing else "all columns present",
            details={"columns": missing},
        )
    )
    extra = [c for c in frame.columns if c not in columns]
    policy = dataset.get("extra_columns", "warn")
    if policy != "ignore":
        checks.append(
            Check(
                "extra_columns",
                policy,
                not extra,
                f"columns not in the schema: {', '.join(map(str, extra))}"
                if extra
                else "no extra columns",
                details={"columns": extra},
            )
        )
    for name, rules in columns.items():
        if name in frame.columns:
            checks += _column_checks(name, frame[name], rules, dataset, counts)
    checks.append(_duplicates(frame, dataset))
    if target:
        checks.append(_target(frame, schema["target"], counts))
    return checks + _plugin_checks(frame, schema, project_dir)


def _plugin_checks(
    frame: pd.DataFrame, schema: dict[str, Any], project_dir: Path | None
) -> list[Check]:
    """Checks from plugins' validators; a validator that raises, or returns something
    that is not a list of checks, is reported as a failed warning, never fatal."""
    from workbench.plugins import validators

    checks = []
    for plugin, validator in validators(project_dir):
        name = getattr(validator, "__name__", "validator")
        try:
            checks += [_plugin_check(plugin, found) for found in validator(frame, schema)]
        except Exception as exc:
            checks.append(
                Check(
                    "plugin_validator",
                    "warn",
                    False,
                    f"validator {name} of plugin {plugin!r} failed: {type(exc).__name__}: {exc}",
                    details={"plugin": plugin},
                )
            )
    return checks


def _plugin_check(plugin: str, found: dict[str, Any]) -> Check:
    severity = found.get("severity", "error")
    if severity not in ("error", "warn"):
        raise ValueError(f"severity must be 'error' or 'warn', got {severity!r}")
    return Check(
        str(found["check"]),
        severity,
        bool(found["passed"]),
        str(found.get("message", "")),
        found.get("column"),
        {"plugin": plugin, **found.get("details", {})},
    )


def _row_count(frame: pd.DataFrame, dataset: dict) -> Check:
    low, high = dataset.get("min_rows", 1), dataset.get("max_rows", 0)
    ok = len(frame) >= low and (not high or len(frame) <= high)
    bounds = f"at least {low}" + (f" and at most {high}" if high else "")
    return Check(
        "row_count",
        "error",
        ok,
        f"{len(frame)} rows" + ("" if ok else f"; expected {bounds}"),
        details={"rows": len(frame), "min": low, "max": high},
    )


def _column_checks(
    name: str, series: pd.Series, rules: dict, dataset: dict, counts: ValueCounts | None = None
) -> list[Check]:
    checks = []
    kind = rules.get("type")
    values = series
    if kind in ("integer", "float"):
        # A column read as numbers has no value that is not one: nothing to coerce.
        parsed = isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf"
        numeric = series if parsed else pd.to_numeric(series, errors="coerce")
        bad = None if parsed else series.notna() & numeric.isna()
        count = 0 if bad is None else int(bad.sum())
        examples = series[bad].astype(str).unique()[:EXAMPLES].tolist() if count else []
        checks.append(
            Check(
                "type",
                "error",
                count == 0,
                f"{count} values are not numbers (e.g. {', '.join(map(repr, examples))})"
                if count
                else f"all values are {kind}s",
                name,
                {"bad": count, "examples": examples},
            )
        )
        values = numeric if bad is None else numeric.where(~bad)
        if kind == "integer" and count == 0 and values.dtype.kind not in "iu":
            fractional = int((values.dropna() % 1 != 0).sum())
            if fractional:
                checks.append(
                    Check(
                        "type",
                        "warn",
                        False,
                        f"{fractional} values have a fractional part; expected integers",
                        name,
                    )
                )
    nulls = int(series.isna().sum())
    rate = nulls / len(series) if len(series) else 0.0
    if not rules.get("nullable", True):
        checks.append(
            Check(
                "nulls",
                "error",
                nulls == 0,
                f"{nulls} missing values ({rate:.1%}); the schema says none"
                if nulls
                else "no missing values",
                name,
                {"nulls": nulls, "rate": rate},
            )
        )
    elif "max_null_rate" in rules:
        limit = rules["max_null_rate"]
        checks.append(
            Check(
                "nulls",
                "warn",
                rate <= limit,
                f"{rate:.1%} missing values; at most {limit:.1%} expected",
                name,
                {"nulls": nulls, "rate": rate, "max": limit},
            )
        )
    if kind in ("integer", "float") and "min" in rules and "max" in rules:
        checks.append(_range(name, values, rules, dataset.get("range_tolerance", 0.1)))
    if "categories" in rules:
        checks.append(_categories(name, series, rules, counts))
    return checks


def _range(name: str, values: pd.Series, rules: dict, tolerance: float) -> Check:
    low, high = rules["min"], rules["max"]
    slack = (high - low) * tolerance
    allowed = (low - slack, high + slack)
    # A missing numpy value (NaN) compares false either way: no copy without them.
    present = values if isinstance(values.dtype, np.dtype) else values.dropna()
    outside = present[(present < allowed[0]) | (present > allowed[1])]
    policy = rules.get("out_of_range", "warn")
    examples = outside.head(EXAMPLES).tolist()
    return Check(
        "range",
        policy if policy != "ignore" else "warn",
        outside.empty or policy == "ignore",
        f"{len(outside)} values outside [{allowed[0]:.6g}, {allowed[1]:.6g}]"
        f" (e.g. {', '.join(f'{v:g}' for v in examples)})"
        if len(outside)
        else "all values in range",
        name,
        {"outside": int(len(outside)), "allowed": list(allowed), "examples": examples},
    )


def _categories(
    name: str, series: pd.Series, rules: dict, counts: ValueCounts | None = None
) -> Check:
    known = set(map(str, rules["categories"]))
    counted = counts.present(name, series) if counts is not None else None
    if counted is not None:  # the counts drift takes too
        unseen = sorted(set(counted.index) - known)
        count = int(counted.loc[unseen].sum()) if unseen else 0
    else:
        present = series.dropna().astype(str)
        unseen = sorted(set(present.unique()) - known)
        count = int(present.isin(unseen).sum()) if unseen else 0
    policy = rules.get("unseen_categories", "warn")
    return Check(
        "categories",
        policy if policy != "ignore" else "warn",
        not unseen or policy == "ignore",
        f"{count} values in unseen categories: {', '.join(map(repr, unseen[:5]))}"
        + (" …" if len(unseen) > 5 else "")
        if unseen
        else "no unseen categories",
        name,
        {"unseen": unseen[:50], "count": count},
    )


def _duplicates(frame: pd.DataFrame, dataset: dict) -> Check:
    policy = dataset.get("duplicates", "warn")
    count = int(duplicated_rows(frame).sum()) if policy != "ignore" else 0
    return Check(
        "duplicates",
        "warn" if policy == "ignore" else policy,
        count == 0,
        f"{count} duplicate rows" if count else "no duplicate rows",
        details={"duplicates": count},
    )


def _target(frame: pd.DataFrame, target: dict, counts: ValueCounts | None = None) -> Check:
    name = target["name"]
    if name not in frame.columns:
        return Check("target", "warn", False, f"no {name!r} column: the batch has no labels", name)
    labels = target.get("labels")
    if labels is None:
        return Check("target", "error", True, "target present", name)
    counted = counts.present(name, frame[name]) if counts is not None else None
    values = counted.index if counted is not None else frame[name].dropna().astype(str).unique()
    unseen = sorted(set(values) - set(map(str, labels)))
    return Check(
        "target",
        "error",
        not unseen,
        f"unknown labels: {', '.join(map(repr, unseen[:5]))}; expected {', '.join(labels)}"
        if unseen
        else "all labels known",
        name,
        {"unseen": unseen[:50]},
    )


# --------------------------------------------------------------------------- duplicates

_NA_HASH = np.uint64(0x9E3779B97F4A7C15)  # any constant: a collision only adds a candidate
_MIX = np.uint64(0x100000001B3)


def duplicated_rows(frame: pd.DataFrame) -> np.ndarray:
    """`frame.duplicated()` as a boolean array, identical to it and faster: rows are
    hashed column by column (equal cells always hash equal: NaN and None alike,
    0.0 and -0.0 alike, as `duplicated()` treats them), and only the rows whose hash
    occurs more than once are compared exactly, with `duplicated()` itself, so a
    hash collision costs time, never a wrong answer.

    Numeric columns are hashed first: rows unique on them are unique, so the other
    columns (strings, which must be factorised to be hashed) are hashed only for
    the rows still in question, usually none."""
    rows, width = frame.shape
    if rows == 0 or width == 0:
        return frame.duplicated().to_numpy(dtype=bool)
    numeric = [i for i in range(width) if _hashed_directly(frame.dtypes.iloc[i])]
    others = [i for i in range(width) if i not in set(numeric)]
    candidates = np.arange(rows)
    hashes: np.ndarray | None = None
    for positions in (numeric, others):
        if not positions:
            continue
        if candidates.size == rows:  # the columns themselves, not copies
            part = pd.DataFrame({i: frame.iloc[:, i] for i in positions}, copy=False)
        else:
            part = frame.iloc[candidates, positions]
        found = _row_hashes(part)
        hashes = found if hashes is None else (hashes * _MIX) ^ found
        repeated = pd.Series(hashes, copy=False).duplicated(keep=False).to_numpy()
        candidates, hashes = candidates[repeated], hashes[repeated]
        if candidates.size == 0:
            break
    duplicated = np.zeros(rows, dtype=bool)
    if candidates.size:
        duplicated[candidates] = frame.iloc[candidates].duplicated().to_numpy(bool)
    return duplicated


def _hashed_directly(dtype: Any) -> bool:
    """Whether a column's cells hash without factorising it (numpy numbers and times)."""
    return isinstance(dtype, np.dtype) and dtype.kind in "biufmM"


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A uint64 per row; rows that `duplicated()` counts as equal hash equal. Only
    equality matters (a collision adds a candidate), so numbers enter by their bits,
    mixed by a multiplication per column and one finaliser at the end, instead of a
    full hash per column."""
    combined = np.zeros(len(frame), dtype=np.uint64)
    scratch = _Scratch(len(frame))
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        bits = _number_bits(series, scratch)
        combined ^= _column_hash(series) if bits is None else bits
        combined *= _MIX
    # splitmix64's finaliser: nearby values (small integers, round floats) spread
    # over all 64 bits before they meet a hash table.
    combined ^= combined >> np.uint64(30)
    combined *= np.uint64(0xBF58476D1CE4E5B9)
    combined ^= combined >> np.uint64(27)
    combined *= np.uint64(0x94D049BB133111EB)
    combined ^= combined >> np.uint64(31)
    return combined


class _Scratch:
    """Buffers reused from column to column: a million-row column is 8 MB, and a
    fresh array per column costs its page faults every time."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._floats: np.ndarray | None = None
        self._flags: np.ndarray | None = None

    def floats(self) -> np.ndarray:
        if self._floats is None:
            self._floats = np.empty(self.rows, dtype=np.float64)
        return self._floats

    def flags(self) -> np.ndarray:
        if self._flags is None:
            self._flags = np.empty(self.rows, dtype=bool)
        return self._flags


def _number_bits(series: pd.Series, scratch: _Scratch) -> np.ndarray | None:
    """The cells of a numpy numeric, boolean or time column as 64 bits each, equal
    for equal cells (0.0 and -0.0 alike, one NaN whatever its payload); None for
    any other column. Floats are written into `scratch`, valid until the next call."""
    dtype = series.dtype
    if not (isinstance(dtype, np.dtype) and dtype.kind in "biufmM"):
        return None
    values = series.to_numpy()
    if dtype.kind == "f":
        normal = np.add(values, 0.0, out=scratch.floats())  # -0.0 becomes 0.0
        missing = np.isnan(normal, out=scratch.flags())
        if missing.any():
            normal[missing] = np.nan
        return normal.view(np.uint64)
    if dtype.itemsize == 8 and dtype.kind in "iumM":
        return values.view(np.uint64)  # the bits themselves: no copy
    return values.astype(np.int64).view(np.uint64)  # narrower ints and bool: by value


def _column_hash(series: pd.Series) -> np.ndarray:
    """A uint64 per cell; cells that `duplicated()` counts as equal hash equal."""
    from pandas.util import hash_array

    dtype = series.dtype
    try:
        if isinstance(dtype, np.dtype):
            values = series.to_numpy()
            if dtype.kind in "biumM":
                return hash_array(values, categorize=False)
            if dtype.kind == "f":
                normal = values + dtype.type(0)  # -0.0 becomes 0.0
                normal[np.isnan(normal)] = np.nan  # one NaN whatever its payload
                return hash_array(normal, categorize=False)
            if dtype.kind == "O" and pd.api.types.infer_dtype(values, skipna=True) in (
                "string",
                "empty",
            ):
                missing = pd.isna(values)
                hashed = hash_array(np.where(missing, "", values).astype(object))
                hashed[missing] = _NA_HASH
                return hashed
        elif isinstance(dtype, pd.CategoricalDtype):
            return hash_array(series.cat.codes.to_numpy(), categorize=False)
    except (TypeError, ValueError, UnicodeError):
        pass
    # Anything else (mixed objects, nullable and other extension types): the codes
    # `duplicated()` itself builds for the column.
    return hash_array(pd.factorize(series)[0], categorize=False)
