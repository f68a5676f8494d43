"""The drift tests, per column kind: the statistics (Kolmogorov-Smirnov,
chi-square, z, Wasserstein, Jensen-Shannon, PSI) on a reference profile and a
current column reduced to sorted values (numeric) or category counts
(categorical, binary), and the built-in methods as plugin `DriftTest`s."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.data.drift import distributions
from workbench.data.drift.profile import (
    DISCRETE_VALUES,
    TOP_CATEGORIES,
    bin_counts,
    category_counts,
    distinct_sorted,
    quantiles_of_sorted,
    slice_means_of_sorted,
    sorted_finite,
)

# name -> (what the statistic is, default threshold, description)
METHODS: dict[str, tuple[str, float, str]] = {
    "ks": ("p_value", 0.05, "two-sample Kolmogorov-Smirnov test"),
    "chisquare": ("p_value", 0.05, "chi-square test of homogeneity"),
    "z": ("p_value", 0.05, "two-proportion z-test"),
    "wasserstein": ("distance", 0.1, "Wasserstein distance normalised by the reference std"),
    "jensenshannon": ("distance", 0.1, "Jensen-Shannon distance (natural log)"),
    "psi": ("distance", 0.1, "population stability index"),
}
NUMERIC_ONLY = {"ks", "wasserstein"}


@dataclass(frozen=True)
class DriftTest:
    """A drift test, as a plugin contributes it (`workbench_drift_tests`).

    `run(profile, values)` gets the reference column's profile (`reference_profile`:
    raw sorted values or quantiles for a numeric column, category counts for a
    categorical one) and the current column's non-null values (sorted finite floats
    for a numeric column), and returns (statistic, p_value or None).
    """

    run: Callable[[dict, np.ndarray], tuple[float, float | None]]
    statistic: str = "p_value"  # "p_value": drift when p < threshold; "distance": when >=
    threshold: float = 0.05
    description: str = ""


class NotApplicable(ValueError):
    """Raised by a drift test that does not apply to a column; the column is skipped."""


def builtin_tests() -> dict[str, DriftTest]:
    """The built-in methods as DriftTests, for the plugin registry. `drift_report`
    runs built-in methods directly, on the column it has already reduced."""

    def make(method: str) -> Callable[[dict, np.ndarray], tuple[float, float | None]]:
        def run(profile: dict, values: np.ndarray) -> tuple[float, float | None]:
            series = pd.Series(values)
            numeric = profile["kind"] == "numeric"
            current = current_numeric(series) if numeric else current_categorical(series)
            statistic, p_value, problem = run_method(
                method, profile, current, union_distinct(profile, current)
            )
            if problem:
                raise NotApplicable(problem)
            return statistic, p_value

        return run

    return {
        name: DriftTest(make(name), kind, threshold, description)
        for name, (kind, threshold, description) in METHODS.items()
    }


def start_scipy_import() -> None:
    """Start importing `scipy.special` on a daemon thread (`workbench.data.preload`),
    so that it loads while the caller reads the batch. The tests need only its
    tails (`distributions`), not `scipy.stats`, which costs ten times as much to
    import."""
    from workbench.data import preload

    preload.start("scipy.special")


# --------------------------------------------------------------------------- tests


def _smooth_like_evidently(shares: np.ndarray) -> np.ndarray:
    """Replace empty cells so PSI's logarithm is finite (Evidently's `feel_zeroes`)."""
    nonzero = shares[shares > 0]
    if nonzero.size == shares.size:
        return shares
    floor = nonzero.min() / 1e6 if nonzero.min() <= 1e-4 else 1e-4
    return np.where(shares > 0, shares, floor)


def chisquare_test(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    table = np.vstack([ref, cur]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]  # a cell empty on both sides tells nothing
    if table.shape[1] < 2:
        return 0.0, 1.0
    return distributions.chi2_contingency(table)


def _ztest(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Two-proportion z-test on the first of (at most) two cells, pooled variance."""
    n1, n2 = ref.sum(), cur.sum()
    p1, p2 = ref[0] / n1, cur[0] / n2
    pooled = (ref[0] + cur[0]) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:  # the same single value on both sides
        return 0.0, 1.0
    z = float((p1 - p2) / spread)
    return z, 2 * distributions.norm_sf(abs(z))


def distance_statistic(method: str, ref: np.ndarray, cur: np.ndarray) -> float:
    ref_share, cur_share = ref / ref.sum(), cur / cur.sum()
    if method == "jensenshannon":
        return distributions.jensenshannon(ref_share, cur_share)
    ref_share, cur_share = _smooth_like_evidently(ref_share), _smooth_like_evidently(cur_share)
    return float(np.sum((ref_share - cur_share) * np.log(ref_share / cur_share)))


def _cells_test(method: str, ref: np.ndarray, cur: np.ndarray) -> tuple[float, float | None]:
    """Statistic and p-value (None for distances) of a method on aligned cell counts."""
    if method == "chisquare":
        return chisquare_test(ref, cur)
    if method == "z":
        return _ztest(ref, cur)
    return distance_statistic(method, ref, cur), None


def wasserstein(profile: dict, current_sorted: np.ndarray) -> float:
    norm = max(profile["std"], 0.001)  # Evidently's floor for a constant reference
    if "sample" in profile:
        return distributions.wasserstein_distance(profile["sample"], current_sorted) / norm
    # W1 = integral over u of |Q_ref(u) - Q_cur(u)|. On each of the 1000 slices of u,
    # |mean Q_ref - mean Q_cur| is exact unless the two cross inside it, where they are
    # close anyway; the extreme values, which carry most of the sampling noise of a
    # heavy tail, weigh no more than the rest of their slice.
    if "quantile_means" in profile:
        ref_means = np.asarray(profile["quantile_means"])
        gap = np.abs(ref_means - slice_means_of_sorted(current_sorted, ref_means.size))
        return float(np.mean(gap) / norm)
    # Profiles written before "quantile_means" existed: trapezoids between quantiles.
    probs = np.linspace(0.0, 1.0, len(profile["quantiles"]))
    gap = np.abs(np.asarray(profile["quantiles"]) - quantiles_of_sorted(current_sorted, probs))
    return float(np.trapezoid(gap, probs) / norm)


