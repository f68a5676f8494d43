"""The model report: everything a person needs to judge one model version,
computed once into a typed record (`ModelReport`) that the HTML renderer
(`report_html`), the TUI's Report screen and `model report --json` all show, so
the three never disagree on a number.

What it holds: the hold-out metrics with bootstrap intervals (the promotion
gate's own resampling, `evaluation.py`), feature importance (the model's gain
where it has one, and permutation importance on the hold-out), for
classification the confusion matrix, ROC and precision-recall curves (one
versus rest for more than two classes) and a calibration curve, for regression
the residuals against the prediction and by feature, the training data's
profile (the drift reference profile of `data add`), the lineage (data
versions, run, params, environment) and the gate's decisions about the version.

A section that cannot be computed (no hold-out kept, a single class in the
hold-out, a plugin model without probabilities) is left empty and the report
says why in `notes`: a report is never refused for what a model lacks.

Long arrays are bounded here, not in the renderers: curves keep at most
`MAX_CURVE_POINTS` points, the residual scatter `SCATTER_POINTS`, and the
permutation importance is measured on a seeded `PERMUTATION_ROWS` of the
hold-out; so the report of a million-row hold-out stays small and quick.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.metric_rules import lower_is_better
from workbench.store import Store
from workbench.store import datasets as dataset_records
from workbench.store import models as model_records
from workbench.store import runs as run_records
from workbench.store.models import ModelVersion

REPORT_FORMAT = 1
MAX_CURVE_POINTS = 200
SCATTER_POINTS = 1_500
PERMUTATION_ROWS = 5_000
PERMUTATION_REPEATS = 3
CALIBRATION_BINS = 10
RESIDUAL_FEATURES = 6
RESIDUAL_BINS = 8
PROFILE_TOP = 8
DECISIONS = 20
SEED = 20240917  # the bootstrap's seed: the same version always gives the same report
# Resamples of a hold-out large enough to be bounded to the gate's 20,000 rows: half
# the gate's 1,000. On a 100,000-row hold-out the interval ends moved by at most
# 0.0005 (accuracy, F1, log loss, ROC AUC) and the bootstrap took half the time;
# smaller hold-outs keep the gate's count.
BIG_HOLDOUT_RESAMPLES = 500
# The environment entries a report shows (the rest is in `run show --json`).
ENVIRONMENT_KEYS = ("python", "platform", "hostname", "cpu", "gpus", "libraries", "git", "seeds")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class MetricEstimate:
    """A hold-out metric and its bootstrap interval (None, with `why`, when the
    rows cannot give one)."""

    name: str
    value: float | None
    low: float | None
    high: float | None
    primary: bool = False
    why: str | None = None


@dataclass(frozen=True, slots=True)
class Importance:
    """One feature's importance: the model's gain share (None when the model has
    no gain) and the permutation importance: how much the metric worsens when the
    feature's values are shuffled (mean and spread over the repeats)."""

    feature: str
    gain: float | None
    permutation: float | None
    permutation_std: float | None


@dataclass(frozen=True, slots=True)
class Curve:
    """One line of a chart: `x` and `y` of equal length, and its area (AUC, average
    precision) where the chart has one."""

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    area: float | None = None


