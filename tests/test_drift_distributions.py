"""The drift tests' numpy p-values and distances (`data/drift/distributions.py`)
agree with scipy.stats, which they replace so that `data drift` and `monitor`
need not import it: within 1e-9 on drawn inputs, across every branch of the
Kolmogorov distribution (Ruben-Gambino, Durbin's matrix, Pelz-Good, Smirnov)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from workbench.data.drift import distributions

TOLERANCE = 1e-9
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    n=st.one_of(st.integers(1, 200), st.integers(min_value=1, max_value=300_000)),
    x=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)
def test_kstwo_sf_matches_scipy(n, x):
    assert distributions.kstwo_sf(x, n) == pytest.approx(stats.kstwo.sf(x, n), abs=TOLERANCE)


@pytest.mark.parametrize(
    ("n", "x"),
    [
        (5_000, 0.0001),  # t <= 0.5
        (5_000, 0.00015),  # Ruben-Gambino, 1/2n < x <= 1/n
        (5_000, 0.999),  # t >= n - 1
        (5_000, 0.6),  # x >= 0.5: Smirnov
        (5_000, 0.01),  # n x^2 in [0.754, 2.2): Durbin's matrix (n x^1.5 <= 1.4)
        (5_000, 0.03),  # n x^2 >= 2.2: Smirnov
        (200_000, 0.002),  # n > 100,000: Pelz-Good
        (50_000, 0.005),  # n x^1.5 > 1.4: Pelz-Good
        (5_000, 0.3),  # n x^2 >= 370: zero
        (100, 0.05),  # small n, n x^2 <= 0.754693: Durbin's matrix
        (100, 0.1),  # small n, n x^2 <= 4: Pomeranz's recursion
        (69, 0.2),  # small n, beyond: Smirnov
        (140, 0.013),  # Ruben-Gambino with n <= 140
    ],
)
def test_kstwo_sf_every_branch(n, x):
    assert distributions.kstwo_sf(x, n) == pytest.approx(stats.kstwo.sf(x, n), abs=TOLERANCE)


@SETTINGS
@given(
    sizes=st.tuples(st.integers(10_001, 30_000), st.integers(50, 30_000)),
    shift=st.floats(-0.2, 0.2),
    seed=st.integers(0, 2**32 - 1),
    rounded=st.booleans(),
)
def test_ks_2samp_matches_scipy(sizes, shift, seed, rounded):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=sizes[0]), rng.normal(shift, 1.0, size=sizes[1])
    if rounded:  # ties
        a, b = np.round(a, 1), np.round(b, 1)
    expected = stats.ks_2samp(a, b)
    statistic, p_value = distributions.ks_2samp(a, b)
    assert statistic == pytest.approx(expected.statistic, abs=TOLERANCE)
    assert p_value == pytest.approx(expected.pvalue, abs=TOLERANCE)


def test_small_two_sample_ks_is_scipys_exact_test():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=300), rng.normal(0.3, 1.0, size=200)
    expected = stats.ks_2samp(a, b)
    assert distributions.ks_2samp(a, b) == (expected.statistic, expected.pvalue)


@SETTINGS
@given(
    u=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=400),
    v=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=400),
)
def test_wasserstein_matches_scipy(u, v):
    expected = stats.wasserstein_distance(u, v)
    assert distributions.wasserstein_distance(np.array(u), np.array(v)) == pytest.approx(
        expected, rel=1e-12, abs=TOLERANCE
    )


counts = st.lists(st.integers(0, 10_000), min_size=2, max_size=30)


@SETTINGS
@given(ref=counts, cur=counts)
def test_chi2_contingency_and_jensenshannon_match_scipy(ref, cur):
    size = min(len(ref), len(cur))
    table = np.array([ref[:size], cur[:size]], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    mine = distributions.chi2_contingency(table)
    assert mine[0] == pytest.approx(statistic, rel=1e-12, abs=TOLERANCE)
    assert mine[1] == pytest.approx(p_value, abs=TOLERANCE)
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    assert distributions.jensenshannon(p, q) == pytest.approx(
        distance.jensenshannon(p, q), abs=TOLERANCE
    )


@SETTINGS
@given(z=st.floats(-40, 40))
def test_normal_tail_matches_scipy(z):
    assert distributions.norm_sf(z) == stats.norm.sf(z)


def test_a_chi_square_table_with_an_empty_side_is_refused_as_scipy_does():
    table = np.array([[0.0, 0.0], [3.0, 4.0]])
    with pytest.raises(ValueError):
        stats.chi2_contingency(table, correction=False)
    with pytest.raises(ValueError):
        distributions.chi2_contingency(table)
