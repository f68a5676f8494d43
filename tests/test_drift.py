"""Per-column data drift (workbench.data.drift): shifts of known size are flagged on
exactly the shifted columns, unshifted resamples rarely are, and every result says
how it was decided."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from workbench.data.drift import (
    DriftSettings,
    column_kind,
    drift_report,
    reference_profile,
)
from workbench.core.errors import UsageError

# Sizes of the two regimes: Evidently switches from tests to distances above 1000
# reference rows.
SMALL = (800, 400)  # reference rows, current rows
LARGE = (5000, 5000)
REGIMES = {"small": SMALL, "large": LARGE}
DEFAULT_METHODS = {
    "small": {"numeric": "ks", "categorical": "chisquare", "binary": "z"},
    "large": {"numeric": "wasserstein", "categorical": "jensenshannon", "binary": "jensenshannon"},
}
COLUMNS = ["num_mean", "num_scale", "num_stable", "cat_new", "cat_stable", "target"]


def make_frame(
    rng: np.random.Generator,
    n: int,
    *,
    mean_shift: float = 0.0,
    scale: float = 1.0,
    new_category: float = 0.0,
    target_yes: float = 0.5,
) -> pd.DataFrame:
    """Mixed columns; each keyword shifts exactly one of them."""
    cats = np.array(["a", "b", "c", "d"])
    cat_new = cats[rng.integers(0, 4, n)].astype(object)
    cat_new[rng.random(n) < new_category] = "e"  # a category the reference never saw
    return pd.DataFrame(
        {
            "num_mean": rng.normal(10.0 + mean_shift * 2.0, 2.0, n),  # std 2: shift in stds
            "num_scale": rng.normal(0.0, scale, n),
            "num_stable": rng.gamma(2.0, 3.0, n),
            "cat_new": cat_new,
            "cat_stable": rng.choice(["x", "y", "z", "w", "v"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
            "target": np.where(rng.random(n) < target_yes, "yes", "no"),
        }
    )


SHIFTS = {
    "num_mean": {"mean_shift": 0.5},  # +0.5 std
    "num_scale": {"scale": 2.0},  # x2 std
    "cat_new": {"new_category": 0.1},  # a new category in 10 % of rows
    "target": {"target_yes": 0.8},  # label shift 50/50 -> 80/20
}


def flagged(report: dict) -> set[str]:
    return {c["column"] for c in report["columns"] if c["drifted"]}


def by_column(report: dict) -> dict[str, dict]:
    return {c["column"]: c for c in report["columns"]}


# --------------------------------------------------------------------------- kinds


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.linspace(0, 1, 50), "numeric"),
        (np.arange(50), "numeric"),  # integers with > 10 distinct values
        (np.arange(50) % 7, "categorical"),  # integers with <= 10: Evidently's rule
        (["a", "b", "c", "a"], "categorical"),
        (["yes", "no", "yes", None], "binary"),
        ([0.0, 1.0, 1.0, np.nan], "binary"),
        ([True, False, True], "binary"),
        (pd.Categorical(["p", "q", "r"]), "categorical"),
    ],
)
def test_column_kind(values: object, kind: str) -> None:
    assert column_kind(pd.Series(values)) == kind


# --------------------------------------------------------------------------- shifts


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("shifted", SHIFTS)
def test_a_shift_is_flagged_on_exactly_its_column(regime: str, shifted: str) -> None:
    """The shifted column is flagged by a wide margin. At p < 0.05 each of the 5
    unshifted columns of the small regime is still flagged 5 % of the time by design
    (the rate is checked below); the seeds are fixed, so this test is deterministic."""
    n_ref, n_cur = REGIMES[regime]
    rng = np.random.default_rng([11, len(regime), len(shifted)])
    profile = reference_profile(make_frame(rng, n_ref))
    report = drift_report(profile, make_frame(rng, n_cur, **SHIFTS[shifted]))
    assert flagged(report) == {shifted}
    result = by_column(report)[shifted]
    assert result["method"] == DEFAULT_METHODS[regime][result["kind"]]
    if result["p_value"] is not None:
        assert result["p_value"] < 1e-3
    else:
        assert result["statistic"] >= 1.5 * result["threshold"]


@pytest.mark.parametrize("regime", REGIMES)
def test_all_shifts_at_once_and_the_dataset_drifts(regime: str) -> None:
    n_ref, n_cur = REGIMES[regime]
    rng = np.random.default_rng([12, len(regime)])
    profile = reference_profile(make_frame(rng, n_ref))
    everything = {k: v for shift in SHIFTS.values() for k, v in shift.items()}
    report = drift_report(profile, make_frame(rng, n_cur, **everything))
    assert flagged(report) == set(SHIFTS)  # num_stable and cat_stable stay quiet
    assert report["drifted_columns"] == 4
    assert report["share_drifted"] == pytest.approx(4 / 6)
    assert report["dataset_drift"] is True


def test_a_new_category_weighs_heavily_even_when_rare() -> None:
    """1 % of rows in a category the reference never had: a clear chi-square signal,
    with no zero expected count breaking the test."""
    rng = np.random.default_rng(5)
    profile = reference_profile(make_frame(rng, 1000))
    result = by_column(drift_report(profile, make_frame(rng, 1000, new_category=0.01)))["cat_new"]
    assert result["method"] == "chisquare"
    assert np.isfinite(result["statistic"])
    assert result["p_value"] < 0.01
    assert result["n_unique_current"] == result["n_unique_reference"] + 1


# --------------------------------------------------------------------------- false positives

REPEATS = 50


@pytest.mark.parametrize("regime", REGIMES)
def test_false_positive_rate_of_unshifted_resamples(regime: str) -> None:
    """Each repetition draws a fresh reference and a fresh current batch from the same
    distribution. A p-value test flags each column 5 % of the time by design, so in the
    small regime the per-column rate is held to <= 10 % (each column, and pooled) and
    the dataset-level rate to <= 10 %. The distances of the large regime should flag
    no column at all: there the rate of "any column flagged" is held to <= 10 %."""
    n_ref, n_cur = REGIMES[regime]
    rng = np.random.default_rng([13, len(regime)])
    per_column = dict.fromkeys(COLUMNS, 0)
    any_column = dataset = 0
    for _ in range(REPEATS):
        report = drift_report(reference_profile(make_frame(rng, n_ref)), make_frame(rng, n_cur))
        for name in flagged(report):
            per_column[name] += 1
        any_column += bool(flagged(report))
        dataset += report["dataset_drift"]
    assert dataset / REPEATS <= 0.10
    assert sum(per_column.values()) / (REPEATS * len(COLUMNS)) <= 0.10
    assert max(per_column.values()) / REPEATS <= 0.10, per_column
    if regime == "large":
        assert any_column / REPEATS <= 0.10


# --------------------------------------------------------------------------- results


def test_each_result_records_how_it_was_decided() -> None:
    rng = np.random.default_rng(21)
    reference = make_frame(rng, 600)
    reference.loc[::10, "num_mean"] = np.nan  # nulls are dropped before the tests
    current = make_frame(rng, 300)
    current.loc[::3, "cat_stable"] = None
    report = drift_report(reference_profile(reference), current)
    results = by_column(report)
    assert list(results) == COLUMNS
    for result in results.values():
        assert result["skipped"] is False
        assert isinstance(result["statistic"], float)
        assert isinstance(result["threshold"], float)
        assert isinstance(result["drifted"], bool)
        assert result["p_value"] is not None  # all tests in the small regime
        assert "600" in result["reason"] or "540" in result["reason"]
    assert results["num_mean"]["reference_size"] == 540
    assert results["num_mean"]["n_unique_reference"] == 540
    assert results["cat_stable"]["current_size"] == 200
    assert results["cat_stable"]["n_unique_current"] == 5
    assert results["target"]["n_unique_reference"] == 2
    assert (results["num_scale"]["method"], results["num_scale"]["threshold"]) == ("ks", 0.05)
    assert "Kolmogorov-Smirnov" in results["num_scale"]["reason"]
    assert "<= 1000" in results["num_scale"]["reason"]
    assert report["share_threshold"] == 0.5
    assert report["tested_columns"] == 6


def test_numeric_column_with_few_values_is_tested_as_categorical() -> None:
    """Evidently: a numeric column with at most 5 distinct values (reference and current
    together) gets chi-square / Jensen-Shannon, with at most 2 the z-test."""
    rng = np.random.default_rng(22)
    small = pd.DataFrame({"level": rng.integers(0, 4, 500).astype(float)})
    large = pd.DataFrame({"level": rng.integers(0, 4, 3000).astype(float)})
    flag = pd.DataFrame({"flag": rng.integers(0, 2, 500).astype(float)})
    assert by_column(drift_report(reference_profile(small), small))["level"]["method"] == (
        "chisquare"
    )
    assert by_column(drift_report(reference_profile(large), large))["level"]["method"] == (
        "jensenshannon"
    )
    assert by_column(drift_report(reference_profile(flag), flag))["flag"]["method"] == "z"


def test_statistics_agree_with_scipy() -> None:
    rng = np.random.default_rng(23)
    reference, current = make_frame(rng, 700), make_frame(rng, 900, mean_shift=0.1)
    profile = reference_profile(reference)
    results = by_column(drift_report(profile, current))
    expected = stats.ks_2samp(reference["num_mean"], current["num_mean"])
    assert results["num_mean"]["statistic"] == pytest.approx(expected.statistic)
    assert results["num_mean"]["p_value"] == pytest.approx(expected.pvalue)

    table = pd.crosstab(
        np.r_[np.zeros(700), np.ones(900)], np.r_[reference["cat_stable"], current["cat_stable"]]
    )
    chi2 = stats.chi2_contingency(table.to_numpy(), correction=False)
    assert results["cat_stable"]["statistic"] == pytest.approx(chi2.statistic)
    assert results["cat_stable"]["p_value"] == pytest.approx(chi2.pvalue)

    yes_ref, yes_cur = (reference["target"] == "no").mean(), (current["target"] == "no").mean()
    pooled = (yes_ref * 700 + yes_cur * 900) / 1600
    z = (yes_ref - yes_cur) / np.sqrt(pooled * (1 - pooled) * (1 / 700 + 1 / 900))
    assert abs(results["target"]["statistic"]) == pytest.approx(abs(z))
    assert results["target"]["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)))


def test_large_reference_distances_agree_with_exact_ones() -> None:
    """Wasserstein from the stored quantile slices is within 2 % of scipy's exact distance;
    Jensen-Shannon uses scipy's natural log, as Evidently does."""
    rng = np.random.default_rng(24)
    reference, current = make_frame(rng, 20000), make_frame(rng, 8000, mean_shift=0.3)
    profile = reference_profile(reference)
    assert "sample" not in profile["columns"]["num_mean"]  # large: no raw values kept
    results = by_column(drift_report(profile, current))
    for name in ("num_mean", "num_stable"):
        exact = stats.wasserstein_distance(reference[name], current[name])
        normed = exact / np.std(reference[name])
        assert results[name]["statistic"] == pytest.approx(normed, rel=0.02)
        assert results[name]["statistic"] <= normed * (1 + 1e-9)  # a lower bound
    # A profile stored before `quantile_means` existed falls back to the quantiles.
    del profile["columns"]["num_mean"]["quantile_means"]
    fallback = by_column(drift_report(profile, current))["num_mean"]["statistic"]
    assert fallback == pytest.approx(results["num_mean"]["statistic"], rel=0.05)

    ref_counts = reference["cat_stable"].value_counts()
    cur_counts = current["cat_stable"].value_counts().reindex(ref_counts.index)
    js = distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    assert results["cat_stable"]["statistic"] == pytest.approx(js)
    assert results["cat_stable"]["p_value"] is None


# --------------------------------------------------------------------------- settings


def test_settings_override_method_and_threshold_per_column() -> None:
    rng = np.random.default_rng(31)
    profile = reference_profile(make_frame(rng, 2000))
    current = make_frame(rng, 2000, mean_shift=0.5)
    settings = DriftSettings(
        columns={
            "num_mean": {"method": "psi"},
            "num_stable": {"method": "ks", "threshold": 0.01},
            "cat_stable": {"threshold": 0.5},
        }
    )
    results = by_column(drift_report(profile, current, settings))
    assert (results["num_mean"]["method"], results["num_mean"]["threshold"]) == ("psi", 0.1)
    assert results["num_mean"]["drifted"] is True  # PSI of a 0.5 std shift ~ 0.25
    assert "set for this column" in results["num_mean"]["reason"]
    assert (results["num_stable"]["method"], results["num_stable"]["threshold"]) == ("ks", 0.01)
    assert results["num_stable"]["p_value"] is not None
    assert results["cat_stable"]["method"] == "jensenshannon"
    assert results["cat_stable"]["threshold"] == 0.5
    assert results["num_scale"]["method"] == "wasserstein"  # untouched columns: defaults


def test_a_method_forced_on_all_columns_and_a_global_threshold() -> None:
    rng = np.random.default_rng(32)
    profile = reference_profile(make_frame(rng, 2000))
    current = make_frame(rng, 2000)
    settings = DriftSettings(method="wasserstein", threshold=0.2, columns={"target": {}})
    results = by_column(drift_report(profile, current, settings))
    assert results["num_stable"]["method"] == "wasserstein"
    assert results["num_stable"]["threshold"] == 0.2
    assert "set for all columns" in results["num_stable"]["reason"]
    # Wasserstein does not apply to a categorical column: reported, not guessed.
    assert results["cat_stable"]["skipped"] is True
    assert "numeric" in results["cat_stable"]["reason"]
    report = drift_report(profile, current, DriftSettings(method="psi", threshold=0.2))
    assert {c["method"] for c in report["columns"]} == {"psi"}