@dataclass(frozen=True, slots=True)
class Chart:
    """The curves of one chart (ROC, PR, calibration) and why some are missing."""

    kind: str
    title: str
    x_label: str
    y_label: str
    curves: tuple[Curve, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Confusion:
    """Counts of (true label, predicted label): rows are truth, columns predictions."""

    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class Bin:
    """A slice of a feature's values and the residuals of the rows in it."""

    label: str
    rows: int
    mean_residual: float
    mean_abs_residual: float


@dataclass(frozen=True, slots=True)
class FeatureResiduals:
    feature: str
    kind: str
    bins: tuple[Bin, ...]


@dataclass(frozen=True, slots=True)
class Residuals:
    """Regression: residuals (truth minus prediction) against the prediction (a
    seeded sample of points) and by feature (binned)."""

    predicted: tuple[float, ...]
    residual: tuple[float, ...]
    mean: float
    std: float
    by_feature: tuple[FeatureResiduals, ...]


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    name: str
    kind: str
    dtype: str
    count: int
    nulls: int
    unique: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    histogram: tuple[int, ...] = ()  # equal-frequency bins: counts
    edges: tuple[float, ...] = ()
    top: tuple[tuple[str, int], ...] = ()  # categorical: most frequent values


@dataclass(frozen=True, slots=True)
class DataProfile:
    """The profile of the data the model learned from (or, when the run recorded
    no data version, of its hold-out, and `source` says so)."""

    source: str
    rows: int
    columns: tuple[ColumnProfile, ...]


@dataclass(frozen=True, slots=True)
class DataVersionRef:
    sha256: str
    path: str
    rows: int
    role: str | None


@dataclass(frozen=True, slots=True)
class Lineage:
    run_id: int
    run_status: str | None
    trainer: str | None
    started_at: float | None
    ended_at: float | None
    params: dict[str, Any]
    datasets: tuple[DataVersionRef, ...]
    environment: dict[str, Any]
    model_sha256: str
    schema_sha256: str | None
    holdout_sha256: str | None


@dataclass(frozen=True, slots=True)
class GateDecision:
    """A decision of the promotion gate about this version (as challenger or as
    the holder it was compared with)."""

    alias: str
    challenger: int
    champion: int | None
    promoted: bool
    metric: str | None
    challenger_score: float | None
    champion_score: float | None
    method: str | None
    interval_low: float | None
    interval_high: float | None
    reason: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ModelReport:
    ref: str
    project: str
    version: int
    aliases: tuple[str, ...]
    task: str | None
    framework: str
    framework_version: str | None
    target: str | None
    classes: tuple[str, ...] | None
    features: tuple[str, ...]
    primary_metric: str | None
    created_at: float
    generated_at: float
    holdout_rows: int | None
    evaluated_rows: int | None  # rows the bootstrap resampled (bounded)
    resamples: int | None
    confidence: float | None
    metrics: tuple[MetricEstimate, ...] = ()
    importance: tuple[Importance, ...] = ()
    importance_metric: str | None = None
    gain_kind: str | None = None
    permutation_rows: int | None = None
    confusion: Confusion | None = None
    charts: tuple[Chart, ...] = ()
    residuals: Residuals | None = None
    profile: DataProfile | None = None
    lineage: Lineage | None = None
    decisions: tuple[GateDecision, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def chart(self, kind: str) -> Chart | None:
        return next((c for c in self.charts if c.kind == kind), None)

    def document(self) -> dict[str, Any]:
        """The report as `model report --json` prints it: every field, NaN and
        infinities as null, tuples as lists."""
        return {"report_format": REPORT_FORMAT, **_plain(self)}


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------- building


@dataclass
class _Draft:
    """What the builder collects before the record is frozen."""

    notes: list[str] = field(default_factory=list)
    parts: dict[str, Any] = field(default_factory=dict)


def build_report(
    store: Store | None,
    version: ModelVersion,
    *,
    progress: Callable[[str], None] | None = None,
) -> ModelReport:
    """The report of `version`. `store` gives the lineage and the gate's decisions
    (None leaves them out, with a note); `progress(step)` hears each step."""
    say = progress or (lambda step: None)
    started = time.perf_counter()
    draft = _Draft()
    schema = _schema(version, draft)
    target = (schema or {}).get("target", {})
    classes = target.get("classes")
    features = tuple(str(f["name"]) for f in (schema or {}).get("features", []))
    metric = version.metric or _default_metric(version.task)
    if store is not None:
        say("reading the lineage")
        draft.parts["lineage"] = _lineage(store, version)
        draft.parts["decisions"] = _decisions(store, version)
    else:
        draft.notes.append("no store: lineage and the gate's decisions are left out")
    frame = _holdout(version, draft) if schema is not None else None
    if frame is not None and schema is not None:
        _evaluate(version, schema, frame, metric, draft, say)
    say("profiling the training data")
    draft.parts["profile"] = _profile(store, version, frame, draft)
    from workbench.models.evaluation import CONFIDENCE

    evaluated = draft.parts.get("evaluated_rows")
    return ModelReport(
        ref=version.ref,
        project=version.project,
        version=version.version,
        aliases=tuple(version.aliases),
        task=version.task or target.get("task"),
        framework=version.framework,
        framework_version=version.framework_version,
        target=target.get("name"),
        classes=tuple(str(c) for c in classes) if classes is not None else None,
        features=features,
        primary_metric=metric,
        created_at=version.created_at,
        generated_at=time.time(),
        holdout_rows=None if frame is None else len(frame),
        evaluated_rows=evaluated,
        resamples=_resamples(evaluated) if evaluated else None,
        confidence=CONFIDENCE if evaluated else None,
        metrics=tuple(draft.parts.get("metrics", ())),
        importance=tuple(draft.parts.get("importance", ())),
        importance_metric=draft.parts.get("importance_metric"),
        gain_kind=draft.parts.get("gain_kind"),
        permutation_rows=draft.parts.get("permutation_rows"),
        confusion=draft.parts.get("confusion"),
        charts=tuple(draft.parts.get("charts", ())),
        residuals=draft.parts.get("residuals"),
        profile=draft.parts.get("profile"),
        lineage=draft.parts.get("lineage"),
        decisions=tuple(draft.parts.get("decisions", ())),
        notes=tuple(draft.notes),
        seconds=round(time.perf_counter() - started, 3),
    )


def _default_metric(task: str | None) -> str | None:
    return {"classification": "accuracy", "regression": "rmse"}.get(task or "")


def _schema(version: ModelVersion, draft: _Draft) -> dict[str, Any] | None:
    try:
        return version.schema
    except (WorkbenchError, OSError, ValueError) as exc:
        draft.notes.append(_message(exc))
        return None


def _holdout(version: ModelVersion, draft: _Draft) -> Any:
    import pandas as pd

    path = version.holdout_path
    if path is None or not path.exists():
        draft.notes.append(
            f"{version.ref} kept no hold-out rows: no metrics, curves or importance can be shown"
        )
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - a damaged artifact is reported, not raised
        draft.notes.append(f"the hold-out of {version.ref} cannot be read: {exc}")
        return None


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- evaluation


def _evaluate(
    version: ModelVersion,
    schema: dict[str, Any],
    frame: Any,
    metric: str | None,
    draft: _Draft,
    say: Callable[[str], None],
) -> None:
    from workbench.models.evaluation import predict_on
    from workbench.models.registry import load_model

    target = schema["target"]["name"]
    if target not in frame.columns:
        draft.notes.append(f"the hold-out has no target column {target!r}")
        return
    frame = frame[frame[target].notna()]
    if len(frame) == 0:
        draft.notes.append("the hold-out has no labelled rows")
        return
    say(f"predicting {len(frame):,} hold-out rows")
    try:
        model = load_model(version)
        predictions = predict_on(model, frame, target)
    except Exception as exc:  # noqa: BLE001 - whatever stops the model, the report says it
        draft.notes.append(f"the model cannot predict its hold-out: {_message(exc)}")
        return
    classification = predictions.classes is not None
    say("bootstrapping the metrics")
    draft.parts["metrics"] = _metrics(predictions, metric, draft)
    say("measuring feature importance")
    _importance(model, schema, frame, target, predictions, metric, draft)
    if classification:
        say("drawing the curves")
        _classification(predictions, draft)
    else:
        say("binning the residuals")
        _residuals(frame, schema, predictions, draft)


def _scores(predictions: Any) -> dict[str, float]:
    """The trainers' own metrics (scikit-learn's), as the gate computes them."""
    from workbench.trainers.metrics import classification_metrics, regression_metrics

    if predictions.classes is not None:
        return classification_metrics(
            predictions.truth, predictions.pred, predictions.proba, list(predictions.classes)
        )
    return regression_metrics(predictions.truth, predictions.pred)


def _resamples(rows: int) -> int:
    """The bootstrap resamples of `rows` evaluated rows (`BIG_HOLDOUT_RESAMPLES`)."""
    from workbench.models.evaluation import MAX_ROWS, RESAMPLES

    return BIG_HOLDOUT_RESAMPLES if rows >= MAX_ROWS else RESAMPLES


def _metrics(predictions: Any, primary: str | None, draft: _Draft) -> list[MetricEstimate]:
    """Each metric on all the rows, and its percentile interval from the gate's
    bootstrap (the same seeded resamples, bounded to the same rows)."""
    from workbench.models.evaluation import (
        Resamples,
        bounded,
        metric_samples,
        percentile_interval,
    )

    points = _scores(predictions)
    if primary and primary not in points:
        points[primary] = float("nan")
    (sample,) = bounded(predictions)
    draft.parts["evaluated_rows"] = len(sample)
    names = sorted(points, key=lambda k: (k != primary, k))
    why: dict[str, str] = {}
    for name in names:
        if not math.isfinite(points[name]):
            why[name] = f"{name} is undefined on these rows"
        elif len(sample) < 2:
            why[name] = f"{len(sample)} row(s) cannot be resampled"
    resampled = [n for n in names if n not in why]
    samples: dict[str, list[np.ndarray]] = {n: [] for n in resampled}
    if resampled:
        # The resamples are drawn once, block by block, and every metric is computed
        # on each block: the same weights as `metric_samples` draws for each metric.
        for block in Resamples(len(sample), _resamples(len(sample))).blocks():
            for name in list(samples):
                try:
                    samples[name].append(metric_samples(name, sample, block))
                except (ValueError, WorkbenchError) as exc:
                    why[name] = _message(exc)
                    del samples[name]
    out = []
    for name in names:
        value: float | None = points[name] if math.isfinite(points[name]) else None
        low = high = None
        if name in samples:
            drawn = np.concatenate(samples[name])
            if np.isfinite(drawn).all():
                low, high = percentile_interval(drawn)
            else:
                why[name] = f"{name} is undefined on some resamples of {len(sample)} rows"
        out.append(MetricEstimate(name, value, low, high, name == primary, why.get(name)))
    return out


# --------------------------------------------------------------------------- importance


def _gain(model: Any, features: list[str]) -> tuple[list[float] | None, str | None]:
    """The model's own importance, normalised to sum to 1: LightGBM's total split
    gain, or a scikit-learn tree ensemble's impurity decrease."""
    native: Any = getattr(model, "model", None)
    values, kind = None, None
    if model.framework == "lightgbm" and hasattr(native, "feature_importance"):
        values, kind = native.feature_importance(importance_type="gain"), "split gain (LightGBM)"
    elif model.framework == "sklearn":
        estimator = native.steps[-1][1] if hasattr(native, "steps") else native
        found = getattr(estimator, "feature_importances_", None)
        if found is not None:
            values, kind = found, "impurity decrease (scikit-learn)"
    if values is None:
        return None, None
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(features),) or not np.isfinite(values).all():
        return None, None  # e.g. a pipeline's encoded columns: not one value per feature
    total = values.sum()
    return (values / total if total > 0 else values).tolist(), kind


def _score(metric: str, predictions: Any) -> float:
    """`metric` on all the rows (NaN where it is undefined)."""
    from workbench.models.evaluation import full_score

    try:
        return full_score(metric, predictions)
    except (ValueError, WorkbenchError):
        return float("nan")


def _importance(
    model: Any,
    schema: dict[str, Any],
    frame: Any,
    target: str,
    predictions: Any,
    metric: str | None,
    draft: _Draft,
) -> None:
    from workbench.models.evaluation import predict_on

    features = [str(f["name"]) for f in schema["features"]]
    gains, kind = _gain(model, features)
    draft.parts["gain_kind"] = kind
    rng = np.random.default_rng(SEED)
    rows = frame
    if len(frame) > PERMUTATION_ROWS:
        rows = frame.iloc[np.sort(rng.choice(len(frame), PERMUTATION_ROWS, replace=False))]
    rows = rows.reset_index(drop=True)
    base = predict_on(model, rows, target)
    # The gate's vectorised metrics: one numpy pass per shuffled copy, not scikit-learn's
    # input checks thirty times over.
    chosen = metric if metric and math.isfinite(_score(metric, base)) else None
    if chosen is None:
        chosen = "accuracy" if predictions.classes is not None else "rmse"
        if metric:
            draft.notes.append(
                f"permutation importance uses {chosen}: {metric} is undefined on the hold-out"
            )
    sign = -1.0 if lower_is_better(chosen) else 1.0
    baseline = _score(chosen, base)
    permuted: dict[str, list[float]] = {f: [] for f in features}
    shuffles = [
        (feature, rng.permutation(len(rows)))
        for _ in range(PERMUTATION_REPEATS)
        for feature in features
        if feature in rows.columns
    ]
    # Every shuffled copy in one table, predicted at once: one call into the model
    # instead of one per feature and repeat (the per-call cost dominates small calls).
    copies = []
    for feature, order in shuffles:
        copy = rows.copy(deep=False)
        copy[feature] = rows[feature].to_numpy()[order]
        copies.append(copy)
    if copies:
        import pandas as pd

        stacked = pd.concat(copies, ignore_index=True)
        try:
            everything = predict_on(model, stacked, target)
        except Exception as exc:  # noqa: BLE001 - the importance is then unknown, and said so
            draft.notes.append(f"permutation importance failed: {_message(exc)}")
            everything = None
        n = len(rows)
        for i, (feature, _) in enumerate(shuffles):
            if everything is None:
                break
            part = everything.take(np.arange(i * n, (i + 1) * n))
            score = _score(chosen, part)
            if math.isfinite(score):
                permuted[feature].append(sign * (baseline - score))
    out = []
    for i, feature in enumerate(features):
        drops = permuted[feature]
        out.append(
            Importance(
                feature=feature,
                gain=gains[i] if gains is not None else None,
                permutation=float(np.mean(drops)) if drops else None,
                permutation_std=float(np.std(drops)) if drops else None,
            )
        )
    out.sort(key=lambda imp: -(imp.permutation if imp.permutation is not None else -math.inf))
    draft.parts.update(importance=out, importance_metric=chosen, permutation_rows=len(rows))


# --------------------------------------------------------------------------- classification


def _thin(x: np.ndarray, y: np.ndarray, limit: int = MAX_CURVE_POINTS) -> tuple[tuple, tuple]:
    """At most `limit` points of a curve, evenly spread, its ends kept."""
    if len(x) > limit:
        keep = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(np.int64))
        x, y = x[keep], y[keep]
    return tuple(float(v) for v in x), tuple(float(v) for v in y)


