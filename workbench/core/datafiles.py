"""Which files in a watched folder are data: one rule for the watcher's events
and the pipeline's rescan.

A data file's name ends in one of the data suffixes (`.csv`, `.csv.gz`,
`.parquet`, `.pq`), compared case-insensitively (`BATCH.CSV` is data, as
`[data] train` accepts it); hidden files (a leading `.`) and partial downloads
or editor temporaries (`.tmp`, `.part`, `.crdownload`, a trailing `~`, in any
case) are not. It is a leaf: `[data] train` in workbench.toml accepts the same suffixes.
"""

from __future__ import annotations

import os

# The suffixes of a data file; `[data] train` in workbench.toml accepts the same ones.
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")

TEMP_SUFFIXES = (".tmp", ".part", ".crdownload", "~")


def is_data_file(path: str | os.PathLike[str]) -> bool:
    """Whether a file is data by its name (a path or a bare name)."""
    name = os.path.basename(os.fspath(path))
    lower = name.lower()
    return (
        not name.startswith(".")
        and not lower.endswith(TEMP_SUFFIXES)
        and lower.endswith(DATA_SUFFIXES)
    )
