"""How many threads a fit may use.

OpenMP and BLAS thread pools (LightGBM, scikit-learn's histogram boosting,
NumPy's linear algebra) start one thread per core, and those threads spin while
they wait for each other. On a small table each boosting round is far too short
to share, so the threads mostly wait: on a busy two-core machine a 240-row,
150-round LightGBM fit took 2–5 s of CPU on two threads and 0.06 s on one, and
a histogram boosting fit 9 s against 0.1 s. A small table therefore fits on one
thread, unless the params choose a thread count themselves; a large one keeps
the libraries' own default (every core).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

SMALL_TABLE_ROWS = 10_000  # below this many training rows, one thread is faster
# Every name under which LightGBM, XGBoost, CatBoost or scikit-learn take a thread count.
THREAD_PARAMS = frozenset(
    {"n_jobs", "num_threads", "num_thread", "nthread", "nthreads", "thread_count"}
)


def fit_threads(rows: int, params: Mapping[str, Any]) -> int | None:
    """1 for a small table; None (the libraries' default) for a large one or
    when the params name a thread count."""
    if THREAD_PARAMS & set(params):
        return None
    return 1 if rows < SMALL_TABLE_ROWS else None


@contextlib.contextmanager
def limited(threads: int | None) -> Iterator[None]:
    """The native thread pools (OpenMP, BLAS) capped at `threads` inside the block."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield
