"""The promotion gate: a challenger takes an alias (champion by default) when
its primary metric beats the holder's by the project's margin, measured on the
same evaluation data. When the two were scored on different hold-outs, the
holder is scored again on the challenger's.

Two ways to decide (`[automation] gate`):

- "bootstrap" (the default): both models predict the challenger's hold-out
  rows, and a paired bootstrap (`RESAMPLES` seeded resamples of those rows, the
  same resample for both models; a seeded 20,000 of them when there are more)
  gives a `CONFIDENCE` interval of the improvement, challenger over holder. The challenger is promoted only when the
  whole interval clears `margin`: its lower bound is above `margin` for a
  higher-is-better metric (for a lower-is-better one, challenger minus holder
  stays below -`margin`). A gain that the evaluation rows cannot tell from noise
  keeps the holder.
- "point": the two scores are compared as numbers; any gain above `margin`
  promotes.

When the rows cannot be bootstrapped (no hold-out kept, a model the workbench
cannot load, a metric undefined on some resamples) the gate compares points and
says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import UsageError, WorkbenchError
from workbench.core.files import sha256_file
from workbench.models import score_cache
from workbench.models.registry import (
    CHALLENGER,
    CHAMPION,
    ModelVersion,
    alias_target,
    check_alias,
    load_model,
    set_alias,
)
from workbench.store import Store
from workbench.store import models as records

GATES = ("bootstrap", "point")
DEFAULT_GATE = "bootstrap"


@dataclass
class Decision:
    promoted: bool
    alias: str
    challenger: ModelVersion
    champion: ModelVersion | None
    metric: str | None
    challenger_score: float | None
    champion_score: float | None
    margin: float
    rescored: bool
    reason: str
    method: str = DEFAULT_GATE  # "bootstrap" or "point": how the scores were compared
    interval: tuple[float, float] | None = None  # challenger minus champion, CONFIDENCE
    evaluation_rows: int | None = None  # rows both models were scored on

    def document(self) -> dict[str, Any]:
        difference = None
        if self.challenger_score is not None and self.champion_score is not None:
            difference = self.challenger_score - self.champion_score
        return {
            "promoted": self.promoted,
            "alias": self.alias,
            "challenger": self.challenger.version,
            "champion": self.champion.version if self.champion else None,
            "metric": self.metric,
            "challenger_score": self.challenger_score,
            "champion_score": self.champion_score,
            "difference": difference,
            "margin": self.margin,
            "rescored": self.rescored,
            "method": self.method,
            "interval": list(self.interval) if self.interval else None,
            "confidence": _bootstrap()[0] if self.interval else None,
            "resamples": _bootstrap()[1] if self.interval else None,
            "evaluation_rows": self.evaluation_rows,
            "reason": self.reason,
        }


def check_margin(value: Any) -> float:
    """A promotion margin: a number from 0 to MAX_MARGIN, as [automation] margin
    (text is parsed), else UsageError."""
    from workbench.config.project import MAX_MARGIN

    expected = f"expected a number from 0 to {MAX_MARGIN:g}"
    if isinstance(value, bool) or (isinstance(value, str) and "_" in value):
        raise UsageError(f"--margin: {expected}, got {str(value)[:40]!r}")
    try:
        margin = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"--margin: {expected}, got {str(value)[:40]!r}") from None
    if not (math.isfinite(margin) and 0 <= margin <= MAX_MARGIN):
        raise UsageError(f"--margin: {expected}, got {str(value)[:40]!r}")
    return margin


def gate_method(config: Any) -> str:
    """`[automation] gate` of a project's config ("bootstrap" when absent)."""
    raw = getattr(config, "raw", None) or {}
    automation = raw.get("automation", {}) if isinstance(raw, dict) else {}
    value = automation.get("gate", DEFAULT_GATE) if isinstance(automation, dict) else None
    if value not in GATES:
        raise UsageError(
            f"{getattr(config, 'file', 'workbench.toml')}: [automation] gate: expected one of "
            f"{', '.join(repr(g) for g in GATES)}, got {value!r}"
        )
    return value


