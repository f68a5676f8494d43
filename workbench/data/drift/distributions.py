"""The p-values and distances of the drift tests without importing `scipy.stats`.

`scipy.stats` takes about a second to import on a small machine (it pulls in
scipy.spatial, scipy.optimize, scipy.linalg and their docstrings), more than the
tests themselves take on a million rows; `data drift` and `monitor` pay it on
every start. What the built-in tests need from it is small: the two-sided
one-sample Kolmogorov distribution `kstwo.sf` (for the KS p-value), the chi-square
and normal tails, the two-sample KS test in its asymptotic mode, the
Wasserstein distance and the Jensen-Shannon distance. Here they are in numpy,
with the few special functions taken from `scipy.special` (a tenth of the import),
following scipy's own algorithms step by step (`scipy/stats/_ksstats.py`, after
Simard & L'Ecuyer 2011: Durbin's matrix as Marsaglia, Tsang and Wang compute it,
Pelz-Good's expansion, the Smirnov tail), so the numbers agree with scipy's to
within 1e-9 (`tests/test_drift_distributions.py` draws the inputs).

What is not ported falls back to scipy itself: the exact two-sample KS test of
small samples (both at most 10,000 values, as scipy's `method="auto"`), cheap
once scipy is loaded and rare where speed counts (a million logged rows).
"""

from __future__ import annotations

import numpy as np

_E128 = 128
_EP128 = np.ldexp(np.longdouble(1), _E128)
_EM128 = np.ldexp(np.longdouble(1), -_E128)
_SQRT2PI = np.sqrt(2 * np.pi)
_LOG_2PI = np.log(2 * np.pi)
_MIN_LOG = -708
_SQRT3 = np.sqrt(3)
_PI_SQUARED = np.pi**2
_PI_FOUR = np.pi**4
_PI_SIX = np.pi**6
# Stirling's series: B_{2j} / (2j) / (2j - 1) for j = 8 .. 1 (scipy's _loggamma.pxd).
_STIRLING_COEFFS = [
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
]
EXACT_TWO_SAMPLE_MAX = 10_000  # scipy's ks_2samp(method="auto") is exact up to this size
SMALL_N = 140  # up to this n, Durbin's matrix and Pomeranz's recursion (Simard-L'Ecuyer)


# --------------------------------------------------------------------------- tails


def chi2_sf(statistic: float, dof: float) -> float:
    """`scipy.stats.chi2.sf`: the same special function scipy calls."""
    from scipy.special import chdtrc

    return float(chdtrc(dof, statistic))


def norm_sf(z: float) -> float:
    """`scipy.stats.norm.sf`: ndtr(-z), as scipy computes it."""
    from scipy.special import ndtr

    return float(ndtr(-z))


