"""The `[sweep]` table of workbench.toml: the search space and how to search it.

Checked key by key when the config is loaded, so a typo in a parameter's
range fails `project add` with the file and key, not a sweep halfway through.
Turning the space into Optuna distributions is the sweeps' business
(`workbench.sweeps.space.distributions`); nothing here imports Optuna.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config.spec import Key, Table, check_required, check_table
from workbench.core.errors import ConfigError

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "none")
# type -> the keys an entry of that type may have besides `type`
TYPES: dict[str, tuple[str, ...]] = {
    "float": ("low", "high", "step", "log"),
    "log-uniform": ("low", "high"),
    "int": ("low", "high", "step", "log"),
    "categorical": ("choices",),
}
# A parameter is passed to the estimator as a keyword; names starting with "_"
# are the workbench's own (`_trial`, `_sweep`) and never reach it.
_PARAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_EXAMPLE = 'e.g. learning_rate = { type = "log-uniform", low = 0.01, high = 0.3 }'

SWEEP = Table(
    "sweep",
    (
        Key(
            "space",
            dict,
            "the parameters to search, each a table: " + _EXAMPLE,
            required=f"a table of parameters, {_EXAMPLE}",
        ),
        Key("sampler", str, "how trials pick parameters", default="tpe", choices=SAMPLERS),
        Key("pruner", str, "how unpromising trials stop early", default="median", choices=PRUNERS),
        Key("seed", int, "the sampler's seed (default: [train] seed)"),
        Key("trials", int, "trials of `workbench sweep` by default", low=1, range_text="a whole number >= 1"),
        Key("parallel", int, "trials at once by default", low=1, range_text="a whole number >= 1"),
    ),
    "`workbench sweep`: the search space and how to search it.",
    optional=True,
)


@dataclass(frozen=True)
class Param:
    """One dimension of the search space."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def describe(self) -> dict[str, Any]:
        """As written in workbench.toml (for the sweep run's params)."""
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.log and self.type != "log-uniform":
            out["log"] = True
        return out


@dataclass(frozen=True)
class SweepConfig:
    space: tuple[Param, ...]
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None  # None: the project's [train] seed
    trials: int | None = None  # default for `workbench sweep --trials`
    parallel: int | None = None  # default for `workbench sweep --parallel`


def check_sweep(file: Path, sweep: dict[str, Any]) -> SweepConfig | None:
    """Validate `[sweep]` against `SWEEP`, then its space; None when absent."""
    if not sweep:
        return None
    check_table(file, SWEEP, sweep, "sweep")
    check_required(file, SWEEP, sweep, "sweep")
    space = sweep["space"]
    if not space:
        raise ConfigError(file, "sweep.space", f"expected at least one parameter, {_EXAMPLE}")
    return SweepConfig(
        space=parse_space(file, space),
        sampler=sweep.get("sampler", SWEEP.defaults()["sampler"]),
        pruner=sweep.get("pruner", SWEEP.defaults()["pruner"]),
        seed=sweep.get("seed"),
        trials=sweep.get("trials"),
        parallel=sweep.get("parallel"),
    )


def parse_space(file: Path, space: dict[str, Any]) -> tuple[Param, ...]:
    """The parameters of a `[sweep.space]` table (as written there)."""
    return tuple(_param(file, name, entry) for name, entry in space.items())


def _param(file: Path, name: str, entry: Any) -> Param:
    key = f"sweep.space.{name}"
    if not _PARAM_NAME.match(name):
        raise ConfigError(
            file,
            key,
            "bad parameter name: expected a letter, then letters, digits or '_' "
            "(names starting with '_' are the workbench's own)",
        )
    if not isinstance(entry, dict):
        raise ConfigError(file, key, f"expected a table, {_EXAMPLE}")
    kind = entry.get("type")
    if kind not in TYPES:
        raise ConfigError(file, f"{key}.type", f"expected one of {', '.join(TYPES)}; got {kind!r}")
    extra = sorted(set(entry) - {"type", *TYPES[kind]})
    if extra:
        raise ConfigError(
            file,
            f"{key}.{extra[0]}",
            f"unknown key for type {kind!r}; expected {', '.join(TYPES[kind])}",
        )
    if kind == "categorical":
        return Param(name, kind, choices=_choices(file, key, entry))
    return _range(file, key, name, kind, entry)


def _choices(file: Path, key: str, entry: dict[str, Any]) -> tuple[Any, ...]:
    choices = entry.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ConfigError(file, f"{key}.choices", 'missing; expected a list, e.g. ["gbdt", "dart"]')
    for choice in choices:
        if not isinstance(choice, str | int | float | bool):
            raise ConfigError(
                file, f"{key}.choices", f"expected strings, numbers or booleans; got {choice!r}"
            )
    if len({repr(c) for c in choices}) != len(choices):
        raise ConfigError(file, f"{key}.choices", "the same choice is listed twice")
    return tuple(choices)


def _range(file: Path, key: str, name: str, kind: str, entry: dict[str, Any]) -> Param:
    integer = kind == "int"
    bounds = {}
    for side in ("low", "high"):
        value = entry.get(side)
        if value is None:
            raise ConfigError(file, f"{key}.{side}", "missing; expected a number")
        if not _is_number(value, integer):
            expected = "a whole number" if integer else "a number"
            raise ConfigError(file, f"{key}.{side}", f"expected {expected}, got {value!r}")
        bounds[side] = value
    low, high = bounds["low"], bounds["high"]
    if not low < high:
        raise ConfigError(file, f"{key}.high", f"expected more than low ({low}), got {high}")
    log = entry.get("log", kind == "log-uniform")
    if not isinstance(log, bool):
        raise ConfigError(file, f"{key}.log", f"expected true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(file, f"{key}.low", f"a log scale needs low > 0, got {low}")
    step = entry.get("step")
    if step is not None:
        if not _is_number(step, integer) or step <= 0:
            expected = "a whole number" if integer else "a number"
            raise ConfigError(file, f"{key}.step", f"expected {expected} > 0, got {step!r}")
        if log and not (integer and step == 1):
            raise ConfigError(file, f"{key}.step", "a step cannot be combined with log = true")
    if integer:
        return Param(name, kind, low, high, step if step is not None else 1, log)
    return Param(name, kind, float(low), float(high), float(step) if step else None, log)


def _is_number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, int)
    return isinstance(value, int | float) and math.isfinite(value)