def evaluate(
    store: Store,
    challenger: ModelVersion,
    alias: str = CHAMPION,
    *,
    config: Any = None,
    margin: float | None = None,
    method: str | None = None,
) -> Decision:
    """Whether `challenger` should take `alias`, and why; changes nothing."""
    from workbench.core.metric_rules import lower_is_better

    if config is None:
        config = _config(store, challenger.project)
    margin = check_margin(config.margin if margin is None else margin)
    method = gate_method(config) if method is None else method
    if method not in GATES:
        raise UsageError(f"unknown gate {method!r}; expected one of {', '.join(GATES)}")
    holder = alias_target(store, challenger.project_id, alias)
    metric = config.primary_metric(challenger.task)

    def decide(promoted: bool, reason: str, **scores: Any) -> Decision:
        return Decision(
            promoted=promoted,
            alias=alias,
            challenger=challenger,
            champion=holder,
            metric=metric,
            challenger_score=scores.get("challenger_score"),
            champion_score=scores.get("champion_score"),
            margin=margin,
            rescored=scores.get("rescored", False),
            reason=reason,
            method=scores.get("method", method),
            interval=scores.get("interval"),
            evaluation_rows=scores.get("evaluation_rows"),
        )

    mine = challenger.metrics.get(metric)
    if holder is None:
        return decide(True, f"no {alias} yet", challenger_score=mine)
    if holder.id == challenger.id:
        already = f"version {challenger.version} is already {alias}"
        return decide(False, already, challenger_score=mine)
    if mine is None:
        return decide(False, f"version {challenger.version} has no {metric!r} score")
    rescored = bool(challenger.holdout_sha256 and challenger.holdout_sha256 != holder.holdout_sha256)
    where = "on the challenger's hold-out" if rescored else "on the same hold-out"
    paired, why_not = None, None
    if method == "bootstrap":
        try:
            paired = paired_bootstrap(holder, challenger, metric)
        except (WorkbenchError, KeyError, ValueError) as exc:
            why_not = exc.message if isinstance(exc, WorkbenchError) else str(exc)
    theirs = holder.metrics.get(metric)
    if rescored:
        try:
            theirs = (
                paired["champion_score"] if paired else score_on_holdout(holder, challenger)[metric]
            )
        except (WorkbenchError, KeyError, ValueError) as exc:
            message = exc.message if isinstance(exc, WorkbenchError) else str(exc)
            return decide(
                False,
                f"cannot score {alias} version {holder.version} on the challenger's hold-out: "
                f"{message}",
                challenger_score=mine,
            )
    if theirs is None:
        return decide(
            True, f"{alias} version {holder.version} has no {metric!r} score", challenger_score=mine
        )
    lower = lower_is_better(metric)
    gain = (theirs - mine) if lower else (mine - theirs)
    scores: dict[str, Any] = {"challenger_score": mine, "champion_score": theirs}
    scores["rescored"] = rescored
    if paired is None:
        note = f" (point comparison: cannot bootstrap, {why_not})" if why_not else ""
        scores["method"] = "point"
        if gain > margin:
            return decide(
                True,
                f"{metric} {mine:.4g} beats {theirs:.4g} by {gain:.4g} (margin {margin:g})"
                f" {where}{note}",
                **scores,
            )
        return decide(
            False,
            f"{metric} {mine:.4g} does not beat {theirs:.4g} by more than {margin:g}"
            f" {where}{note}",
            **scores,
        )
    low, high = paired["interval"]
    promoted, (gain_low, gain_high) = clears_margin(metric, (low, high), margin)
    confidence = _bootstrap()[0]
    scores.update(interval=(low, high), evaluation_rows=paired["rows"])
    spread = (
        f"improvement {gain:+.4g}, {confidence:.0%} interval {gain_low:+.4g} to {gain_high:+.4g}"
        f" (paired bootstrap over {paired['rows']} rows {where})"
    )
    if promoted:
        return decide(
            True,
            f"{metric} {mine:.4g} beats {theirs:.4g}: {spread}, above margin {margin:g}",
            **scores,
        )
    return decide(
        False,
        f"{metric} {mine:.4g} does not beat {theirs:.4g} by more than {margin:g} with"
        f" {confidence:.0%} confidence: {spread}",
        **scores,
    )


def _bootstrap() -> tuple[float, int]:
    """The paired bootstrap's confidence and number of resamples. Imported when used:
    the evaluation module imports numpy, which registering a run's first model (in its
    supervisor) has no need of."""
    from workbench.models.evaluation import CONFIDENCE, RESAMPLES

    return CONFIDENCE, RESAMPLES