def chi2_contingency(table: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of `scipy.stats.chi2_contingency(table,
    correction=False)` for a 2 x k table of counts with no empty column."""
    table = np.asarray(table, dtype=np.float64)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if np.any(expected == 0):
        raise ValueError("a row of the table is empty: the expected frequencies have a zero")
    dof = expected.size - sum(expected.shape) + expected.ndim - 1
    if dof == 0:  # scipy: the statistic is 0 and the p-value 1
        return 0.0, 1.0
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, chi2_sf(statistic, dof)


# --------------------------------------------------------------------------- distances


def wasserstein_distance(u_values: np.ndarray, v_values: np.ndarray) -> float:
    """`scipy.stats.wasserstein_distance(u, v)` of two unweighted samples: the
    area between their empirical CDFs."""
    u_sorted = np.sort(np.asarray(u_values, dtype=np.float64))
    v_sorted = np.sort(np.asarray(v_values, dtype=np.float64))
    all_values = np.concatenate((u_sorted, v_sorted))
    all_values.sort(kind="mergesort")
    deltas = np.diff(all_values)
    u_cdf = u_sorted.searchsorted(all_values[:-1], "right") / u_sorted.size
    v_cdf = v_sorted.searchsorted(all_values[:-1], "right") / v_sorted.size
    return float(np.dot(np.abs(u_cdf - v_cdf), deltas))


def jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """`scipy.spatial.distance.jensenshannon(p, q)` (natural logarithm)."""
    from scipy.special import rel_entr

    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / np.sum(p, axis=0, keepdims=True)
    q = q / np.sum(q, axis=0, keepdims=True)
    m = (p + q) / 2.0
    js = np.sum(rel_entr(p, m), axis=0) + np.sum(rel_entr(q, m), axis=0)
    return float(np.sqrt(js / 2.0))


# --------------------------------------------------------------------------- Kolmogorov-Smirnov


def ks_2samp(data1: np.ndarray, data2: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of `scipy.stats.ks_2samp(data1, data2)` (two-sided,
    method "auto")."""
    data1 = np.sort(np.asarray(data1, dtype=np.float64))
    data2 = np.sort(np.asarray(data2, dtype=np.float64))
    n1, n2 = data1.shape[0], data2.shape[0]
    if max(n1, n2) <= EXACT_TWO_SAMPLE_MAX:
        from scipy import stats  # the exact test of small samples: scipy's own

        result = stats.ks_2samp(data1, data2)
        return float(result.statistic), float(result.pvalue)
    data_all = np.concatenate([data1, data2])
    cddiffs = (
        np.searchsorted(data1, data_all, side="right") / n1
        - np.searchsorted(data2, data_all, side="right") / n2
    )
    min_s = np.clip(-cddiffs[np.argmin(cddiffs)], 0, 1)
    max_s = cddiffs[np.argmax(cddiffs)]
    d = float(min_s if min_s > max_s else max_s)
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return d, float(np.clip(kstwo_sf(d, round(en)), 0, 1))


def kstwo_sf(x: float, n: int) -> float:
    """`scipy.stats.kstwo.sf(x, n)`: P(D_n >= x) for the two-sided one-sample
    Kolmogorov-Smirnov statistic of n values (scipy's `_kolmogn(n, x, cdf=False)`)."""
    n = int(n)
    if n <= 0:
        return float("nan")
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:  # Ruben-Gambino: 1/2n <= x <= 1/n
        if t <= 0.5:
            return 1.0
        if n <= SMALL_N:
            prob = np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1))
        else:
            prob = np.exp(_log_nfactorial_div_n_pow_n(n) + n * np.log(2 * t - 1))
        return _clip(1.0 - prob)
    if t >= n - 1:  # Ruben-Gambino
        return _clip(2 * (1.0 - x) ** n)
    if x >= 0.5:  # exact: twice the one-sided Smirnov tail
        return _clip(2 * _smirnov(n, x))
    nxsquared = t * x
    if n <= SMALL_N:
        if nxsquared <= 0.754693:
            return _clip(1.0 - _kolmogn_dmtw(n, x))
        if nxsquared <= 4:
            return _clip(1.0 - _kolmogn_pomeranz(n, x))
        return _clip(2 * _smirnov(n, x))  # Miller's approximation
    if nxsquared >= 370.0:
        return 0.0
    if nxsquared >= 2.2:
        return _clip(2 * _smirnov(n, x))
    if n <= 100000 and n * x**1.5 <= 1.4:
        cdf = _kolmogn_dmtw(n, x)
    else:
        cdf = _kolmogn_pelz_good(n, x)
    return _clip(1.0 - cdf)


def _clip(p: float) -> float:
    return float(np.clip(p, 0.0, 1.0))


def _smirnov(n: int, x: float) -> float:
    from scipy.special import smirnov

    return float(smirnov(n, x))


def _log_nfactorial_div_n_pow_n(n: int) -> float:
    """log(n! / n**n) by Stirling's series, n log n removed first."""
    rn = 1.0 / n
    return float(np.log(n) / 2 - n + _LOG_2PI / 2 + rn * np.polyval(_STIRLING_COEFFS, rn / n))


def _kolmogn_dmtw(n: int, d: float) -> float:
    """P(D_n <= d) by Durbin's matrix, as Marsaglia, Tsang and Wang compute it:
    the k-th diagonal entry of (n!/n^n) H^n, scaled as it grows."""
    if d >= 1.0:
        return 1.0
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = int(np.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    matrix = np.zeros([m, m])
    intm = np.arange(1, m + 1)
    v = 1.0 - h**intm
    w = np.empty(m)
    fac = 1.0
    for j in intm:
        w[j - 1] = fac
        fac /= j  # may underflow, harmlessly
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0) ** m - 2 * h**m
    v[-1] = (1.0 + tt) * fac
    for i in range(1, m):
        matrix[i - 1 :, i] = w[: m - i + 1]
    matrix[:, 0] = v
    matrix[-1, :] = np.flip(v, axis=0)
    power = np.eye(m)
    nn = n
    expnt = 0  # the scaling of `power`
    matrix_expnt = 0  # the scaling of `matrix`
    while nn > 0:
        if nn % 2:
            power = np.matmul(power, matrix)
            expnt += matrix_expnt
        matrix = np.matmul(matrix, matrix)
        matrix_expnt *= 2
        if np.abs(matrix[k - 1, k - 1]) > _EP128:
            matrix /= _EP128
            matrix_expnt += _E128
        nn = nn // 2
    p = power[k - 1, k - 1]
    for i in range(1, n + 1):  # times n! / n^n
        p = i * p / n
        if np.abs(p) < _EM128:
            p *= _EP128
            expnt -= _E128
    if expnt != 0:
        p = np.ldexp(p, expnt)
    return _clip(p)


def _pomeranz_bounds(i: int, n: int, ll: int, ceilf: int, roundf: int) -> tuple[int, int]:
    """The first and last non-zero entries of row i of Pomeranz's recursion."""
    if i == 0:
        j1, j2 = -ll - ceilf - 1, ll + ceilf - 1
    else:
        ip1div2, ip1mod2 = divmod(i + 1, 2)
        if ip1mod2 == 0:  # i is odd
            if ip1div2 == n + 1:
                j1, j2 = n - ll - ceilf - 1, n + ll + ceilf - 1
            else:
                j1, j2 = ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1
        else:
            j1, j2 = ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1
    return max(j1 + 2, 0), min(j2, n)


