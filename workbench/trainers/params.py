"""Checking a built-in trainer's parameters before a run is queued.

LightGBM's parameters are checked against LightGBM's own list (every name and
alias, plus the scikit-learn wrapper's constructor arguments), and their values
by LightGBM's own parser on a tiny dataset; a scikit-learn estimator's against
its `get_params()` and its own parameter constraints. An unknown key names the
closest known ones; a value of the wrong type names the type expected.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.core.errors import UsageError
from workbench.core.files import atomic_write_text
from workbench.core.metric_rules import is_internal_param

# LightGBM's C++ parameters are 32-bit integers; scikit-learn's fit in 64 bits.
LIGHTGBM_INT_MAX = 2**31 - 1
INT_MAX = 2**63 - 1
MAX_TEXT = 200
# The scikit-learn wrapper's arguments that never reach LightGBM's C++ config.
_PYTHON_ONLY = {"class_weight", "importance_type"}


class ParamError(UsageError):
    """A trainer parameter that the trainer does not take, or a value it cannot use."""

    title = "Invalid parameter"


def check_params(trainer: str, params: Mapping[str, Any]) -> None:
    """Raise ParamError unless every parameter suits the built-in `trainer`
    ("lightgbm" or "sklearn:<dotted estimator>"). Keys starting with "_" are the
    workbench's own; other trainers (scripts, plugins) check their own."""
    params = {str(k): v for k, v in params.items() if not is_internal_param(k)}
    name, _, estimator = trainer.partition(":")
    if name == "lightgbm":
        _check_plain(params, LIGHTGBM_INT_MAX)
        _check_lightgbm(params)
    elif name == "sklearn" and estimator:
        _check_plain(params, INT_MAX)
        _check_sklearn(estimator, params)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}… ({len(text)} characters)"


def _check_plain(params: dict[str, Any], int_max: int) -> None:
    """Values no trainer can use, whatever the parameter."""
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, float) and not math.isfinite(item):
                raise ParamError(f"parameter {key} = {item!r}: expected a finite number")
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > int_max:
                raise ParamError(
                    f"parameter {key} = {_shown(item)}: too large; expected an integer"
                    f" between {-int_max - 1} and {int_max}"
                )
            if isinstance(item, str) and len(item) > MAX_TEXT and _number_or_flag(item):
                raise ParamError(
                    f"parameter {key}: a number of {len(item)} digits is too large; expected"
                    f" an integer between {-int_max - 1} and {int_max}"
                )
            if isinstance(item, str) and len(item) > MAX_TEXT:
                raise ParamError(
                    f"parameter {key} = {_shown(item)}: too long; expected at most"
                    f" {MAX_TEXT} characters"
                )
            if isinstance(item, dict | list) and key not in ("class_weight",):
                raise ParamError(
                    f"parameter {key} = {_shown(value)}: expected a number, a string or a"
                    " boolean (or a list of them)"
                )


def _unknown(key: str, known: set[str], what: str) -> ParamError:
    close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
    if close:
        hint = f"did you mean {', '.join(close)}?"
    elif len(known) <= 30:
        hint = f"it takes {', '.join(sorted(known))}"
    else:
        hint = f"see {what}'s parameter list"
    return ParamError(f"unknown {what} parameter {key!r}; {hint}")


# --- LightGBM ---------------------------------------------------------------------------


# What LightGBM accepts is the same for every command until LightGBM changes, and
# finding out means importing it (over a second of CPU, most of `run start`), so
# it is kept in the cache folder per LightGBM version: the names, their defaults,
# and the parameter sets LightGBM's own parser has accepted.
LIGHTGBM_FACTS_FORMAT = 1
MAX_ACCEPTED = 500  # accepted parameter sets kept (the newest)


def _facts_path(distribution: str, stem: str) -> Path | None:
    """The cache file of what the installed `distribution` accepts, named for its
    version; None when it is not installed or its version is odd."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version(distribution)
    except PackageNotFoundError:
        return None
    if not re.fullmatch(r"[\w.+-]{1,40}", installed):
        return None
    return paths.cache_dir() / f"{stem}-{installed}-params.json"


def _lightgbm_facts_path() -> Path | None:
    return _facts_path("lightgbm", "lightgbm")


@cache
def _lightgbm_facts() -> dict[str, Any]:
    """{"names": every C++ parameter name and alias -> its canonical name,
    "wrapper": the scikit-learn wrapper's own arguments -> "int", "float" or "",
    "defaults": each C++ parameter's default as text, "accepted": parameter
    sets (JSON) that LightGBM's parser took}: from the cache, else from LightGBM."""
    path = _lightgbm_facts_path()
    facts = _read_facts(path) if path else None
    if facts is None:
        canonical, wrapper = _lightgbm_names()
        facts = {
            "format": LIGHTGBM_FACTS_FORMAT,
            "names": canonical,
            "wrapper": wrapper,
            "defaults": _lightgbm_defaults(),
            "accepted": [],
        }
        _save_facts(path, facts)
    return facts


def _read_facts(path: Path) -> dict[str, Any] | None:
    """The cached facts, or None when missing or not in the shape written here."""
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    shapes = {"names": dict, "wrapper": dict, "defaults": dict, "accepted": list}
    if not isinstance(facts, dict) or facts.get("format") != LIGHTGBM_FACTS_FORMAT:
        return None
    if not all(isinstance(facts.get(key), kind) for key, kind in shapes.items()):
        return None
    return facts


def _save_facts(path: Path | None, facts: dict[str, Any]) -> None:
    """Best effort: a cache that cannot be written is made again next time."""
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(facts))


