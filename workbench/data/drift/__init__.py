"""Per-column data drift of a current batch against a reference, with Evidently's
default choice of test.

A reference is summarised once by `reference_profile` (a JSON-able dict, stored per
reference version); `drift_report` compares a current DataFrame with that profile.
Nothing here touches the store or the UI. `profile` summarises the reference,
`stattests` holds the tests for each kind of column, and `report` chooses a
method for each column and gives the dataset's verdict.

Default method per column, as Evidently's `DataDriftPreset` picks it
(`evidently.legacy.calculations.stattests.registry._get_default_stattest`, 0.7):

| reference non-null | column (distinct values: reference and current together) | method | drift |
|---|---|---|---|
| <= 1000 | numeric with > 5 distinct values                  | `ks`            | p < 0.05 |
| <= 1000 | any other with at most 2 distinct values          | `z`             | p < 0.05 |
| <= 1000 | categorical, or numeric with 3-5 distinct values  | `chisquare`     | p < 0.05 |
| > 1000  | numeric with > 5 distinct values                  | `wasserstein`   | >= 0.1   |
| > 1000  | categorical, binary, or numeric with <= 5 values  | `jensenshannon` | >= 0.1   |

`psi` (>= 0.1) is available when asked for. Where this module departs from Evidently,
and why:

- `chisquare` is Pearson's test of homogeneity on the 2 x K table of reference and
  current counts, not Evidently's goodness of fit of the current counts against the
  reference proportions. The goodness-of-fit test treats the reference proportions
  as exact: with 500 reference and 500 current rows drawn from one distribution it
  flags about 33 % of columns at p < 0.05, and about 83 % with 200 against 1000. The
  homogeneity test keeps its 5 % and equals the goodness-of-fit test when the
  reference is much larger than the current batch. A category that is new in the
  current batch has a zero reference count but a non-zero expected count, so it
  weighs heavily without any division by zero.
- A large reference is not kept row by row. Wasserstein distance is computed from the
  means of 1000 equal slices of the reference's quantile function (`quantile_means`)
  and of the current one: a lower bound of the exact distance, within 0.1 % on smooth
  data and within 5 % for heavy tails (log-normal, Student t 3) in our checks. PSI,
  Jensen-Shannon and chi-square on a numeric column with more than 20 distinct values
  use 20 equal-frequency bins of the reference, plus one bin below its minimum and one
  above its maximum (Evidently bins reference and current together, which a stored
  profile cannot). A `ks` test forced on a large reference reads the reference CDF
  off those quantiles (the statistic within about 0.001 of the exact one). References
  of at most 1000 values keep their raw values, so their tests are exact.
- A reference with more than 1000 categories keeps the 1000 most frequent; the rest,
  and any current category outside those 1000, fall into one "(other)" cell.
- Jensen-Shannon distance uses the natural logarithm, as Evidently does (scipy's
  default `base=None`): it ranges from 0 to sqrt(ln 2) ~ 0.83, not 0 to 1 as in base 2.
- Every test flags drift when p < threshold (Evidently's K-S test uses <=).
- A built-in distance flags drift only when the column's KS test (numeric) or
  chi-square test (categorical) also gives p < 0.05 (`DISTANCE_P_VALUE`). A
  distance has no notion of sample size: against a large reference, a clean batch
  of 30 rows lies 0.1 to 0.3 reference stds away by chance alone, so Evidently's
  Wasserstein >= 0.1 flags most columns of every small batch. On batches of
  thousands of rows the test agrees whenever the distance is over its threshold,
  and the rule is Evidently's.

Null and infinite values are dropped before every test (Evidently does the same).

When the dataset drifts. Evidently's rule alone (at least `share` of the tested
columns drift) misses one column moving a long way while the others stay put, so
the dataset also drifts when any single column drifts *strongly*: its effect size
is at or over a threshold and a significance test agrees at a strict level. The
effect size is measured for every tested column whatever its method:

| column | effect size | strong when | and the test |
|---|---|---|---|
| numeric | Wasserstein distance / reference std (`STRONG_WASSERSTEIN`) | >= 0.5 | KS p < 0.001 / k |
| categorical, binary | PSI over its categories (`STRONG_PSI`)            | >= 0.25 | chi-square p < 0.001 / k |

(k: the number of tested columns.) 0.5 reference standard deviations is a
"medium" shift in Cohen's terms, and 0.25 is the usual "significant shift" line
of PSI. The p-value guard (`STRONG_P_VALUE`, Bonferroni-corrected over the
columns) keeps small batches quiet: a few dozen rows from the reference's own
distribution can reach those distances by chance, but not both at once; a clean
batch has about one chance in a thousand of any strong column. A
strong column always counts as drifted, and every report names its drifted
columns with their statistics (`summary`).
"""

from workbench.data.drift.profile import PROFILE_VERSION, column_kind, reference_profile
from workbench.data.drift.report import (
    DriftSettings,
    describe_column,
    drift_report,
    summary,
)
from workbench.data.drift.stattests import METHODS, DriftTest, NotApplicable, builtin_tests

__all__ = [
    "METHODS",
    "PROFILE_VERSION",
    "DriftSettings",
    "DriftTest",
    "NotApplicable",
    "builtin_tests",
    "column_kind",
    "describe_column",
    "drift_report",
    "reference_profile",
    "summary",
]
