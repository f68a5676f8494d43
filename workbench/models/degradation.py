"""Has the serving model degraded on a labelled batch? Only when its primary
metric on the batch falls outside a noise band around what it was expected to
score.

The expected score (the baseline) and its spread come from, in order:

1. cross-validation (`[train] cv`): the run's `cv_<metric>_mean` and the
   standard deviation of the fold scores, `cv_<metric>_std`;
2. else the hold-out: the model's recorded hold-out metric, and the standard
   deviation of that metric over a seeded bootstrap of the hold-out rows;
3. else (no hold-out kept) the recorded metric with no spread of its own.

The batch's own sampling noise is the standard deviation of the metric over a
bootstrap of the batch rows. The band is

    baseline ± BAND_Z · sqrt(baseline_spread² + batch_spread²)

and the model is "degraded" only when the batch score lies outside it on the
worse side (above it for a lower-is-better metric such as rmse, below it for a
higher-is-better one such as roc_auc). A batch outside on the better side is
"improved", never an alert.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.models.evaluation import Predictions, Resamples, bounded, metric_samples

BAND_Z = 1.96  # the band's half-width in standard errors (two-sided 95 %)


def _bootstrap_std(metric: str, predictions: Predictions) -> float | None:
    if len(predictions) < 2:
        return None
    [predictions] = bounded(predictions)
    samples = metric_samples(metric, predictions, Resamples(len(predictions)))
    samples = samples[np.isfinite(samples)]
    return float(np.std(samples)) if samples.size > 1 else None


def baseline(version: Any, metric: str) -> dict[str, Any]:
    """What `version` was expected to score on `metric`: {"value", "spread",
    "source" ("cv", "holdout-bootstrap" or "holdout"), "description"}."""
    from workbench.models.gate import _holdout_frame, _predictions

    mean = version.metrics.get(f"cv_{metric}_mean")
    std = version.metrics.get(f"cv_{metric}_std")
    if _finite(mean) and _finite(std):
        return {
            "value": mean,
            "spread": std,
            "source": "cv",
            "description": f"cross-validated {mean:.4g} ± {std:.4g}",
        }
    recorded = version.metrics.get(metric)
    if not _finite(recorded):
        raise WorkbenchError(f"{version.ref} recorded no {metric!r} score")
    try:
        frame = _holdout_frame(version)
        target = version.schema["target"]["name"]
        spread = _bootstrap_std(metric, _predictions(version, frame, target))
    except (WorkbenchError, KeyError, ValueError):
        spread = None
    if spread is None:
        return {
            "value": recorded,
            "spread": 0.0,
            "source": "holdout",
            "description": f"hold-out {recorded:.4g}, no spread known",
        }
    return {
        "value": recorded,
        "spread": spread,
        "source": "holdout-bootstrap",
        "description": f"hold-out {recorded:.4g} ± {spread:.4g} by bootstrap",
    }


def assess(
    version: Any,
    metric: str,
    batch_score: float,
    batch: Predictions,
    expected: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The band, the verdict and a message for a batch scored `batch_score`;
    `expected` is `baseline(version, metric)` when the caller has it (cached)."""
    from workbench.core.metric_rules import lower_is_better

    expected = expected if expected is not None else baseline(version, metric)
    batch_spread = _bootstrap_std(metric, batch) or 0.0
    half = BAND_Z * math.sqrt(expected["spread"] ** 2 + batch_spread**2)
    low, high = expected["value"] - half, expected["value"] + half
    lower = lower_is_better(metric)
    worse = batch_score > high if lower else batch_score < low
    better = batch_score < low if lower else batch_score > high
    base = expected["value"]
    verb = "rose" if batch_score > base else "fell" if batch_score < base else "stayed"
    band = f"band {low:.4g}–{high:.4g}"
    if worse:
        verdict = "degraded"
        message = (
            f"{metric} {verb} to {batch_score:.4g} from {base:.4g} ({band},"
            f" {expected['description']})"
        )
    else:
        verdict = "improved" if better else "within"
        where = "better than the band" if better else "within the band"
        message = (
            f"{metric} {verb} to {batch_score:.4g} from {base:.4g}, {where}"
            f" {low:.4g}–{high:.4g} ({expected['description']})"
        )
    return {
        "degraded": bool(worse),
        "verdict": verdict,
        "baseline": base,
        "baseline_spread": expected["spread"],
        "baseline_source": expected["source"],
        "batch_spread": batch_spread,
        "band": [low, high],
        "band_z": BAND_Z,
        "direction": "lower-is-better" if lower else "higher-is-better",
        "message": message,
    }


def performance_on(store: Any, project: str, frame: Any, config: Any) -> dict[str, Any]:
    """The serving model's (the champion, else the newest version) primary metric on
    a labelled batch, next to its hold-out metric from training and the noise band
    it is judged against (`assess`); says why when it cannot be computed."""
    from workbench.models.evaluation import predict_on
    from workbench.models.gate import _scores
    from workbench.models.registry import load_model, resolve

    if config.target not in frame.columns or frame[config.target].isna().all():
        return {"available": False, "reason": "the batch has no labels"}
    try:
        version = resolve(store, project)
        model = load_model(version)
    except WorkbenchError:
        return {"available": False, "reason": "no model version yet"}
    metric = config.primary_metric(version.task)
    labelled = frame[frame[config.target].notna()]
    try:
        predictions = predict_on(model, labelled, config.target)
        scores = _scores(version, predictions)
    except ValueError as exc:  # e.g. a label the model never saw
        return {"available": False, "reason": f"cannot score the batch: {exc}"}
    batch, training = scores.get(metric), version.metrics.get(metric)
    result: dict[str, Any] = {
        "available": True,
        "run": version.run_id,
        "model": version.ref,
        "metric": metric,
        "training": training,
        "batch": batch,
        "rows": len(labelled),
        "degraded": None,
    }
    if _finite(batch):
        try:
            result.update(assess(version, metric, batch, predictions))
        except WorkbenchError as exc:
            result["message"] = f"{metric} {batch:.4g} on this batch; no baseline: {exc.message}"
    return result


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def check_drift(store: Any, project: str, file: Path) -> dict[str, Any]:
    """`workbench data drift`: drift of `file` against the project's reference
    (`workbench.data.checks.drift`), with the serving model's primary metric on
    the batch when it has labels (`performance_on`), stored as one report."""
    from workbench.data.checks import drift

    return drift(store, project, file, performance=performance_on)