def _kolmogn_pomeranz(n: int, x: float) -> float:
    """P(D_n <= x) by Pomeranz's recursion (small n): rows of convolutions with
    near-Poisson probabilities, two rows kept, scaled against underflow."""
    t = n * x
    ll = int(np.floor(t))
    f = 1.0 * (t - ll)
    g = min(f, 1.0 - f)
    ceilf = 1 if f > 0 else 0
    roundf = 1 if f > 0.5 else 0
    npwrs = 2 * (ll + 1)
    gpower = np.empty(npwrs)  # (g/n)^m / m!
    twogpower = np.empty(npwrs)  # (2g/n)^m / m!
    onem2gpower = np.empty(npwrs)  # ((1-2g)/n)^m / m!
    gpower[0] = twogpower[0] = onem2gpower[0] = 1.0
    expnt = 0
    g_over_n, two_g_over_n, one_minus_two_g_over_n = g / n, 2 * g / n, (1 - 2 * g) / n
    for m in range(1, npwrs):
        gpower[m] = gpower[m - 1] * g_over_n / m
        twogpower[m] = twogpower[m - 1] * two_g_over_n / m
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / m
    v0 = np.zeros([npwrs])
    v1 = np.zeros([npwrs])
    v1[0] = 1
    v0s, v1s = 0, 0
    j1, j2 = _pomeranz_bounds(0, n, ll, ceilf, roundf)
    for i in range(1, 2 * n + 2):
        k1 = j1
        v0, v1 = v1, v0
        v0s, v1s = v1s, v0s
        v1.fill(0.0)
        j1, j2 = _pomeranz_bounds(i, n, ll, ceilf, roundf)
        if i == 1 or i == 2 * n + 1:
            pwrs = gpower
        else:
            pwrs = twogpower if i % 2 else onem2gpower
        ln2 = j2 - k1 + 1
        if ln2 > 0:
            conv = np.convolve(v0[k1 - v0s : k1 - v0s + ln2], pwrs[:ln2])
            conv_start = j1 - k1
            conv_len = j2 - j1 + 1
            v1[:conv_len] = conv[conv_start : conv_start + conv_len]
            if 0 < np.max(v1) < _EM128:
                v1 *= _EP128
                expnt -= _E128
            v1s = v0s + j1 - k1
    ans = v1[n - v1s]
    for m in range(1, n + 1):  # times n!
        if np.abs(ans) > _EP128:
            ans *= _EM128
            expnt += _E128
        ans *= m
    if expnt != 0:
        ans = np.ldexp(ans, expnt)
    return _clip(ans)


def _kolmogn_pelz_good(n: int, x: float) -> float:
    """P(D_n <= x) by Pelz and Good's expansion (for small x * sqrt(n))."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    z = np.sqrt(n) * x
    zsquared, zthree, zfour, zsix = z**2, z**3, z**4, z**6
    qlog = -_PI_SQUARED / 8 / zsquared
    if qlog < _MIN_LOG:
        return 0.0
    q = np.exp(qlog)
    k1a = -zsquared
    k1b = _PI_SQUARED / 4
    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsquared) * _PI_SQUARED / 4
    k2c = _PI_FOUR * (1 - 2 * zsquared) / 16
    k3d = _PI_SIX * (5 - 30 * zsquared) / 64
    k3c = _PI_FOUR * (-60 * zsquared + 212 * zfour) / 16
    k3b = _PI_SQUARED * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * z**8
    terms = np.zeros(4)
    maxk = int(np.ceil(16 * z / np.pi))
    for k in range(maxk, 0, -1):  # Horner over the odd integers
        m = 2 * k - 1
        msquared, mfour, msix = m**2, m**4, m**6
        qpower = np.power(q, 8 * k)
        coeffs = np.array(
            [
                1.0,
                k1a + k1b * msquared,
                k2a + k2b * msquared + k2c * mfour,
                k3a + k3b * msquared + k3c * mfour + k3d * msix,
            ]
        )
        terms *= qpower
        terms += coeffs
    terms *= q
    terms *= _SQRT2PI
    terms /= np.array([z, 6 * zfour, 72 * z**7, 6480 * z**10])
    q = np.exp(-_PI_SQUARED / 2 / zsquared)
    ks = np.arange(maxk, 0, -1)
    ksquared = ks**2
    sqrt3z = _SQRT3 * z
    kspi = np.pi * ks
    qpwers = q**ksquared
    k2extra = np.sum(ksquared * qpwers)
    k2extra *= _PI_SQUARED * _SQRT2PI / (-36 * zthree)
    terms[2] += k2extra
    k3extra = np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpwers)
    k3extra *= _PI_SQUARED * _SQRT2PI / (216 * zsix)
    terms[3] += k3extra
    terms /= np.power(n * 1.0, np.arange(len(terms)) / 2.0)
    return float(sum(terms))