def _classification(predictions: Any, draft: _Draft) -> None:
    import pandas as pd

    classes = list(predictions.classes)
    truth = predictions.truth
    # Labels as text, counted through category codes (a bincount, not a sort of strings).
    truth_text = pd.Series(truth).astype(str)
    extra = sorted(set(truth_text.unique().tolist()) - {str(c) for c in classes})
    labels = [str(c) for c in classes] + extra
    rows_ = pd.Categorical(truth_text, categories=labels).codes.astype(np.int64)
    cols_ = pd.Categorical(pd.Series(predictions.pred).astype(str), categories=labels).codes
    cols_ = cols_.astype(np.int64)
    known = (rows_ >= 0) & (cols_ >= 0)
    size = len(labels)
    matrix = np.bincount(rows_[known] * size + cols_[known], minlength=size * size)
    draft.parts["confusion"] = Confusion(
        tuple(labels), tuple(tuple(int(v) for v in row) for row in matrix.reshape(size, size))
    )
    if extra:
        draft.notes.append(f"the hold-out has label(s) the model never saw: {', '.join(extra[:5])}")
    roc = Chart("roc", "ROC curve", "false positive rate", "true positive rate")
    pr = Chart("pr", "Precision-recall curve", "recall", "precision")
    calibration = Chart(
        "calibration", "Calibration", "mean predicted probability", "fraction positive"
    )
    if predictions.proba is None:
        lacking = "the model gives no probabilities, so there are no ROC, PR or calibration curves"
        draft.parts["charts"] = [
            Chart(c.kind, c.title, c.x_label, c.y_label, note=lacking)
            for c in (roc, pr, calibration)
        ]
        return
    proba = np.asarray(predictions.proba, dtype=np.float64)
    # Binary: the second class is the positive one, as the trainers' metrics; else one vs rest.
    targets = [(1, classes[1])] if len(classes) == 2 else list(enumerate(classes))
    curves: dict[str, list[Curve]] = {"roc": [], "pr": [], "calibration": []}
    missing: list[str] = []
    for k, label in targets:
        positive = truth == label
        score = proba[:, k]
        name = str(label) if len(classes) > 2 else f"{label} (positive)"
        curves["calibration"].append(_calibration(positive, score, name))
        if positive.all() or not positive.any():
            missing.append(str(label))
            continue
        curves["roc"].append(_roc(positive, score, name))
        curves["pr"].append(_pr(positive, score, name))
    why = None
    if missing:
        present = sorted({str(t) for t in truth.tolist()})
        why = (
            f"no curve for {', '.join(missing)}: a ROC or PR curve needs both positive and "
            f"negative rows, and the hold-out's labels are only {', '.join(present[:5])}"
        )
        draft.notes.append(why)
    draft.parts["charts"] = [
        Chart(roc.kind, roc.title, roc.x_label, roc.y_label, tuple(curves["roc"]), why),
        Chart(pr.kind, pr.title, pr.x_label, pr.y_label, tuple(curves["pr"]), why),
        Chart(
            calibration.kind,
            calibration.title,
            calibration.x_label,
            calibration.y_label,
            tuple(curves["calibration"]),
        ),
    ]


