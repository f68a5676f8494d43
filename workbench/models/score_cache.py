"""A model's metrics on a hold-out, kept between commands.

`model list` and the Models screen score every version on one evaluation set,
which means loading every model and importing its framework (over a second of
CPU for LightGBM before the first prediction). The result depends only on the
bytes of the model, its feature schema and the hold-out, and on the scoring code,
so it is kept in the cache folder under a hash of those: a listing that has
seen the same files before loads nothing. The hashes are of the files as they
are now, so a changed (or tampered) model or hold-out is scored afresh. Only
built-in frameworks are cached: a plugin's predictions depend on its code too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.core.files import atomic_write_text, sha256_file
from workbench.core.version import __version__

FORMAT = 1
CACHED_FRAMEWORKS = ("lightgbm", "sklearn")


def key(schema: dict[str, Any], model_file: Path, holdout_sha256: str) -> str | None:
    """The cache key of `model_file` scored on a hold-out, or None when it cannot be cached."""
    if schema.get("framework") not in CACHED_FRAMEWORKS:
        return None
    try:
        model_sha256 = sha256_file(model_file)
    except OSError:
        return None
    parts = [
        str(FORMAT),
        __version__,
        model_sha256,
        hashlib.sha256(json.dumps(schema, sort_keys=True, default=str).encode()).hexdigest(),
        holdout_sha256,
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _path(cache_key: str) -> Path:
    return paths.cache_dir() / "scores" / f"{cache_key}.json"


def get(cache_key: str | None) -> dict[str, float] | None:
    """The metrics kept under `cache_key`, or None (not kept, unreadable, or not
    the shape written here)."""
    if cache_key is None:
        return None
    try:
        metrics = json.loads(_path(cache_key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or not all(
        isinstance(k, str) and isinstance(v, float | int) and not isinstance(v, bool)
        for k, v in metrics.items()
    ):
        return None
    return {k: float(v) for k, v in metrics.items()}


def put(cache_key: str | None, metrics: dict[str, float]) -> None:
    """Best effort: a cache that cannot be written is filled again next time.
    Metrics that are not finite numbers (a NaN roc_auc, say) are not kept."""
    if cache_key is None:
        return
    try:
        shown = {str(k): float(v) for k, v in metrics.items()}
    except (TypeError, ValueError):
        return
    if not all(math.isfinite(v) for v in shown.values()):
        return
    with contextlib.suppress(OSError):
        _path(cache_key).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(_path(cache_key), json.dumps(shown))
