"""The drift report: the method and threshold for each column, its result and
effect size, and the dataset's verdict (see `workbench.data.drift`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.core.errors import UsageError
from workbench.data.counts import ValueCounts
from workbench.data.drift.profile import SMALL_REFERENCE, is_numeric_dtype, is_time_dtype
from workbench.data.drift.stattests import (
    METHODS,
    Current,
    DriftTest,
    NotApplicable,
    category_cells,
    chisquare_test,
    current_categorical,
    current_numeric,
    distance_statistic,
    ks_test,
    run_method,
    union_distinct,
    wasserstein,
)

# Evidently tests a numeric column with at most 5 distinct values (reference and
# current together) as categorical.
FEW_VALUES = 5

# The dataset drifts when any one column drifts strongly (see `workbench.data.drift`).
STRONG_WASSERSTEIN = 0.5  # Wasserstein distance / reference std, numeric columns
STRONG_PSI = 0.25  # population stability index, categorical and binary columns
STRONG_P_VALUE = 0.001  # and a KS (numeric) or chi-square (categorical) test agrees
SUMMARY_COLUMNS = 6  # drifted columns named in a one-line summary
# A built-in distance (wasserstein, jensenshannon, psi) flags a column only when the
# KS (numeric) or chi-square (categorical) test agrees at this level.
DISTANCE_P_VALUE = 0.05


@dataclass
class DriftSettings:
    """What counts as drift: the dataset share, and methods or thresholds to force."""

    share: float = 0.5  # the dataset drifts when at least this share of columns drift
    strong_wasserstein: float = STRONG_WASSERSTEIN  # ... or one column drifts this far
    strong_psi: float = STRONG_PSI
    strong_p_value: float = STRONG_P_VALUE
    method: str | None = None  # force one method on every column (a METHODS key)
    threshold: float | None = None  # override the method's default threshold
    columns: dict[str, dict] = field(default_factory=dict)  # {"col": {"method", "threshold"}}
    tests: dict[str, DriftTest] = field(default_factory=dict)  # from plugins, by name

    def validate(self) -> None:
        """Raise UsageError for an unknown method, key or out-of-range share."""
        if not 0.0 <= self.share <= 1.0:
            raise UsageError(f"drift share must be between 0 and 1, got {self.share}")
        for name in ("strong_wasserstein", "strong_psi", "strong_p_value"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise UsageError(f"drift {name} must be a finite number > 0, got {value!r}")
        choices = ", ".join([*METHODS, *self.tests])
        if self.method is not None and not self.known(self.method):
            raise UsageError(f"unknown drift method {self.method!r}; expected one of {choices}")
        for column, override in self.columns.items():
            unknown = set(override) - {"method", "threshold"}
            if unknown:
                raise UsageError(
                    f"drift settings for column {column!r}: unknown key(s) {sorted(unknown)}; "
                    "expected 'method' and/or 'threshold'"
                )
            method = override.get("method")
            if method is not None and not self.known(method):
                raise UsageError(
                    f"drift settings for column {column!r}: unknown method {method!r}; "
                    f"expected one of {choices}"
                )

    def known(self, method: str) -> bool:
        return method in METHODS or method in self.tests

    def kind_and_threshold(self, method: str) -> tuple[str, float]:
        """What the method's statistic is ("p_value" or "distance") and its default threshold."""
        if method in METHODS:
            return METHODS[method][0], METHODS[method][1]
        return self.tests[method].statistic, self.tests[method].threshold


def _default_method(profile: dict, n_values: int) -> tuple[str, str]:
    """Evidently's default method for a column, and the reason in words."""
    n, kind = profile["n"], profile["kind"]
    small = n <= SMALL_REFERENCE
    regime = f"reference has {n} non-null values ({'<=' if small else '>'} {SMALL_REFERENCE})"
    what = f"the column is {kind} with {n_values} distinct values in reference and current"
    if kind == "numeric" and n_values > FEW_VALUES:
        method = "ks" if small else "wasserstein"
        what = (
            f"the column is numeric with more than {FEW_VALUES} distinct values"
            f" ({profile['n_unique']} in reference)"
        )
    elif small:
        method = "z" if n_values <= 2 else "chisquare"
    else:
        method = "jensenshannon"
    return method, f"{regime} and {what}: {METHODS[method][2]}"


