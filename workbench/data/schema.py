"""The data schema: inferred from the reference data, kept in the project as an
editable `schema.toml`, and respected by later inference (pinned columns stay)."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import tomlkit
import tomlkit.exceptions
import tomlkit.items

from workbench.config.reading import read_toml
from workbench.config.spec import Key, Table, check_file
from workbench.config.task import infer_task
from workbench.core.errors import ConfigError

SCHEMA_FILE = "schema.toml"
MAX_CATEGORIES = 50
NULL_RATE_SLACK = 0.05
TYPES = ("integer", "float", "string", "boolean", "datetime")
POLICIES = ("error", "warn", "ignore")

_POLICY = "what a failed check does: error fails validation, warn reports, ignore skips"
DATASET = Table(
    "dataset",
    (
        Key("min_rows", int, "the fewest rows new data may have", default=1, low=0),
        Key("max_rows", int, "the most rows new data may have (0: no limit)", default=0, low=0),
        Key("duplicates", str, f"duplicate rows: {_POLICY}", default="warn", choices=POLICIES),
        Key(
            "extra_columns",
            str,
            f"columns not in the schema: {_POLICY}",
            default="warn",
            choices=POLICIES,
        ),
        Key(
            "range_tolerance",
            (float, int),
            "how far outside [min, max] a value may fall, as a share of the range",
            default=0.1,
            low=0,
            high=1e9,
        ),
    ),
    "Rules for the data set as a whole.",
)
COLUMN = Table(
    "column",
    (
        Key(
            "type",
            str,
            "the column's kind",
            choices=TYPES,
            required="one of " + ", ".join(TYPES),
        ),
        Key("nullable", bool, "whether values may be missing", default=True),
        Key("max_null_rate", (float, int), "the largest share of missing values", low=0, high=1),
        Key("min", (float, int), "the smallest value seen (numbers)"),
        Key("max", (float, int), "the largest value seen (numbers)"),
        Key("categories", list, "the values a text column takes"),
        Key("unseen_categories", str, f"a value not in categories: {_POLICY}", choices=POLICIES),
        Key("out_of_range", str, f"a number outside [min, max]: {_POLICY}", choices=POLICIES),
        Key("pinned", bool, "keep these rules when the schema is inferred again", default=False),
    ),
    "The rules of one column.",
    word="rule",
)
TARGET = Table(
    "target",
    (
        Key("name", str, "the target column"),
        Key("labels", list, "the classes a classification target takes"),
        Key("pinned", bool, "keep these rules when the schema is inferred again", default=False),
    ),
    "The target column.",
    open=True,  # never checked for unknown keys: a user's notes may live here
)
SCHEMA_SPEC = Table(
    SCHEMA_FILE,
    (
        Key("dataset", dict, DATASET.help, table=DATASET),
        Key(
            "columns",
            dict,
            "one table of rules per column",
            each=COLUMN,
            each_text="a table of rules",
        ),
        Key("target", dict, TARGET.help, table=TARGET),
    ),
    "The data schema of a project.",
    word="section",
)
DATASET_DEFAULTS: dict[str, Any] = DATASET.defaults()
_HEADER = re.compile(
    r"\A# Data schema of this project, inferred from .*\n# on \d{4}-\d\d-\d\d \d\d:\d\d UTC"
)


def column_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


def infer_schema(
    frame: pd.DataFrame,
    target: str | None,
    task: str | None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A schema for data like `frame`; pinned parts of `previous` are kept as they are."""
    previous = previous or {}
    kept = {n: c for n, c in previous.get("columns", {}).items() if c.get("pinned")}
    columns: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        if name in kept:
            columns[name] = kept[name]
            continue
        columns[name] = _infer_column(frame[name])
    for name, rules in kept.items():  # user-added columns not in this data
        columns.setdefault(name, rules)
    schema: dict[str, Any] = {
        "dataset": {**DATASET_DEFAULTS, **previous.get("dataset", {})},
        "columns": columns,
    }
    if target and target in frame.columns:
        prior = previous.get("target", {})
        if prior.get("pinned"):
            schema["target"] = prior
        else:
            schema["target"] = {"name": target}
            if (task or infer_task(frame[target])) == "classification":
                schema["target"]["labels"] = sorted(
                    frame[target].dropna().astype(str).unique().tolist()
                )
    return schema