def _lightgbm_names() -> tuple[dict[str, str], dict[str, str]]:
    """(every C++ parameter name and alias -> its canonical name,
    the scikit-learn wrapper's own arguments -> "int", "float" or "")."""
    import lightgbm
    from lightgbm.basic import _ConfigAliases

    _ConfigAliases.get("num_leaves")  # loads the table from the library
    canonical = {
        alias: name for name, aliases in _ConfigAliases.aliases.items() for alias in aliases
    }
    wrapper = {
        name: _kind(p.annotation)
        for name, p in inspect.signature(lightgbm.LGBMModel.__init__).parameters.items()
        if name != "self" and p.kind is not p.VAR_KEYWORD
    }
    return canonical, wrapper


def _kind(annotation: Any) -> str:
    if annotation in (int, "int"):
        return "int"
    if annotation in (float, "float"):
        return "float"
    return ""


def _lightgbm_defaults() -> dict[str, str]:
    """LightGBM's default of each C++ parameter, as text (from a saved model's header)."""
    import lightgbm
    import numpy as np

    x = np.arange(40, dtype=float).reshape(20, 2)
    with _quiet_lightgbm():
        dataset = lightgbm.Dataset(x, np.arange(20) % 2, params={"verbose": -1})
        booster = lightgbm.Booster(params={"verbose": -1}, train_set=dataset)
        text = booster.model_to_string()
    return dict(re.findall(r"^\[(\w+): (.*)\]$", text, flags=re.MULTILINE))


def _check_lightgbm(params: dict[str, Any]) -> None:
    facts = _lightgbm_facts()
    canonical, wrapper = facts["names"], facts["wrapper"]
    for key, value in params.items():
        if key not in canonical and key not in wrapper:
            raise _unknown(key, set(canonical) | set(wrapper), "LightGBM")
        _check_lightgbm_type(key, value, canonical.get(key), wrapper.get(key), facts["defaults"])
    native = {k: v for k, v in params.items() if k not in _PYTHON_ONLY}
    if not native:
        return
    shown = json.dumps(native, sort_keys=True, default=repr)
    if shown in facts["accepted"]:
        return
    _check_lightgbm_values(native, params, canonical)
    facts["accepted"] = [*facts["accepted"], shown][-MAX_ACCEPTED:]
    _save_facts(_lightgbm_facts_path(), facts)


def _check_lightgbm_type(
    key: str, value: Any, name: str | None, kind: str | None, defaults: dict[str, str]
) -> None:
    """What LightGBM's parser would misread: text for a number."""
    expected = None
    if kind == "int":
        expected = "an integer"
    elif kind == "float":
        expected = "a number"
    if expected is None and name is not None:
        default = defaults.get(name, "")
        if re.fullmatch(r"-?\d+(\.\d*)?(e[-+]?\d+)?", default):
            expected = "a number"
    if expected is None:
        return
    if isinstance(value, bool) or isinstance(value, str) and not _number_or_flag(value):
        if isinstance(value, bool) and name is not None and expected == "a number":
            return  # LightGBM's flags (deterministic, linear_tree, ...) read true/false
        raise ParamError(f"LightGBM parameter {key} = {_shown(value)}: expected {expected}")
    if expected == "an integer" and isinstance(value, float) and not value.is_integer():
        raise ParamError(f"LightGBM parameter {key} = {value!r}: expected an integer")