def clears_margin(
    metric: str, interval: tuple[float, float], margin: float
) -> tuple[bool, tuple[float, float]]:
    """Whether an interval of challenger minus champion clears `margin` as a
    whole, and the interval of the improvement (sign flipped for a
    lower-is-better metric, so that larger is always better)."""
    from workbench.core.metric_rules import lower_is_better

    low, high = interval
    gain = (-high, -low) if lower_is_better(metric) else (low, high)
    return gain[0] > margin, gain


def paired_interval(metric: str, challenger: Any, champion: Any) -> tuple[float, float]:
    """The CONFIDENCE interval of challenger minus champion on `metric`, from a
    paired bootstrap of two models' `Predictions` on the same rows."""
    import numpy as np

    from workbench.models.evaluation import (
        Resamples,
        bounded,
        metric_samples,
        percentile_interval,
    )

    if len(challenger) != len(champion) or not np.array_equal(challenger.truth, champion.truth):
        raise ValueError("the two models were not scored on the same rows")
    if len(challenger) < 2:
        raise WorkbenchError(f"{len(challenger)} evaluation row(s) cannot be resampled")
    challenger, champion = bounded(challenger, champion)
    weights = Resamples(len(challenger))
    difference = metric_samples(metric, challenger, weights) - metric_samples(
        metric, champion, weights
    )
    if not np.isfinite(difference).all():
        raise WorkbenchError(f"{metric} is undefined on some resamples of {len(challenger)} rows")
    return percentile_interval(difference)


def paired_bootstrap(holder: ModelVersion, challenger: ModelVersion, metric: str) -> dict:
    """Both models on the challenger's hold-out rows, resampled together: the
    holder's score there, and the CONFIDENCE interval of challenger minus holder."""
    frame = _holdout_frame(challenger)
    target = challenger.schema["target"]["name"]
    mine = _predictions(challenger, frame, target)
    theirs = _predictions(holder, frame, target)
    return {
        "interval": paired_interval(metric, mine, theirs),
        "champion_score": _scores(holder, theirs)[metric],
        "rows": len(mine),
    }


def common_scores(versions: list[ModelVersion], metric: str | None) -> dict[str, Any]:
    """Every version scored on one evaluation set: the hold-out of the newest
    version that kept one (rows that, with the hold-out chosen by a hash of each
    row, no version trained on). {"evaluation": {"ref", "holdout_sha256", "rows"}
    or None, "metric", "scores": {version number: {"score", "metrics"} or
    {"error"}}}."""
    evaluation = next(
        (v for v in versions if v.holdout_path is not None and v.holdout_path.exists()), None
    )
    out: dict[str, Any] = {"evaluation": None, "metric": metric, "scores": {}}
    if evaluation is None:
        for version in versions:
            out["scores"][version.version] = {"error": "no version kept a hold-out"}
        return out
    holdout = _Holdout(evaluation)
    out["evaluation"] = {
        "ref": evaluation.ref,
        "holdout_sha256": evaluation.holdout_sha256,
        "rows": holdout.rows(),
    }
    for version in versions:
        try:
            metrics = holdout.scores(version)
        except (WorkbenchError, KeyError, ValueError) as exc:
            message = exc.message if isinstance(exc, WorkbenchError) else str(exc)
            out["scores"][version.version] = {"error": message}
            continue
        out["scores"][version.version] = {
            "score": metrics.get(metric) if metric else None,
            "metrics": metrics,
        }
    return out