def _infer_column(series: pd.Series) -> dict[str, Any]:
    kind = column_type(series)
    nulls = float(series.isna().mean())
    rules: dict[str, Any] = {"type": kind, "nullable": nulls > 0}
    if nulls > 0:
        rules["max_null_rate"] = round(min(1.0, nulls + NULL_RATE_SLACK), 4)
    present = series.dropna()
    if kind in ("integer", "float") and len(present):
        rules["min"], rules["max"] = _plain(present.min()), _plain(present.max())
    if kind == "string":
        values = present.astype(str)
        unique = values.nunique()
        if unique <= MAX_CATEGORIES and unique <= max(2, len(values) // 2):
            rules["categories"] = sorted(values.unique().tolist())
    return rules


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return value
    return value


def schema_path(project_root: Path) -> Path:
    return project_root / SCHEMA_FILE


def load_schema(path: Path) -> dict[str, Any] | None:
    """The project's schema.toml, checked against `SCHEMA_SPEC`; None when there is none yet."""
    if not path.exists():
        return None
    raw = read_toml(path)
    check_file(path, SCHEMA_SPEC, raw)
    raw.setdefault("dataset", {})
    raw.setdefault("columns", {})
    return raw


def write_schema(path: Path, schema: dict[str, Any], source: str) -> None:
    """Write schema.toml. A new file gets a header that says how to edit it; an
    existing one is updated in place, so the user's comments, order and layout stay."""
    previous = _read_document(path)
    if previous is None:
        text = _fresh_text(schema, source)
    else:
        try:
            _update_document(previous, schema)
        except (ValueError, TypeError, tomlkit.exceptions.TOMLKitError) as exc:
            raise ConfigError(
                path, None, f"cannot update it in place ({exc}); move it aside to infer anew"
            ) from None
        where = f"{_source_line(source)}\n{_header_date()}"  # what the header says changes
        text = _HEADER.sub(lambda _: where, previous.as_string(), count=1)
    # Not files.atomic_write_text, which adds an fsync this write never had.
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _read_document(path: Path) -> tomlkit.TOMLDocument | None:
    """The existing file as an editable document, or None to write a fresh one."""
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError):
        return None


def _update_document(doc: tomlkit.TOMLDocument, schema: dict[str, Any]) -> None:
    """Set what changed, drop what is gone, add what is new; leave the rest as it is."""
    for section in ("dataset", "target"):
        if section in schema:
            _update_table(doc, section, schema[section])
        elif section in doc:
            del doc[section]
    if "columns" not in doc or not isinstance(doc["columns"], dict):
        doc["columns"] = tomlkit.table(is_super_table=True)
    columns = doc["columns"]
    for name in [n for n in columns if n not in schema["columns"]]:
        del columns[name]
    for name, rules in schema["columns"].items():
        _update_table(columns, name, rules)


def _update_table(parent: Any, name: str, values: dict[str, Any]) -> None:
    if name not in parent or not isinstance(parent[name], dict):
        inline = isinstance(parent, tomlkit.items.InlineTable)  # `columns = { ... }`
        table = tomlkit.inline_table() if inline else tomlkit.table()
        table.update(values)
        parent[name] = table
        return
    table = parent[name]
    for key in [k for k in table if k not in values]:
        del table[key]
    for key, value in values.items():
        current = table.get(key)
        plain = current.unwrap() if hasattr(current, "unwrap") else current
        if key not in table or plain != value or type(plain) is not type(value):
            table[key] = value


def _header(source: str) -> str:
    return (
        f"{_source_line(source)}\n"
        f"{_header_date()}. Edit freely: `workbench data\n"
        "# validate` checks new data against it. Set `pinned = true` on a column (or on\n"
        "# [target]) to keep your rules when the schema is inferred again.\n"
        '# Policies: "error" fails validation, "warn" reports, "ignore" skips.'
    )


def _source_line(source: str) -> str:
    return f"# Data schema of this project, inferred from {' '.join(source.splitlines())}"


def _header_date() -> str:
    return f"# on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC"


def _fresh_text(schema: dict[str, Any], source: str) -> str:
    lines = [_header(source), "", "[dataset]"]
    lines += [f"{k} = {_literal(v)}" for k, v in schema["dataset"].items()]
    if "target" in schema:
        lines += ["", "[target]"] + [f"{k} = {_literal(v)}" for k, v in schema["target"].items()]
    for name, rules in schema["columns"].items():
        lines += ["", f"[columns.{json.dumps(name)}]"]
        lines += [f"{k} = {_literal(v)}" for k, v in rules.items()]
    return "\n".join(lines) + "\n"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return json.dumps(str(value))
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)