def _choose(
    name: str, profile: dict, n_values: int, settings: DriftSettings
) -> tuple[str, float, str]:
    override = settings.columns.get(name, {})
    if override.get("method"):
        method, reason = override["method"], f"method {override['method']!r} set for this column"
    elif settings.method:
        method, reason = settings.method, f"method {settings.method!r} set for all columns"
    else:
        method, reason = _default_method(profile, n_values)
    threshold = override.get("threshold", settings.threshold)
    if threshold is None:
        threshold = settings.kind_and_threshold(method)[1]
    return method, float(threshold), reason


def _result(name: str, profile: dict | None, reason: str, **known: Any) -> dict[str, Any]:
    """A column's entry in the report, as skipped; a column that was tested updates it."""
    return {
        "column": name,
        "kind": profile["kind"] if profile else None,
        "method": known.get("method"),
        "statistic": None,
        "p_value": None,
        "threshold": known.get("threshold"),
        "drifted": False,
        "skipped": True,
        "n_unique_reference": profile["n_unique"] if profile else None,
        "n_unique_current": known.get("n_unique_current"),
        "reference_size": profile["n"] if profile else None,
        "current_size": known.get("current_size"),
        "reason": reason,
        "effect_method": None,  # "wasserstein" (normalised) or "psi"
        "effect_size": None,
        "effect_threshold": None,
        "effect_p_value": None,  # of the KS or chi-square test that must agree
        "strong": False,
    }



def _run_plugin_test(
    method: str, settings: DriftSettings, profile: dict, series: pd.Series, current: Current
) -> tuple[float, float | None, str | None]:
    """A plugin's test; whatever it raises skips the column with the reason."""
    test = settings.tests[method]
    values = current.ordered if current.ordered is not None else series.dropna().to_numpy()
    try:
        statistic, p_value = test.run(profile, values)
        statistic = float(statistic)
        p_value = None if p_value is None else float(p_value)
    except NotApplicable as exc:
        return 0.0, None, str(exc)
    except Exception as exc:
        return 0.0, None, f"drift test {method!r} failed: {type(exc).__name__}: {exc}"
    if test.statistic == "p_value" and p_value is None:
        return 0.0, None, f"drift test {method!r} gave no p-value"
    return statistic, p_value, None


def _column_result(
    name: str,
    profile: dict,
    series: pd.Series,
    settings: DriftSettings,
    counts: ValueCounts | None = None,
) -> dict:
    if profile["n"] == 0:
        return _result(name, profile, "reference has no non-null values")
    if not series.notna().any():  # an empty column reads as text: say it is empty
        return _result(name, profile, "current has no non-null values", current_size=0)
    if profile["kind"] == "numeric":
        if not (is_numeric_dtype(series) or is_time_dtype(series)):
            why = f"type changed: numeric in reference, {series.dtype} in current"
            return _result(name, profile, why)
        current = current_numeric(series)
    else:
        counted = None if counts is None or is_numeric_dtype(series) else counts(name)
        current = current_categorical(series, counted)
    sizes = {"n_unique_current": current.n_unique, "current_size": current.size}
    if current.size == 0:
        return _result(name, profile, "current has no non-null values", **sizes)
    n_values = union_distinct(profile, current)
    method, threshold, reason = _choose(name, profile, n_values, settings)
    if method in METHODS:
        statistic, p_value, problem = run_method(method, profile, current, n_values)
    else:
        statistic, p_value, problem = _run_plugin_test(method, settings, profile, series, current)
    if problem:
        return _result(name, profile, problem, method=method, threshold=threshold, **sizes)
    # The effect reuses the column's own test where it is the same statistic on the
    # same values (a KS or chi-square p-value, a Wasserstein or PSI size).
    known = {method: (statistic, p_value)} if method in METHODS else {}
    effect = _effect(profile, current, settings, known)
    if settings.kind_and_threshold(method)[0] == "p_value":
        drifted = p_value < threshold
        reason += f", drift when p < {threshold:g}"
    elif method in METHODS and effect:
        # A distance alone cannot tell chance from drift on a small batch.
        guard = "KS" if effect["effect_method"] == "wasserstein" else "chi-square"
        drifted = statistic >= threshold and effect["effect_p_value"] < DISTANCE_P_VALUE
        reason += f", drift when >= {threshold:g} and the {guard} test agrees (p < 0.05)"
    else:
        drifted = statistic >= threshold
        reason += f", drift when >= {threshold:g}"
    result = _result(name, profile, reason, method=method, threshold=threshold, **sizes)
    result.update(statistic=statistic, p_value=p_value, drifted=bool(drifted), skipped=False)
    result.update(effect)
    return result