def promote(
    store: Store,
    challenger: ModelVersion,
    alias: str = CHAMPION,
    *,
    config: Any = None,
    force: bool = False,
    dry_run: bool = False,
    margin: float | None = None,
    method: str | None = None,
) -> Decision:
    """Judge `challenger` for `alias` and, unless `dry_run`, record the decision
    and move the alias when it passes (or when `force`)."""
    check_alias(alias)
    decision = evaluate(store, challenger, alias, config=config, margin=margin, method=method)
    holder = decision.champion
    if force and not decision.promoted and holder is not None and holder.id != challenger.id:
        decision.promoted = True
        decision.reason = f"forced; the gate said: {decision.reason}"
    if dry_run:
        return decision
    verb = "promoted to" if decision.promoted else "not promoted to"
    records.add_promotion(
        store,
        challenger,
        decision.champion,
        {
            "alias": alias,
            "metric": decision.metric,
            "challenger_score": decision.challenger_score,
            "champion_score": decision.champion_score,
            "margin": decision.margin,
            "rescored": decision.rescored,
            "promoted": decision.promoted,
            "reason": decision.reason,
            "method": decision.method,
            "interval_low": decision.interval[0] if decision.interval else None,
            "interval_high": decision.interval[1] if decision.interval else None,
            "evaluation_rows": decision.evaluation_rows,
        },
        event_kind="model.promoted" if decision.promoted else "model.kept",
        event_message=f"model version {challenger.version} {verb} {alias}: {decision.reason}",
        event_data=decision.document(),
    )
    if decision.promoted:
        challenger = set_alias(store, challenger, alias)
        if alias == CHAMPION:
            # The new champion is nobody's challenger any more.
            records.remove_alias(store, challenger.project_id, CHALLENGER, challenger.id)
            challenger = challenger.with_aliases([a for a in challenger.aliases if a != CHALLENGER])
    elif alias == CHAMPION and decision.champion and decision.champion.id != challenger.id:
        challenger = set_alias(store, challenger, CHALLENGER)
    decision.challenger = challenger  # with its aliases as they now are
    return decision


def score_on_holdout(model: ModelVersion, evaluation: ModelVersion) -> dict[str, float]:
    """`model`'s metrics on `evaluation`'s hold-out rows."""
    return _Holdout(evaluation).scores(model)


class _Holdout:
    """One version's hold-out, read only when a model has to be scored on it:
    scores already in the cache (`score_cache`) need neither the rows nor the model."""

    def __init__(self, evaluation: ModelVersion) -> None:
        self.evaluation = evaluation
        path = evaluation.holdout_path
        if path is None or not path.exists():
            raise WorkbenchError(f"{evaluation.ref} kept no hold-out data")
        self.sha256 = sha256_file(path)  # the file as it is now, not as recorded
        self._frame: Any = None
        self._rows: int | None = None

    def frame(self) -> Any:
        if self._frame is None:
            self._frame = _holdout_frame(self.evaluation)
            self._rows = len(self._frame)
        return self._frame

    def rows(self) -> int:
        if self._rows is None:
            self._rows = _parquet_rows(self.evaluation.holdout_path) or len(self.frame())
        return self._rows

    def scores(self, model: ModelVersion) -> dict[str, float]:
        cache_key = score_cache.key(model.schema, model.model_path, self.sha256)
        metrics = score_cache.get(cache_key)
        if metrics is None:
            target = model.schema["target"]["name"]
            metrics = _scores(model, _predictions(model, self.frame(), target))
            score_cache.put(cache_key, metrics)
        return metrics


def _parquet_rows(path: Any) -> int | None:
    """The row count from a Parquet file's footer (no rows read), or None."""
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError, TypeError, pq.lib.ArrowException):
        return None


def _holdout_frame(evaluation: ModelVersion) -> Any:
    import pandas as pd

    if evaluation.holdout_path is None or not evaluation.holdout_path.exists():
        raise WorkbenchError(f"{evaluation.ref} kept no hold-out data")
    return pd.read_parquet(evaluation.holdout_path)


def _predictions(model: ModelVersion, frame: Any, target: str) -> Any:
    from workbench.models.evaluation import predict_on

    if target not in frame.columns:
        raise WorkbenchError(f"the hold-out has no target column {target!r}")
    return predict_on(load_model(model), frame, target)


def _scores(model: ModelVersion, predictions: Any) -> dict[str, float]:
    """The trainers' own metrics (scikit-learn's) of a model's predictions."""
    from workbench.trainers.metrics import classification_metrics, regression_metrics

    if model.schema["target"].get("task") == "classification":
        return classification_metrics(
            predictions.truth, predictions.pred, predictions.proba, model.schema["target"]["classes"]
        )
    return regression_metrics(predictions.truth, predictions.pred)


def _config(store: Store, project: str) -> Any:
    from workbench.projects import project_config

    return project_config(store, project)[1]