def _number_or_flag(text: str) -> bool:
    if text.strip().lower() in ("true", "false", "+", "-"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_lightgbm_values(
    native: dict[str, Any], params: dict[str, Any], canonical: dict[str, str]
) -> None:
    """LightGBM's own parser and range checks, on a tiny dataset."""
    import lightgbm
    import numpy as np

    x = np.arange(40, dtype=float).reshape(20, 2)
    try:
        with _quiet_lightgbm():
            lightgbm.Dataset(x, np.arange(20) % 2, params={**native, "verbose": -1}).construct()
    except (lightgbm.basic.LightGBMError, TypeError, ValueError) as exc:
        raise ParamError(_lightgbm_reason(str(exc), params, canonical)) from None


def _lightgbm_reason(message: str, params: dict[str, Any], canonical: dict[str, str]) -> str:
    """LightGBM's complaint in the user's terms: their key, the value, what was expected."""
    line = message.strip().splitlines()[0] if message.strip() else "rejected"
    found = re.match(r'Parameter (\w+) should be of type (\w+), got "(.*)"', line)
    checked = re.match(r"Check failed: \((\w+)\) (\S+) \(([^)]*)\)", line)
    name = (found or checked).group(1) if (found or checked) else None
    key = next((k for k in params if canonical.get(k, k) == name), name)
    if found:
        kind = {"int": "an integer", "double": "a number", "bool": "true or false"}
        expected = kind.get(found.group(2), f"a {found.group(2)}")
        return f"LightGBM parameter {key} = {_shown(params.get(key))}: expected {expected}"
    if checked:
        return (
            f"LightGBM parameter {key} = {_shown(params.get(key))}:"
            f" must be {checked.group(2)} {checked.group(3)}"
        )
    return "LightGBM refuses the parameters: " + re.sub(r" at /\S+.*$", "", line)


@contextlib.contextmanager
def _quiet_lightgbm() -> Iterator[None]:
    """LightGBM logs a fatal parse error before raising it; the exception is enough."""
    from lightgbm import basic

    class Silent:
        def info(self, _: str) -> None: ...

        def warning(self, _: str) -> None: ...

    saved = basic._LOGGER, basic._INFO_METHOD_NAME, basic._WARNING_METHOD_NAME
    basic._LOGGER, basic._INFO_METHOD_NAME, basic._WARNING_METHOD_NAME = (
        Silent(),
        "info",
        "warning",
    )
    # Its failed range checks are written straight to the process's stderr.
    sys.stderr.flush()
    stderr = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)
        basic._LOGGER, basic._INFO_METHOD_NAME, basic._WARNING_METHOD_NAME = saved


# --- scikit-learn -----------------------------------------------------------------------


# Checking an estimator's parameters means importing scikit-learn (about a second
# of CPU in a `run start` whose trainer imports it again), so the parameter sets of
# scikit-learn's own estimators that passed are kept in the cache folder, per
# scikit-learn version. An estimator from elsewhere is always checked afresh: its
# library's version is not in the file's name.
SKLEARN_FACTS_FORMAT = 1


def _sklearn_facts_path() -> Path | None:
    return _facts_path("scikit-learn", "sklearn")


def _sklearn_accepted(path: Path) -> list[str]:
    """The parameter sets (JSON) that passed before; [] when missing or damaged."""
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(facts, dict) or facts.get("format") != SKLEARN_FACTS_FORMAT:
        return []
    accepted = facts.get("accepted")
    if not isinstance(accepted, list) or not all(isinstance(a, str) for a in accepted):
        return []
    return accepted


def _check_sklearn(dotted: str, params: dict[str, Any]) -> None:
    path = _sklearn_facts_path() if dotted.startswith("sklearn.") else None
    shown = json.dumps({"estimator": dotted, "params": params}, sort_keys=True, default=repr)
    accepted = _sklearn_accepted(path) if path else []
    if shown in accepted:
        return
    _check_sklearn_afresh(dotted, params)
    if path:
        accepted = [*_sklearn_accepted(path), shown][-MAX_ACCEPTED:]
        _save_facts(path, {"format": SKLEARN_FACTS_FORMAT, "accepted": accepted})


def _check_sklearn_afresh(dotted: str, params: dict[str, Any]) -> None:
    from workbench.trainers.sklearn_trainer import load_estimator_class

    cls = load_estimator_class(dotted)
    try:
        known = set(cls().get_params(deep=False))
    except Exception:  # noqa: BLE001 - an estimator with required arguments
        known = {
            n
            for n, p in inspect.signature(cls.__init__).parameters.items()
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }
    short = dotted.rpartition(".")[2]
    for key in params:
        if key not in known:
            raise _unknown(key, known, short)
    try:
        estimator = cls(**params)
    except Exception as exc:  # noqa: BLE001 - the constructor's own refusal
        raise ParamError(f"bad parameters for {dotted}: {_one_line(exc)}") from None
    validate = getattr(estimator, "_validate_params", None)
    # Estimators from other libraries (LGBMClassifier) inherit the method without
    # declaring constraints for it to check.
    if validate is None or not hasattr(estimator, "_parameter_constraints"):
        return
    try:
        validate()
    except (TypeError, ValueError) as exc:  # sklearn's InvalidParameterError is both
        raise ParamError(f"bad parameter for {short}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:300] + "…"