def _mark_strong(results: list[dict], settings: DriftSettings) -> None:
    """Flag the strong columns. The p-value guard is Bonferroni-corrected over the
    tested columns, so that a clean batch has one chance in 1/strong_p_value of any
    strong column however many columns it has."""
    tested = [r for r in results if not r["skipped"] and r["effect_size"] is not None]
    if not tested:
        return
    level = settings.strong_p_value / len(tested)
    for result in tested:
        result["strong"] = bool(
            math.isfinite(result["effect_size"])
            and result["effect_size"] >= result["effect_threshold"]
            and result["effect_p_value"] < level
        )
        if result["strong"]:
            result["drifted"] = True
            result["reason"] += (
                f"; strong: {_effect_text(result)} >= {result['effect_threshold']:g}"
                f" and p = {result['effect_p_value']:.2g} < {level:.2g}"
                f" ({settings.strong_p_value:g} over {len(tested)} columns)"
            )


def _effect(
    profile: dict,
    current: Current,
    settings: DriftSettings,
    known: dict[str, tuple[float, float | None]] | None = None,
) -> dict[str, Any]:
    """The column's effect size, the p-value of the test that must agree, and
    whether together they make a strong drift. `known`: method -> (statistic,
    p-value) already computed on this column."""
    known = known or {}
    if profile["kind"] == "numeric" and current.ordered is not None:
        size = known["wasserstein"][0] if "wasserstein" in known else None
        if size is None:
            size = wasserstein(profile, current.ordered)
        p_value = known["ks"][1] if "ks" in known else None
        if p_value is None:
            p_value = ks_test(profile, current.ordered)[1]
        method, threshold = "wasserstein", settings.strong_wasserstein
    elif current.counts is not None:
        ref, cur = category_cells(profile, current.counts)
        size = known["psi"][0] if "psi" in known else None
        if size is None:
            size = distance_statistic("psi", ref, cur)
        p_value = known["chisquare"][1] if "chisquare" in known else None
        if p_value is None:
            p_value = chisquare_test(ref, cur)[1]
        method, threshold = "psi", settings.strong_psi
    else:
        return {}
    return {
        "effect_method": method,
        "effect_size": float(size),
        "effect_threshold": float(threshold),
        "effect_p_value": float(p_value),
        "strong": False,  # decided over all columns by _mark_strong
    }


def _effect_text(result: dict) -> str:
    if result["effect_method"] == "wasserstein":
        return f"Wasserstein {result['effect_size']:.3g} reference stds"
    return f"PSI {result['effect_size']:.3g}"


def describe_column(result: dict) -> str:
    """One drifted column with its statistics, e.g. `x (ks p=2e-09 < 0.05;
    Wasserstein 1.7 reference stds)`."""
    if result["p_value"] is not None:
        test = f"{result['method']} p={result['p_value']:.2g} < {result['threshold']:g}"
    elif result["statistic"] is not None:
        test = f"{result['method']} {result['statistic']:.3g} >= {result['threshold']:g}"
    else:
        test = str(result["method"])
    effect = f"; {_effect_text(result)}" if result["effect_size"] is not None else ""
    return f"{result['column']} ({test}{effect}{', strong' if result['strong'] else ''})"