def test_share_threshold_decides_dataset_drift() -> None:
    rng = np.random.default_rng(33)
    profile = reference_profile(make_frame(rng, 3000))
    # 1 of 6 columns drifts, by 0.25 std: past Wasserstein's 0.1, short of "strong".
    current = make_frame(rng, 3000, mean_shift=0.25)
    report = drift_report(profile, current)
    assert flagged(report) == {"num_mean"} and report["strong_columns"] == []
    assert report["dataset_drift"] is False
    assert "1 of 6 tested columns drifted (< the dataset share 50%)" in report["summary"]
    report = drift_report(profile, current, DriftSettings(share=1 / 6))
    assert report["share_threshold"] == pytest.approx(1 / 6)
    assert report["dataset_drift"] is True


@pytest.mark.parametrize(
    "settings",
    [
        DriftSettings(method="t-test"),
        DriftSettings(columns={"x": {"method": "nope"}}),
        DriftSettings(columns={"x": {"treshold": 0.1}}),
        DriftSettings(share=1.5),
    ],
)
def test_bad_settings_are_usage_errors(settings: DriftSettings) -> None:
    profile = reference_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    with pytest.raises(UsageError):
        drift_report(profile, pd.DataFrame({"x": [1.0]}), settings)


# --------------------------------------------------------------------------- profile


