"""What a model version predicted on its own hold-out: the reference that served
predictions are compared with for prediction drift.

The hold-out is the one the version recorded at training; its predictions are
summarised with `reference_profile`, the same profile input drift uses, over
the columns the log has: `prediction` (the class as text, or the number for a
regressor) and `proba:<class>` (a binary classifier's positive class only, as
the other is its complement). The profile is kept in the store folder's cache
(`cache/prediction-profiles/`), keyed by the model's and the hold-out's
SHA-256: computing it means loading the model and predicting the hold-out.
So is the degradation check's baseline (`expected_score`: the hold-out score's
bootstrap spread), which needs the same predictions: `monitor` then loads no
model at all once both are cached.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from workbench.core import paths
from workbench.core.errors import WorkbenchError
from workbench.core.files import atomic_write_text
from workbench.monitor.log import PROBA_PREFIX


def prediction_columns(classes: list[Any] | None) -> list[str]:
    """The log's columns that prediction drift compares."""
    if not classes:
        return ["prediction"]
    shown = classes[-1:] if len(classes) == 2 else classes
    return ["prediction", *(f"{PROBA_PREFIX}{c}" for c in shown)]


def prediction_profile(version: Any) -> dict[str, Any]:
    """The profile of `version`'s predictions on its hold-out (cached); a
    WorkbenchError saying why when there is none to compare with."""
    from workbench.data.drift import PROFILE_VERSION

    if version.holdout_sha256 is None:
        raise WorkbenchError(f"{version.ref} kept no hold-out to compare predictions with")
    cache = (
        paths.home()
        / "cache"
        / "prediction-profiles"
        / f"{version.model_sha256}-{version.holdout_sha256}.v{PROFILE_VERSION}.json"
    )
    with contextlib.suppress(OSError, ValueError, RecursionError):
        found = json.loads(cache.read_bytes())
        if isinstance(found, dict) and found.get("version") == PROFILE_VERSION:
            return found
    profile = _compute(version)
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps(profile, separators=(",", ":")))
    return profile


BASELINE_FORMAT = 1


def expected_score(version: Any, metric: str) -> dict[str, Any]:
    """`degradation.baseline(version, metric)`, kept in the same cache as the
    prediction profile (a version's model, hold-out and scores never change)."""
    from workbench.models.degradation import baseline

    if version.holdout_sha256 is None:
        return baseline(version, metric)
    cache = (
        paths.home()
        / "cache"
        / "prediction-profiles"
        / f"{version.model_sha256}-{version.holdout_sha256}.baseline.v{BASELINE_FORMAT}.json"
    )
    stored: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, RecursionError):
        found = json.loads(cache.read_bytes())
        if isinstance(found, dict):
            stored = found
    if isinstance(stored.get(metric), dict):
        return stored[metric]
    expected = baseline(version, metric)
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps({**stored, metric: expected}, separators=(",", ":")))
    return expected


def _compute(version: Any) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from workbench.data.drift import reference_profile
    from workbench.models.gate import _holdout_frame, _predictions

    try:
        target = version.schema["target"]["name"]
        predictions = _predictions(version, _holdout_frame(version), target)
    except (KeyError, ValueError, OSError) as exc:
        raise WorkbenchError(f"cannot predict {version.ref}'s hold-out: {exc}") from None
    classes = predictions.classes
    frame = pd.DataFrame(
        {
            "prediction": [str(v) for v in np.asarray(predictions.pred).tolist()]
            if classes
            else np.asarray(predictions.pred, dtype=float)
        }
    )
    if classes and predictions.proba is not None:
        matrix = np.asarray(predictions.proba, dtype=float)
        for name in prediction_columns(classes)[1:]:
            frame[name] = matrix[:, [f"{PROBA_PREFIX}{c}" for c in classes].index(name)]
    return reference_profile(frame)
