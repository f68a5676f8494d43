"""`workbench monitor PROJECT`: the prediction log cut into windows, each with its
traffic, errors, latency, input drift, prediction drift and live performance.

A window is a span of time (`30m`, `1h`, `1d`: aligned to UTC multiples of the
span) or a number of logged rows (`5000`: consecutive rows, the last window
the newest, possibly partial). The newest `last` windows that have traffic are
reported, oldest first.

Per window: requests (a request of several rows counts once), rows, errors
(HTTP status >= 400) and the error rate, latency p50 and p99 of the requests;
input drift of the answered rows against the project's training reference,
with the same tests, settings and cached reference profile as `data drift`;
prediction drift of the served outputs against what the serving version
predicted on its hold-out (`reference`); and, for rows whose labels have
arrived (`labels`), the primary metric, and for the newest window its
judgement against the same noise band as the degradation check of `data drift`
(`workbench.models.degradation.assess`; its bootstrap is the costly part, and
only the newest window's verdict counts). Drift is tested on a seeded sample of
at most `MAX_DRIFT_ROWS` rows per window.

The verdict is the newest window's: "drift" when its inputs or its
predictions drift, "degraded" when its labelled rows score outside the band
on the worse side.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import UsageError, WorkbenchError
from workbench.monitor.labels import read_labels
from workbench.monitor.log import INPUT_PREFIX, PROBA_PREFIX, log_folder, read_log
from workbench.monitor.reference import expected_score, prediction_columns, prediction_profile

DEFAULT_WINDOW = "1d"
DEFAULT_LAST = 24
_SPAN = re.compile(r"^(\d+)\s*([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_DRIFTED_SHOWN = 20
# Drift is tested on at most this many of a window's rows (a seeded sample), as the
# evaluation bootstraps at most 20,000 rows: against a training reference of a few
# thousand rows a larger sample adds no power, only time.
MAX_DRIFT_ROWS = 20_000
SAMPLE_SEED = 20240917
# Logged columns no window uses: not read (text columns are the costly ones).
UNREAD_COLUMNS = ("source", "model", "error")


@dataclass(frozen=True, slots=True)
class Window:
    """How the log is cut: `seconds` of time, or `rows` logged rows."""

    text: str
    seconds: int | None = None
    rows: int | None = None


def parse_window(text: str) -> Window:
    """`30m`, `1h`, `1d` (a span of time) or `N` (logged rows); UsageError else."""
    spec = text.strip().lower()
    if spec.isdigit() and int(spec) > 0:
        return Window(text, rows=int(spec))
    found = _SPAN.match(spec)
    if found and int(found.group(1)) > 0:
        seconds = int(found.group(1)) * _SECONDS[found.group(2)]
        if seconds >= 60:
            return Window(text, seconds=seconds)
    raise UsageError(
        f"--window {text!r}: expected a span of at least a minute (30m, 1h, 1d) "
        "or a number of logged rows (5000)"
    )


def monitor(
    store: Any, project: str, window: str = DEFAULT_WINDOW, last: int = DEFAULT_LAST
) -> dict[str, Any]:
    """The monitoring report of `project` (see the module); JSON-able."""
    from workbench.data.checks import drift_settings, reference_profile_for
    from workbench.data.drift.stattests import start_scipy_import
    from workbench.data.versions import register_version
    from workbench.projects import project_config

    spec = parse_window(window)
    if last < 1:
        raise UsageError("--last must be at least 1")
    start_scipy_import()
    row, config = project_config(store, project)
    folder = log_folder(config.root)
    labels, damaged_labels = read_labels(config.root)
    # The columns a window reads, and the ids of labelled requests only.
    frame, damaged = read_log(
        folder,
        skip=UNREAD_COLUMNS,
        request_ids=labels["request_id"].dropna().unique().tolist(),
    )
    report: dict[str, Any] = {
        "project": project,
        "log_folder": str(folder),
        "window": {"spec": window, "seconds": spec.seconds, "rows": spec.rows},
        "rows_total": len(frame),
        "requests_total": int((frame["row"] == 0).sum()) if len(frame) else 0,
        "labels_total": len(labels),
        "damaged_parts": [{"path": d.path, "reason": d.reason} for d in damaged],
        "damaged_labels": damaged_labels,
        "windows": [],
    }
    if not len(frame):
        report.update(status="no traffic", drift=False, degraded=False, alerts=[])
        return report
    frame = _attach_labels(frame, labels)
    reference = register_version(store, row["id"], config.train_file)
    context = _Context(
        store=store,
        project=project,
        config=config,
        profile=reference_profile_for(store, reference, config),
        settings=drift_settings(config),
    )
    cuts = _cut(frame, spec, last)
    report["windows"] = [
        _window(context, frame.iloc[lo:hi], start, end, newest=i == len(cuts) - 1)
        for i, (lo, hi, start, end) in enumerate(cuts)
    ]
    newest = report["windows"][-1]
    drift = bool(newest["input_drift"].get("dataset_drift")) or bool(
        newest["prediction_drift"].get("dataset_drift")
    )
    degraded = bool(newest["performance"].get("degraded"))
    report.update(
        status="degraded" if degraded else "drift" if drift else "ok",
        drift=drift,
        degraded=degraded,
        alerts=_alerts(newest),
    )
    return report


@dataclass
class _Context:
    store: Any
    project: str
    config: Any
    profile: dict[str, Any]
    settings: Any
    versions: dict[int, Any] | None = None

    def version(self, number: int) -> Any:
        from workbench.models.registry import resolve

        self.versions = self.versions or {}
        if number not in self.versions:
            self.versions[number] = resolve(self.store, f"{self.project}@{number}")
        return self.versions[number]


def _attach_labels(frame: Any, labels: Any) -> Any:
    """`frame` with a `label` column: each row's latest label, or missing. Only the
    rows that still have a request id (`read_log` keeps the labelled ones) are
    merged, so a large log with few labels joins quickly; the merge on (request
    id, row) is exact whatever ids `frame` holds."""
    import numpy as np

    values = np.full(len(frame), None, dtype=object)
    if len(labels):
        # `read_log(request_ids=...)` kept the ids of labelled requests only; the
        # merge below matches (request id, row) exactly.
        hit = np.flatnonzero(frame["request_id"].notna().to_numpy())
        if len(hit):
            keys = frame[["request_id", "row"]].iloc[hit]
            keys = keys.astype({"request_id": "string", "row": "int32"}).assign(position=hit)
            joined = keys.merge(labels, on=["request_id", "row"], how="inner")
            values[joined["position"].to_numpy()] = joined["label"].to_numpy(dtype=object)
    return frame.assign(label=values)


def _cut(frame: Any, spec: Window, last: int) -> list[tuple[int, int, float, float]]:
    """(first row, end row, start time, end time) of the newest `last` windows
    with rows, oldest first; `frame` is sorted by time."""
    import numpy as np

    ts = frame["ts"].to_numpy(dtype=float)
    if spec.rows is not None:
        n = len(ts)
        count = math.ceil(n / spec.rows)
        cuts = []
        for k in range(max(count - last, 0), count):
            lo, hi = k * spec.rows, min((k + 1) * spec.rows, n)
            cuts.append((lo, hi, float(ts[lo]), float(ts[hi - 1])))
        return cuts
    assert spec.seconds is not None
    buckets = np.floor(ts / spec.seconds).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    chosen = list(zip(starts.tolist(), ends.tolist(), strict=True))[-last:]
    return [
        (lo, hi, float(buckets[lo] * spec.seconds), float((buckets[lo] + 1) * spec.seconds))
        for lo, hi in chosen
    ]


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds")


def _window(
    context: _Context, rows: Any, start: float, end: float, newest: bool
) -> dict[str, Any]:
    import numpy as np

    # Masks on numpy arrays, and a frame filtered only where a row is dropped: taking
    # rows of a wide frame is the costly part of a window.
    first_rows = rows["row"].to_numpy() == 0
    all_status = rows["status"].to_numpy()
    status = all_status[first_rows]
    latency = rows["latency_ms"].to_numpy(dtype=float)[first_rows]
    errors = int((status >= 400).sum())
    ok = all_status < 400
    answered = rows if ok.all() else rows[ok]
    versions = sorted(int(v) for v in answered["version"].dropna().unique())
    window = {
        "start": _iso(start),
        "end": _iso(end),
        "requests": int(first_rows.sum()),
        "rows": len(rows),
        "errors": errors,
        "error_rate": errors / len(status) if len(status) else 0.0,
        "latency_ms": {
            "p50": float(np.percentile(latency, 50)) if len(latency) else None,
            "p99": float(np.percentile(latency, 99)) if len(latency) else None,
        },
        "versions": versions,
    }
    window["input_drift"] = _input_drift(context, answered)
    version = None
    if versions:
        serving = versions[-1]
        same = (answered["version"] == serving).to_numpy(dtype=bool, na_value=False)
        if not same.all():
            answered = answered[same]
        try:
            version = context.version(serving)
        except WorkbenchError as exc:
            window["prediction_drift"] = {"available": False, "reason": exc.message}
            window["performance"] = {"available": False, "reason": exc.message}
            return window
    window["prediction_drift"] = _prediction_drift(version, answered)
    window["performance"] = _performance(context, version, answered, judge=newest)
    return window


def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason, "dataset_drift": False}


def _drift(profile: dict[str, Any], current: Any, settings: Any) -> dict[str, Any]:
    from workbench.data.drift import drift_report

    rows = len(current)
    if rows > MAX_DRIFT_ROWS:
        current = current.sample(MAX_DRIFT_ROWS, random_state=SAMPLE_SEED)
    result = drift_report(profile, current, settings)
    drifted = [c for c in result["columns"] if c["drifted"]]
    return {
        "available": True,
        "dataset_drift": result["dataset_drift"],
        "drifted_columns": [c["column"] for c in drifted],
        "strong_columns": result["strong_columns"],
        "tested_columns": result["tested_columns"],
        "share_drifted": result["share_drifted"],
        "summary": result["summary"],
        "rows": rows,
        "tested_rows": len(current),
        "columns": [
            {
                k: c[k]
                for k in (
                    "column",
                    "method",
                    "statistic",
                    "p_value",
                    "threshold",
                    "effect_size",
                    "drifted",
                    "strong",
                    "skipped",
                )
            }
            for c in result["columns"]
        ],
    }


def _input_drift(context: _Context, answered: Any) -> dict[str, Any]:
    inputs = [c for c in answered.columns if c.startswith(INPUT_PREFIX)]
    if not len(answered) or not inputs:
        return _unavailable("no answered requests with inputs in this window")
    current = answered[inputs].rename(columns=lambda c: c[len(INPUT_PREFIX) :])
    known = [c for c in current.columns if c in context.profile["columns"]]
    if not known:
        return _unavailable("no logged input is a column of the training reference")
    profile = {**context.profile, "columns": {c: context.profile["columns"][c] for c in known}}
    return _drift(profile, current[known], context.settings)


def _prediction_drift(version: Any, answered: Any) -> dict[str, Any]:
    if version is None or not len(answered):
        return _unavailable("no answered requests in this window")
    try:
        profile = prediction_profile(version)
        classes = version.schema["target"].get("classes")
    except WorkbenchError as exc:
        return _unavailable(exc.message)
    columns = [c for c in prediction_columns(classes) if c in answered.columns]
    if not columns:
        return _unavailable("the log holds no predictions for this window")
    current = answered[columns]
    if classes:
        current = current.assign(prediction=current["prediction"].astype(str))
    result = _drift(profile, current, _prediction_settings())
    result["reference"] = f"{version.ref} on its hold-out"
    return result


def _prediction_settings() -> Any:
    """Evidently's defaults for the outputs: the project's `[drift]` overrides
    name input columns, not these."""
    from workbench.data.drift import DriftSettings

    return DriftSettings()


def _performance(
    context: _Context, version: Any, answered: Any, judge: bool = True
) -> dict[str, Any]:
    """The primary metric on the window's labelled rows; with `judge` (the newest
    window, whose verdict counts), also judged against the noise band, whose
    bootstrap is the costly part."""
    import numpy as np
    import pandas as pd

    from workbench.models.degradation import assess
    from workbench.models.evaluation import VECTORISED_METRICS, Predictions, full_score
    from workbench.models.gate import _scores

    joined = answered[answered["label"].notna()] if len(answered) else answered
    if version is None or not len(joined):
        return {"available": False, "reason": "no labels have arrived for this window"}
    classes = version.schema["target"].get("classes")
    metric = context.config.primary_metric(version.task)
    result: dict[str, Any] = {"available": True, "model": version.ref, "metric": metric}
    if classes:
        by_text = {str(c): c for c in classes}
        truth = joined["label"].astype(str).map(by_text)
        pred = joined["prediction"].astype(str).map(by_text)
        usable = truth.notna() & pred.notna()
        names = [f"{PROBA_PREFIX}{c}" for c in classes]
        proba = (
            joined.loc[usable, names].to_numpy(dtype=float)
            if all(n in joined.columns for n in names)
            else None
        )
        if proba is not None and not np.isfinite(proba).all():
            proba = None
        # The classes' own values (numbers stay numbers), as the metrics compare them.
        predictions = Predictions(
            np.array(truth[usable].tolist()), np.array(pred[usable].tolist()), proba, list(classes)
        )
    else:
        truth = pd.to_numeric(joined["label"], errors="coerce")
        pred = pd.to_numeric(joined["prediction"], errors="coerce")
        usable = truth.notna() & pred.notna()
        predictions = Predictions(
            truth[usable].to_numpy(dtype=float), pred[usable].to_numpy(dtype=float)
        )
    result["labelled"] = int(usable.sum())
    result["unusable_labels"] = int((~usable).sum())
    if not result["labelled"]:
        result.update(available=False, reason="no label matches a class the model knows")
        return result
    # The vectorised metric (equal to the trainers' scikit-learn metric within 1e-12,
    # tests/test_gate_statistics.py) where there is one: importing scikit-learn
    # (and scipy.stats with it) would cost more than the whole window. Others get
    # the trainers' own metrics, as the gate scores.
    if metric in VECTORISED_METRICS or not judge:
        score = full_score(metric, predictions)
    else:
        score = _scores(version, predictions).get(metric)
    result["score"] = score
    result["training"] = version.metrics.get(metric)
    result["degraded"] = None
    if judge and isinstance(score, int | float) and math.isfinite(score):
        try:
            expected = expected_score(version, metric)
            result.update(assess(version, metric, float(score), predictions, expected))
        except WorkbenchError as exc:
            result["message"] = f"{metric} {score:.4g}; no baseline: {exc.message}"
    return result


def _alerts(window: dict[str, Any]) -> list[str]:
    """The newest window's problems, one line each."""
    alerts = []
    inputs, outputs = window["input_drift"], window["prediction_drift"]
    if inputs.get("dataset_drift"):
        shown = ", ".join(inputs["drifted_columns"][:MAX_DRIFTED_SHOWN])
        alerts.append(f"input drift: {shown}")
    if outputs.get("dataset_drift"):
        alerts.append(f"prediction drift: {', '.join(outputs['drifted_columns'])}")
    performance = window["performance"]
    if performance.get("degraded"):
        alerts.append(f"degraded: {performance['message']}")
    if window["errors"]:
        alerts.append(f"errors: {window['errors']} of {window['requests']} requests")
    return alerts