def test_profile_is_json_and_reproducible() -> None:
    rng = np.random.default_rng(41)
    frame = make_frame(rng, 3000)
    profile = reference_profile(frame)
    text = json.dumps(profile, allow_nan=False, separators=(",", ":"))
    assert text == json.dumps(reference_profile(frame.copy()), separators=(",", ":"))
    # Row order does not matter either: everything is computed from sorted values.
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert text == json.dumps(reference_profile(shuffled), separators=(",", ":"))
    numeric = profile["columns"]["num_mean"]
    assert len(numeric["quantiles"]) == 1001
    assert sum(numeric["histogram"]["counts"]) == numeric["n"] == 3000
    assert len(numeric["histogram"]["edges"]) == len(numeric["histogram"]["counts"]) + 1
    assert profile["columns"]["cat_stable"]["categories"]["values"][0] == "x"  # most frequent


def test_report_from_a_stored_profile_matches_the_fresh_one() -> None:
    rng = np.random.default_rng(42)
    for rows in (500, 3000):  # with and without raw values
        profile = reference_profile(make_frame(rng, rows))
        stored = json.loads(json.dumps(profile))
        current = make_frame(rng, 700, mean_shift=0.2, new_category=0.05)
        assert drift_report(stored, current) == drift_report(profile, current)


