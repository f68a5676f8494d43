"""Declarations of the files a user edits, and the one checker that walks them.

Each file (`workbench.toml`, `config.toml`, `schema.toml`) is declared as a
`Table` of `Key`s: name, type, allowed values or range, default and help. The
checker reads a parsed file against its declaration and raises `ConfigError`
naming the file, the dotted key and what was expected, so the CLI prints one
line and exits 2. Checks across keys (a file that must exist, a column that
must be in the data) stay with the module that reads the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import ConfigError

Kind = type | tuple[type, ...]

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


@dataclass(frozen=True, slots=True)
class Key:
    """One key of a table: what it holds, what it may be, and what it means."""

    name: str
    type: Kind
    help: str
    default: Any = None
    required: str = ""  # when set, the key must be given; the text says what to give
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the value must be greater than `low`, not equal to it
    high_open: bool = False
    range_text: str = ""  # how a value out of range is described, e.g. "a fraction ..."
    pattern: str = ""  # a string must match it in full
    pattern_text: str = ""
    items: Kind | None = None  # the type of a list's items
    items_text: str = ""
    table: Table | None = None  # a table with declared keys
    each: Table | None = None  # a table of the user's own names, each entry shaped so
    each_text: str = ""  # what an entry of `each` looks like
    values: Key | None = None  # a table of the user's own names, each value checked so

    @property
    def type_text(self) -> str:
        kinds = self.type if isinstance(self.type, tuple) else (self.type,)
        if set(kinds) == {int, float}:
            return "a number"
        return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


@dataclass(frozen=True, slots=True)
class Table:
    """A table of declared keys (a whole file is one, its sections are keys)."""

    name: str
    keys: tuple[Key, ...]
    help: str = ""
    word: str = "key"  # what an unknown entry is called: "section", "key", "rule"
    open: bool = False  # keys of the user's own are allowed besides the declared ones
    optional: bool = False  # may be left out (or empty); its required keys apply once given

    def key(self, name: str) -> Key | None:
        for key in self.keys:
            if key.name == name:
                return key
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)

    def defaults(self) -> dict[str, Any]:
        """The declared default of each key that has one."""
        return {k.name: k.default for k in self.keys if k.default is not None}


def check_file(path: Path | str, spec: Table, raw: Mapping[str, Any]) -> None:
    """Check a parsed file against its declaration: every value finite, every
    key known and of its type and range, then every required key present."""
    check_finite(path, raw)
    check_table(path, spec, raw)
    check_required(path, spec, raw)


def check_table(path: Path | str, table: Table, body: Mapping[str, Any], prefix: str = "") -> None:
    """The keys present in `body`: known, of their type, within their range."""
    for name, value in body.items():
        dotted = _join(prefix, name)
        key = table.key(name)
        if key is None:
            if table.open:
                continue
            raise ConfigError(
                path, dotted, f"unknown {table.word}; expected one of {', '.join(table.names)}"
            )
        check_value(path, key, value, dotted)


def check_value(path: Path | str, key: Key, value: Any, dotted: str) -> None:
    """One value against its key's declaration (and its entries, for a table)."""
    if not _is(value, key.type):
        if key.type is dict and not prefix_of(dotted):
            raise ConfigError(
                path, dotted, f"expected a table, e.g. [{dotted}], got {type(value).__name__}"
            )
        raise ConfigError(
            path, dotted, f"expected {key.type_text}, got {type(value).__name__} {value!r}"
        )
    if key.choices and value not in key.choices:
        choices = ", ".join(str(c) for c in key.choices)
        raise ConfigError(path, dotted, f"expected one of {choices}; got {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool) and not _in_range(key, value):
        raise ConfigError(path, dotted, f"expected {_range_text(key)}, got {value}")
    if key.pattern and isinstance(value, str) and not re.fullmatch(key.pattern, value):
        raise ConfigError(path, dotted, f"expected {key.pattern_text}, got {value!r}")
    if key.items is not None and not all(_is(item, key.items) for item in value):
        raise ConfigError(path, dotted, f"expected a list of {key.items_text}")
    if key.table is not None:
        check_table(path, key.table, value, dotted)
    if key.each is not None:
        for name, entry in value.items():
            if not isinstance(entry, dict):
                raise ConfigError(path, _join(dotted, name), f"expected {key.each_text}")
            check_table(path, key.each, entry, _join(dotted, name))
    if key.values is not None:
        for name, entry in value.items():
            check_value(path, key.values, entry, _join(dotted, name))


def check_required(
    path: Path | str, table: Table, body: Mapping[str, Any], prefix: str = ""
) -> None:
    """Every required key present, in declared tables too (an absent one is empty)."""
    for key in table.keys:
        dotted = _join(prefix, key.name)
        if key.required and key.name not in body:
            raise ConfigError(path, dotted, f"missing; expected {key.required}")
        if key.table is not None and (body.get(key.name) or not key.table.optional):
            check_required(path, key.table, body.get(key.name, {}), dotted)
        if key.each is not None:
            for name, entry in body.get(key.name, {}).items():
                check_required(path, key.each, entry, _join(dotted, name))


def check_finite(path: Path | str, value: Any, key: str = "") -> None:
    """No value anywhere may be nan or +/-inf: every comparison with nan is false,
    so a nan margin or threshold would silently pass or fail every check."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(path, key or None, f"expected a finite number, got {value}")
    if isinstance(value, Mapping):
        for k, v in value.items():
            check_finite(path, v, _join(key, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_finite(path, v, f"{key}[{i}]")


def describe(table: Table, prefix: str = "") -> list[str]:
    """One line per key, `dotted.key (type, default): help`, for help texts and docs."""
    lines = []
    for key in table.keys:
        dotted = _join(prefix, key.name)
        if key.table is not None:
            lines += describe(key.table, dotted)
            continue
        default = f", default {key.default!r}" if key.default is not None else ""
        lines.append(f"{dotted} ({key.type_text}{default}): {key.help}")
    return lines


def prefix_of(dotted: str) -> str:
    """The table a dotted key is in ("" for a top-level section)."""
    return dotted.rpartition(".")[0]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _is(value: Any, kind: Kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds)


def _in_range(key: Key, value: float) -> bool:
    if key.low is not None and (value <= key.low if key.low_open else value < key.low):
        return False
    if key.high is not None and (value >= key.high if key.high_open else value > key.high):
        return False
    return True


def _range_text(key: Key) -> str:
    if key.range_text:
        return key.range_text
    whole = key.type is int
    noun = "a whole number" if whole else "a number"
    if key.low is not None and key.high is not None and not (key.low_open or key.high_open):
        return f"{noun} from {key.low:g} to {key.high:g}"
    parts = []
    if key.low is not None:
        parts.append(f"greater than {key.low:g}" if key.low_open else f"at least {key.low:g}")
    if key.high is not None:
        parts.append(f"less than {key.high:g}" if key.high_open else f"at most {key.high:g}")
    return f"{noun} {' and '.join(parts)}"
