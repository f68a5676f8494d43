"""Each column's non-null value counts, computed once per batch: `data check`
hands the same `ValueCounts` to the validation (the category and label checks
ask which values occur) and to the drift report (categorical tests count them),
so that a text column is counted once, not once per check."""

from __future__ import annotations

from typing import Any

import pandas as pd


class ValueCounts:
    """`frame[name].value_counts(dropna=True, sort=False)`, kept per column name."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame
        self._counted: dict[Any, pd.Series] = {}

    def __call__(self, name: Any) -> pd.Series:
        if name not in self._counted:
            self._counted[name] = self._frame[name].value_counts(dropna=True, sort=False)
        return self._counted[name]

    def present(self, name: Any, series: pd.Series) -> pd.Series | None:
        """The counts of the values present in `series` (this frame's column `name`),
        indexed by each value as text, or None where a value's text is not its
        own (only text columns qualify: there `astype(str)` changes nothing)."""
        if not isinstance(series.dtype, pd.StringDtype):
            return None
        counted = self(name)
        return counted[counted > 0]