def _roc(positive: np.ndarray, score: np.ndarray, name: str) -> Curve:
    from sklearn.metrics import auc, roc_curve

    fpr, tpr, _ = roc_curve(positive, score)
    x, y = _thin(fpr, tpr)
    return Curve(name, x, y, float(auc(fpr, tpr)))


def _pr(positive: np.ndarray, score: np.ndarray, name: str) -> Curve:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(positive, score)
    x, y = _thin(recall[::-1], precision[::-1])
    return Curve(name, x, y, float(average_precision_score(positive, score)))


def _calibration(positive: np.ndarray, score: np.ndarray, name: str) -> Curve:
    """Mean predicted probability against the fraction of positives, in equal-width
    bins of the probability; empty bins are left out."""
    index = np.minimum((score * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    counts = np.bincount(index, minlength=CALIBRATION_BINS)
    mean_score = np.bincount(index, weights=score, minlength=CALIBRATION_BINS)
    hits = np.bincount(index, weights=positive.astype(np.float64), minlength=CALIBRATION_BINS)
    kept = counts > 0
    return Curve(
        name,
        tuple(float(v) for v in mean_score[kept] / counts[kept]),
        tuple(float(v) for v in hits[kept] / counts[kept]),
    )


# --------------------------------------------------------------------------- regression


def _residuals(frame: Any, schema: dict[str, Any], predictions: Any, draft: _Draft) -> None:
    truth = predictions.truth.astype(np.float64)
    pred = predictions.pred.astype(np.float64)
    residual = truth - pred
    finite = np.isfinite(residual)
    rng = np.random.default_rng(SEED)
    shown = np.flatnonzero(finite)
    if len(shown) > SCATTER_POINTS:
        shown = np.sort(rng.choice(shown, SCATTER_POINTS, replace=False))
    kinds = {str(f["name"]): f.get("kind", "numeric") for f in schema["features"]}
    ranked = [i.feature for i in draft.parts.get("importance", [])] or list(kinds)
    by_feature = []
    for name in ranked[:RESIDUAL_FEATURES]:
        if name in frame.columns:
            column = frame[name].to_numpy()[finite]
            bins = _bins(column, residual[finite], kinds.get(name, "numeric"))
            by_feature.append(FeatureResiduals(name, kinds.get(name, "numeric"), bins))
    kept = residual[finite]
    draft.parts["residuals"] = Residuals(
        predicted=tuple(float(v) for v in pred[shown]),
        residual=tuple(float(v) for v in residual[shown]),
        mean=float(kept.mean()) if kept.size else float("nan"),
        std=float(kept.std()) if kept.size else float("nan"),
        by_feature=tuple(by_feature),
    )


def _bins(values: np.ndarray, residual: np.ndarray, kind: str) -> tuple[Bin, ...]:
    """Numeric: equal-frequency bins of the feature; categorical: its most
    frequent values; missing values as a bin of their own."""
    import pandas as pd

    series = pd.Series(values)
    missing = series.isna().to_numpy()
    groups: list[tuple[str, np.ndarray]] = []
    numeric = kind != "categorical" and pd.api.types.is_numeric_dtype(
        pd.to_numeric(series[~missing], errors="coerce").dropna()
    )
    if numeric and kind != "categorical":
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        present = np.isfinite(numbers)
        if present.any():
            edges = np.unique(np.quantile(numbers[present], np.linspace(0, 1, RESIDUAL_BINS + 1)))
            if edges.size == 1:
                groups.append((f"{edges[0]:.4g}", present))
            else:
                index = np.clip(
                    np.searchsorted(edges, numbers, side="right") - 1, 0, edges.size - 2
                )
                for b in range(edges.size - 1):
                    groups.append((f"{edges[b]:.4g}–{edges[b + 1]:.4g}", present & (index == b)))
        missing = ~present
    else:
        text = series.astype(str).to_numpy()
        counted = pd.Series(text[~missing]).value_counts()
        for value in counted.index[:RESIDUAL_BINS].tolist():
            groups.append((str(value), ~missing & (text == value)))
    if missing.any():
        groups.append(("(missing)", missing))
    return tuple(
        Bin(
            label,
            int(mask.sum()),
            float(residual[mask].mean()),
            float(np.abs(residual[mask]).mean()),
        )
        for label, mask in groups
        if mask.any()
    )


# --------------------------------------------------------------------------- profile, lineage


def _profile(
    store: Store | None, version: ModelVersion, frame: Any, draft: _Draft
) -> DataProfile | None:
    from workbench.data import profiles

    training = []
    if store is not None:
        training = [
            d for d in dataset_records.for_run(store, version.run_id) if d.role != "holdout"
        ]
    for data in training:
        found = profiles.load(data.sha256)
        if found is None and Path(data.path).is_file():
            try:
                found = profiles.profile_for(data.sha256, Path(data.path))
            except Exception as exc:  # noqa: BLE001 - reported; the hold-out stands in
                draft.notes.append(f"the training data {data.path} cannot be profiled: {exc}")
        if found is not None:
            source = f"training data {Path(data.path).name} ({data.sha256[:12]}, {data.role})"
            return _from_profile(found, source)
    if frame is None:
        return None
    from workbench.data.drift import reference_profile

    why = "the run recorded no training data version" if not training else "its file is gone"
    draft.notes.append(f"the data profile is of the hold-out: {why}")
    try:
        return _from_profile(reference_profile(frame), "the hold-out rows")
    except Exception as exc:  # noqa: BLE001 - the rest of the report stands
        draft.notes.append(f"the hold-out cannot be profiled: {exc}")
        return None


def _from_profile(profile: dict[str, Any], source: str) -> DataProfile:
    columns = []
    for name, entry in profile.get("columns", {}).items():
        histogram = entry.get("histogram") or {}
        categories = entry.get("categories") or {}
        top = tuple(
            (str(v), int(c))
            for v, c in list(
                zip(categories.get("values", []), categories.get("counts", []), strict=False)
            )[:PROFILE_TOP]
        )
        columns.append(
            ColumnProfile(
                name=str(name),
                kind=str(entry.get("kind", "")),
                dtype=str(entry.get("dtype", "")),
                count=int(entry.get("n", 0)),
                nulls=int(entry.get("nulls", 0)),
                unique=int(entry.get("n_unique", 0)),
                mean=entry.get("mean"),
                std=entry.get("std"),
                min=entry.get("min"),
                max=entry.get("max"),
                histogram=tuple(int(c) for c in histogram.get("counts", [])),
                edges=tuple(float(e) for e in histogram.get("edges", [])),
                top=top,
            )
        )
    return DataProfile(source, int(profile.get("rows", 0)), tuple(columns))


def _lineage(store: Store, version: ModelVersion) -> Lineage:
    run = run_records.get(store, version.run_id)
    environment: dict[str, Any] = {}
    if run is not None and run.environment:
        try:
            found = json.loads(run.environment)
        except (ValueError, RecursionError):
            found = None
        if isinstance(found, dict):
            environment = {k: found[k] for k in ENVIRONMENT_KEYS if k in found}
    return Lineage(
        run_id=version.run_id,
        run_status=run.status.value if run is not None else None,
        trainer=run.trainer if run is not None else None,
        started_at=run.started_at if run is not None else None,
        ended_at=run.ended_at if run is not None else None,
        params=run_records.params(store, version.run_id),
        datasets=tuple(
            DataVersionRef(d.sha256, d.path, d.rows, d.role)
            for d in dataset_records.for_run(store, version.run_id)
        ),
        environment=environment,
        model_sha256=version.model_sha256,
        schema_sha256=version.schema_sha256,
        holdout_sha256=version.holdout_sha256,
    )


def _decisions(store: Store, version: ModelVersion) -> list[GateDecision]:
    return [
        GateDecision(
            alias=p.alias,
            challenger=p.challenger,
            champion=p.champion,
            promoted=bool(p.promoted),
            metric=p.metric,
            challenger_score=p.challenger_score,
            champion_score=p.champion_score,
            method=p.method,
            interval_low=p.interval_low,
            interval_high=p.interval_high,
            reason=p.reason,
            created_at=p.created_at,
        )
        for p in model_records.promotions(store, version.project_id, 200)
        if version.version in (p.challenger, p.champion)
    ][:DECISIONS]
