"""The data schema: inferred from the reference data, kept in the project as an
editable `schema.toml`, and respected by later inference (pinned columns stay)."""

from __future__ import annotations

import json
import math
import time
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.errors import ConfigError

SCHEMA_FILE = "schema.toml"
MAX_CATEGORIES = 50
NULL_RATE_SLACK = 0.05
TYPES = ("integer", "float", "string", "boolean", "datetime")
POLICIES = ("error", "warn", "ignore")

DATASET_DEFAULTS: dict[str, Any] = {
    "min_rows": 1,
    "max_rows": 0,
    "duplicates": "warn",
    "extra_columns": "warn",
    "range_tolerance": 0.1,
}
_COLUMN_KEYS = {
    "type",
    "nullable",
    "max_null_rate",
    "min",
    "max",
    "categories",
    "unseen_categories",
    "out_of_range",
    "pinned",
}


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
            from workbench.trainers.tabular import infer_task

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
    """The project's schema.toml, validated; None when there is none yet."""
    if not path.exists():
        return None
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"not valid TOML: {exc}") from exc
    for section in raw:
        if section not in ("dataset", "columns", "target"):
            raise ConfigError(path, section, "unknown section; expected dataset, columns or target")
    dataset = raw.setdefault("dataset", {})
    for key, value in dataset.items():
        if key not in DATASET_DEFAULTS:
            raise ConfigError(
                path,
                f"dataset.{key}",
                f"unknown key; expected one of {', '.join(DATASET_DEFAULTS)}",
            )
        if key in ("duplicates", "extra_columns") and value not in POLICIES:
            raise ConfigError(path, f"dataset.{key}", f"expected one of {', '.join(POLICIES)}")
    for name, rules in raw.setdefault("columns", {}).items():
        if not isinstance(rules, dict):
            raise ConfigError(path, f"columns.{name}", "expected a table of rules")
        for key in rules:
            if key not in _COLUMN_KEYS:
                raise ConfigError(
                    path,
                    f"columns.{name}.{key}",
                    f"unknown rule; expected one of {', '.join(sorted(_COLUMN_KEYS))}",
                )
        if rules.get("type") not in TYPES:
            raise ConfigError(path, f"columns.{name}.type", f"expected one of {', '.join(TYPES)}")
    return raw


def write_schema(path: Path, schema: dict[str, Any], source: str) -> None:
    """Write schema.toml by hand (values as TOML literals), with a header that
    says how to edit it."""
    lines = [
        f"# Data schema of this project, inferred from {source}",
        f"# on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC. Edit freely: `workbench data",
        "# validate` checks new data against it. Set `pinned = true` on a column (or on",
        "# [target]) to keep your rules when the schema is inferred again.",
        '# Policies: "error" fails validation, "warn" reports, "ignore" skips.',
        "",
        "[dataset]",
    ]
    lines += [f"{k} = {_literal(v)}" for k, v in schema["dataset"].items()]
    if "target" in schema:
        lines += ["", "[target]"] + [f"{k} = {_literal(v)}" for k, v in schema["target"].items()]
    for name, rules in schema["columns"].items():
        lines += ["", f"[columns.{json.dumps(name)}]"]
        lines += [f"{k} = {_literal(v)}" for k, v in rules.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


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
