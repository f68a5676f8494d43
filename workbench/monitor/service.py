"""Monitoring for a registered project: opening the prediction log of the project
a bundle came from (for `serve` and `predict --log`), and receiving labels.

A bundle names its project and version in its manifest; its requests are
logged under that project's folder when the project is registered in this
store. A bundle from elsewhere is served without a log, and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.monitor.log import PredictionLog, log_folder, read_log


def open_log(
    store: Any,
    manifest: dict[str, Any],
    *,
    source: str = "serve",
    required: bool = False,
    **options: Any,
) -> tuple[PredictionLog | None, str]:
    """The started log of the bundle's project, and a line saying where it goes;
    (None, why) when the project is not registered here or `[monitor] log` is
    off. With `required` (an explicit `--log`), those are UsageErrors. `serve`'s
    log is written by a process of its own (`LogProcess`), a batch's by a thread;
    `options` (queue size, intervals) ask for the thread."""
    from workbench.config.monitor import monitor_config
    from workbench.projects import project_config

    project = manifest.get("project")
    try:
        if not isinstance(project, str):
            raise NotFoundError("the bundle names no project")
        _, config = project_config(store, project)
    except WorkbenchError as exc:
        why = f"no prediction log: {exc.message}"
        if required:
            raise UsageError(why) from None
        return None, why
    settings = monitor_config(config.raw)
    if not settings.log and source == "serve":
        return None, f"no prediction log: [monitor] log = false in {config.file}"
    version = manifest.get("version")
    known = version if isinstance(version, int) else None
    started: PredictionLog | None = None
    if source == "serve" and not options:
        # A served request only hands its bytes to a writer process: a writer thread
        # would hold the GIL while requests wait (see `monitor.writer`).
        from workbench.monitor.writer import LogProcess

        try:
            started = LogProcess(config.root, settings, version=known, source=source).start()
        except OSError:
            started = None  # no process to be had: the thread writes instead
    if started is None:
        started = PredictionLog(
            config.root, settings, version=known, source=source, **options
        ).start()
    rate = f", {settings.sample_rate:.0%} of requests" if settings.sample_rate < 1 else ""
    return started, (
        f"logging predictions to {started.folder}{rate} (at most {settings.max_mb:g} MB, "
        f"{settings.retention_days} days)"
    )


def receive_labels(store: Any, project: str, file: Path) -> dict[str, Any]:
    """`workbench data labels`: check and keep a labels file (`monitor.labels`)."""
    from workbench.monitor.labels import receive
    from workbench.projects import project_config

    _, config = project_config(store, project)
    frame, _ = read_log(log_folder(config.root), columns=["ts", "request_id", "row", "status"])
    known = set(frame["request_id"].astype(str)) if "request_id" in frame.columns else set()
    result = receive(config.root, file, config.target, known)
    result["project"] = project
    return result


def batch_logger(request_log: PredictionLog, bundle: Any) -> Any:
    """`predict_file`'s `on_chunk` for `predict --log`: each chunk is one request
    (its rows sampled by `[monitor] sample_rate`) and the output gains its
    request_id and row columns, for labels to be joined later."""
    import time
    import uuid

    import numpy as np

    features = list(bundle.model.names)
    classes = bundle.model.classes
    proba_columns = [f"proba_{c}" for c in classes or []]
    rate = request_log.settings.sample_rate
    rng = np.random.default_rng()

    def on_chunk(predicted: Any, seconds: float) -> Any:
        request_id = uuid.uuid4().hex
        rows = np.arange(len(predicted))
        keep = rows if rate >= 1 else rows[rng.random(len(rows)) < rate]
        if len(keep):
            chosen = predicted.iloc[keep]
            has_proba = bool(proba_columns) and all(c in chosen.columns for c in proba_columns)
            request_log.record(
                {
                    "request_id": request_id,
                    "ts": time.time(),
                    "status": 200,
                    "latency_s": seconds,
                    "error": None,
                    "frame": chosen[[c for c in features if c in chosen.columns]],
                    "predictions": chosen["prediction"].to_numpy(),
                    "probabilities": chosen[proba_columns].to_numpy() if has_proba else None,
                    "classes": classes,
                    "model": bundle.name,
                    "rows": keep,
                }
            )
        return predicted.assign(request_id=request_id, row=rows)

    return on_chunk


def labelled_traffic(store: Any, project: str) -> Any:
    """The answered, logged rows whose labels have arrived, as training rows: the
    model's features under their own names and the label as the target column
    (numbers when the training data's target is numeric)."""
    import pandas as pd

    from workbench.config.project import read_columns
    from workbench.monitor.labels import read_labels
    from workbench.monitor.log import INPUT_PREFIX
    from workbench.projects import project_config

    _, config = project_config(store, project)
    frame, _ = read_log(log_folder(config.root))
    labels, _ = read_labels(config.root)
    columns = read_columns(config.train_file, config.file)
    if not len(frame) or not len(labels):
        return pd.DataFrame(columns=columns)
    answered = frame[frame["status"] < 400]
    answered = answered.assign(
        request_id=answered["request_id"].astype("string"), row=answered["row"].astype("int32")
    )
    joined = answered.merge(labels, on=["request_id", "row"], how="inner")
    joined = joined.sort_values(["ts", "request_id", "row"], kind="stable")
    out = pd.DataFrame(index=joined.index)
    for name in columns:
        if name == config.target:
            label = joined["label"]
            numeric = pd.to_numeric(label, errors="coerce")
            out[name] = numeric if numeric.notna().all() and _numeric_target(config) else label
        elif f"{INPUT_PREFIX}{name}" in joined.columns:
            out[name] = joined[f"{INPUT_PREFIX}{name}"]
    return out.reset_index(drop=True)


def _numeric_target(config: Any) -> bool:
    from workbench.data.reading import read_checked

    sample = read_checked(config.train_file)[config.target]
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(sample))