def ks_test(profile: dict, current_sorted: np.ndarray) -> tuple[float, float]:
    if "sample" in profile:
        return distributions.ks_2samp(profile["sample"], current_sorted)
    # The reference CDF read off its quantile grid as a step function (exact to
    # 1 / 1000 for continuous data, and right at the ties of discrete data), compared
    # with the current CDF on both sides of every point of either grid.
    quantiles = np.asarray(profile["quantiles"])
    probs = np.linspace(0.0, 1.0, quantiles.size)
    points = np.concatenate([quantiles, quantiles_of_sorted(current_sorted, probs)])
    m = current_sorted.size
    last_at_or_below = np.searchsorted(quantiles, points, side="right") - 1
    ref_upto = np.where(last_at_or_below >= 0, probs[np.maximum(last_at_or_below, 0)], 0.0)
    first_at_or_above = np.searchsorted(quantiles, points, side="left")
    ref_below = np.where(
        first_at_or_above < quantiles.size,
        probs[np.minimum(first_at_or_above, probs.size - 1)],
        1.0,
    )
    cur_upto = np.searchsorted(current_sorted, points, side="right") / m
    cur_below = np.searchsorted(current_sorted, points, side="left") / m
    statistic = float(
        max(np.max(np.abs(ref_upto - cur_upto)), np.max(np.abs(ref_below - cur_below)))
    )
    effective = round(profile["n"] * m / (profile["n"] + m))
    return statistic, distributions.kstwo_sf(statistic, effective)


# --------------------------------------------------------------------------- the current column


@dataclass
class Current:
    """The current column reduced to what the tests need."""

    size: int
    n_unique: int
    ordered: np.ndarray | None = None  # numeric: sorted finite values
    counts: dict[Any, int] | None = None  # categorical: value -> count


def current_numeric(series: pd.Series) -> Current:
    ordered = sorted_finite(series)
    return Current(size=int(ordered.size), n_unique=distinct_sorted(ordered), ordered=ordered)


def current_categorical(series: pd.Series, counted: pd.Series | None = None) -> Current:
    counts = category_counts(series, counted)
    return Current(size=sum(counts.values()), n_unique=len(counts), counts=counts)


def category_cells(profile: dict, counts: dict[Any, int]) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts over reference categories, the lumped "other"
    (when the reference had more than 1000 categories) and categories new in current."""
    position = {value: i for i, value in enumerate(profile["categories"]["values"])}
    ref = list(profile["categories"]["counts"])
    cur = [0] * len(ref)
    lumped = profile["other"]["count"] > 0
    if lumped:
        ref.append(profile["other"]["count"])
        cur.append(0)
    for value, count in counts.items():
        if value in position:
            cur[position[value]] += count
        elif lumped:  # cannot tell a new category from a lumped one
            cur[-1] += count
        else:
            ref.append(0)
            cur.append(count)
    return np.asarray(ref, dtype=np.int64), np.asarray(cur, dtype=np.int64)


def _value_cells(profile: dict, ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells of a numeric column with few distinct values: one per value."""
    uniques, counts = np.unique(ordered, return_counts=True)
    as_categories = {"categories": profile["values"], "other": {"count": 0}}
    return category_cells(as_categories, dict(zip(uniques.tolist(), counts.tolist(), strict=True)))


def _bin_cells(profile: dict, ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells of a numeric column: the reference's bins, plus below its min and above its max."""
    edges = np.asarray(profile["histogram"]["edges"])
    ref = np.concatenate([[0], profile["histogram"]["counts"], [0]])
    return ref, bin_counts(ordered, edges)


def union_distinct(profile: dict, current: Current) -> int:
    """Distinct values in reference and current together (Evidently's n_values);
    exact where it matters (both sides few), a lower bound otherwise."""
    if current.counts is not None:
        known = set(profile["categories"]["values"])
        return profile["n_unique"] + sum(1 for v in current.counts if v not in known)
    if "values" not in profile or current.n_unique > DISCRETE_VALUES:
        return max(profile["n_unique"], current.n_unique)
    return len(set(profile["values"]["values"]) | set(np.unique(current.ordered).tolist()))


def run_method(
    method: str, profile: dict, current: Current, n_values: int
) -> tuple[float, float | None, str | None]:
    """(statistic, p_value, why it cannot run); the last is None when it ran."""
    numeric = current.ordered is not None
    if method in NUMERIC_ONLY:
        if not numeric or profile["kind"] != "numeric":
            return 0.0, None, f"{method} needs a numeric column; this one is {profile['kind']}"
        if method == "ks":
            statistic, p_value = ks_test(profile, current.ordered)
            return statistic, p_value, None
        return wasserstein(profile, current.ordered), None, None
    if method == "z" and n_values > 2:
        return 0.0, None, f"the z-test needs at most 2 distinct values; there are {n_values}"
    if not numeric:
        ref, cur = category_cells(profile, current.counts)
    elif "values" in profile and n_values <= TOP_CATEGORIES:
        ref, cur = _value_cells(profile, current.ordered)
    else:
        ref, cur = _bin_cells(profile, current.ordered)
    statistic, p_value = _cells_test(method, ref, cur)
    return statistic, p_value, None