def _verdict(results: list[dict], share: float, settings: DriftSettings) -> tuple[bool, str]:
    """Whether the dataset drifts, and why in one line."""
    tested = [r for r in results if not r["skipped"]]
    drifted = [r for r in tested if r["drifted"]]
    strong = [r for r in tested if r["strong"]]
    counted = f"{len(drifted)} of {len(tested)} tested columns drifted"
    by_share = bool(tested) and share >= settings.share
    rule = f"{'>=' if by_share else '<'} the dataset share {settings.share:.0%}"
    if not tested:
        return False, "no column could be tested"
    if strong:
        names = ", ".join(r["column"] for r in strong[:SUMMARY_COLUMNS])
        return True, f"{names} drifted strongly; {counted} ({rule})"
    return by_share, f"{counted} ({rule})"


def summary(report: dict) -> str:
    """The report in one line: the verdict and why, and every drifted column with
    its method, statistic, threshold and effect size (the first few, then a count)."""
    drifted = [c for c in report["columns"] if c["drifted"]]
    head = "drift" if report["dataset_drift"] else "no drift"
    text = f"{head}: {report['verdict_reason']}"
    if drifted:
        named = "; ".join(describe_column(c) for c in drifted[:SUMMARY_COLUMNS])
        more = len(drifted) - SUMMARY_COLUMNS
        text += f": {named}" + (f"; and {more} more" if more > 0 else "")
    return text


def drift_report(
    profile: dict,
    current: pd.DataFrame,
    settings: DriftSettings | None = None,
    *,
    counts: ValueCounts | None = None,
) -> dict:
    """Compare `current` with a reference profile, column by column.

    Returns {"columns": [per column: column, kind, method, statistic, p_value (None
    for distances), threshold, drifted, skipped, n_unique_reference, n_unique_current,
    reference_size, current_size (non-null counts), reason], "share_drifted" (of the
    tested columns), "drifted_columns", "tested_columns", "share_threshold",
    "strong_columns" (drifted strongly), "strong_thresholds", "dataset_drift"
    (share_drifted >= share, as Evidently, or any column drifted strongly),
    "verdict_reason", "summary" (one line naming the drifted columns and their
    statistics), "reference_rows", "current_rows", "new_columns" (in current but
    not profiled)}. Each column also has effect_method, effect_size,
    effect_threshold, effect_p_value and strong.

    A column missing from `current`, empty on either side, or whose forced method
    does not apply to it is reported with skipped = True and the reason. `counts`:
    `current`'s value counts, shared with its validation (`workbench.data.counts`).
    """
    settings = settings or DriftSettings()
    settings.validate()
    by_name = {str(c): c for c in current.columns}
    results = []
    for name, column_profile in profile["columns"].items():
        if name not in by_name:
            results.append(_result(name, column_profile, "column missing from current"))
        else:
            series = current[by_name[name]]
            counter = counts if by_name[name] == name else None  # counted by its own name
            results.append(_column_result(name, column_profile, series, settings, counter))
    _mark_strong(results, settings)
    tested = [r for r in results if not r["skipped"]]
    drifted = sum(r["drifted"] for r in tested)
    share = drifted / len(tested) if tested else 0.0
    dataset_drift, why = _verdict(results, share, settings)
    report = {
        "columns": results,
        "share_drifted": share,
        "drifted_columns": drifted,
        "tested_columns": len(tested),
        "share_threshold": settings.share,
        "strong_columns": [r["column"] for r in tested if r["strong"]],
        "strong_thresholds": {
            "wasserstein": settings.strong_wasserstein,
            "psi": settings.strong_psi,
            "p_value": settings.strong_p_value,
        },
        "dataset_drift": dataset_drift,
        "verdict_reason": why,
        "reference_rows": profile.get("rows"),
        "current_rows": len(current),
        "new_columns": [n for n in by_name if n not in profile["columns"]],
    }
    report["summary"] = summary(report)
    return report