def test_small_reference_keeps_raw_values_only_for_numeric_columns() -> None:
    profile = reference_profile(make_frame(np.random.default_rng(43), 1000))
    assert len(profile["columns"]["num_mean"]["sample"]) == 1000
    assert "sample" not in profile["columns"]["cat_stable"]


def test_many_categories_are_lumped_beyond_the_top_1000() -> None:
    rng = np.random.default_rng(44)
    frame = pd.DataFrame({"id": [f"u{i}" for i in rng.integers(0, 1500, 20000)]})
    entry = reference_profile(frame)["columns"]["id"]
    assert len(entry["categories"]["values"]) == 1000
    assert entry["other"]["categories"] == entry["n_unique"] - 1000
    assert sum(entry["categories"]["counts"]) + entry["other"]["count"] == 20000
    report = drift_report(reference_profile(frame), frame)
    assert report["columns"][0]["drifted"] is False


def test_missing_column_is_skipped_and_new_columns_are_listed() -> None:
    rng = np.random.default_rng(45)
    profile = reference_profile(make_frame(rng, 500))
    current = make_frame(rng, 500).drop(columns=["num_scale"]).assign(extra=1)
    report = drift_report(profile, current)
    skipped = by_column(report)["num_scale"]
    assert skipped["skipped"] is True
    assert skipped["drifted"] is False
    assert skipped["reason"] == "column missing from current"
    assert report["tested_columns"] == 5
    assert report["new_columns"] == ["extra"]


def test_empty_and_retyped_columns_are_skipped_with_a_reason() -> None:
    reference = pd.DataFrame({"x": [1.5, 2.5, 3.5, 4.5], "gone": [np.nan] * 4})
    current = pd.DataFrame({"x": ["a", "b", "c", "d"], "gone": [1.0, 2.0, 3.0, 4.0]})
    results = by_column(drift_report(reference_profile(reference), current))
    assert results["x"]["skipped"] and "type changed" in results["x"]["reason"]
    assert results["gone"]["skipped"] and "no non-null" in results["gone"]["reason"]


def test_timestamps_are_left_out_unless_named() -> None:
    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=50, freq="h"), "x": 1.0})
    assert list(reference_profile(frame)["columns"]) == ["x"]
    entry = reference_profile(frame, ["t"])["columns"]["t"]
    assert entry["kind"] == "numeric"
    assert entry["max"] - entry["min"] == 49 * 3600  # epoch seconds


# --------------------------------------------------------------------------- strong drift


def ten_columns(rng: np.random.Generator, n: int, shifts: dict[str, float]) -> pd.DataFrame:
    """Ten correlated numeric columns (a shared factor), plus a category; `shifts`
    moves a column's mean by that many of its standard deviations."""
    factor = rng.normal(0.0, 1.0, n)
    frame = pd.DataFrame(
        {f"x{i}": 0.6 * factor + 0.8 * rng.normal(0.0, 1.0, n) for i in range(9)}
        | {"kind": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])}
    )
    for column, shift in shifts.items():
        frame[column] += shift  # each column's std is 1
    return frame


@pytest.mark.parametrize("regime", REGIMES)
def test_one_strong_shift_makes_the_dataset_drift_and_is_named(regime: str) -> None:
    """One column 1.7 reference stds away and three more a little: 4 of 10 columns
    is under the 50 % share, but the strong one alone makes the dataset drift."""
    n_ref, n_cur = REGIMES[regime]
    # Seeds fixed (each unshifted column is flagged 5 % of the time at p < 0.05):
    # exactly the four shifted columns drift here.
    rng = np.random.default_rng([24, len(regime)])
    profile = reference_profile(ten_columns(rng, n_ref, {}))
    shifts = {"x0": 1.7, "x1": 0.3, "x2": 0.3, "x3": 0.3}
    report = drift_report(profile, ten_columns(rng, n_cur, shifts))
    assert flagged(report) == set(shifts)
    assert report["share_drifted"] == pytest.approx(0.4)
    assert report["strong_columns"] == ["x0"]
    assert report["dataset_drift"] is True
    x0 = by_column(report)["x0"]
    assert x0["effect_method"] == "wasserstein" and x0["effect_size"] == pytest.approx(1.7, 0.15)
    assert x0["effect_threshold"] == 0.5 and x0["effect_p_value"] < 1e-10
    assert "strong" in x0["reason"]
    # The one-line summary names the columns and their statistics.
    assert report["summary"].startswith(
        "drift: x0 drifted strongly; 4 of 10 tested columns drifted (< the dataset share 50%): "
    )
    assert f"x0 ({x0['method']} " in report["summary"]
    assert f"Wasserstein {x0['effect_size']:.3g} reference stds, strong)" in report["summary"]
    assert all(name in report["summary"] for name in shifts)


def test_a_strong_categorical_shift_is_measured_by_psi() -> None:
    rng = np.random.default_rng(22)
    profile = reference_profile(ten_columns(rng, 2000, {}))
    current = ten_columns(rng, 300, {})
    current["kind"] = rng.choice(["a", "b", "c", "d"], 300, p=[0.1, 0.2, 0.3, 0.4])
    report = drift_report(profile, current)
    kind = by_column(report)["kind"]
    assert kind["effect_method"] == "psi" and kind["effect_size"] >= 0.25 and kind["strong"]
    assert report["strong_columns"] == ["kind"] and report["dataset_drift"] is True
    assert "PSI" in report["summary"]


@pytest.mark.parametrize("n_cur", [30, 60, 400, 3000])
def test_clean_batches_stay_quiet(n_cur: int) -> None:
    """Batches drawn from the reference's own distribution, over 20 seeds each and
    sizes from 30 rows up: never a dataset drift, never a strong column."""
    for seed in range(20):
        rng = np.random.default_rng([23, n_cur, seed])
        profile = reference_profile(ten_columns(rng, 800 if seed % 2 else 4000, {}))
        report = drift_report(profile, ten_columns(rng, n_cur, {}))
        assert report["strong_columns"] == [], (seed, report["summary"])
        assert report["dataset_drift"] is False, (seed, report["summary"])
        assert report["summary"].startswith("no drift: ")


def test_a_half_std_shift_is_strong_only_with_enough_rows() -> None:
    """Ten rows 0.6 std away cannot be told from chance (KS p > 0.001): drifted
    perhaps, never strong; five hundred can."""
    rng = np.random.default_rng(24)
    profile = reference_profile(ten_columns(rng, 800, {}))
    few = by_column(drift_report(profile, ten_columns(rng, 10, {"x0": 0.6})))["x0"]
    assert few["effect_p_value"] >= 0.001 and few["strong"] is False
    many = by_column(drift_report(profile, ten_columns(rng, 500, {"x0": 0.6})))["x0"]
    assert many["strong"] is True


@pytest.mark.parametrize("name", ["strong_wasserstein", "strong_psi", "strong_p_value"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf")])
def test_strong_thresholds_must_be_positive_and_finite(name: str, value: float) -> None:
    profile = reference_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    with pytest.raises(UsageError, match=name):
        drift_report(profile, pd.DataFrame({"x": [1.0]}), DriftSettings(**{name: value}))
