"""The hooks a Workbench plugin can implement: the plugin author's reference.

A plugin is a module (an entry point in the `workbench` group, or a `*.py` file
in a project's `plugins/` folder) with functions decorated by
`workbench.hookimpl` and named like the specs below. Each hook returns what the
plugin contributes; a plugin that fails to import, or whose hook raises, is
reported by `workbench plugins list` and skipped. The built-in trainers,
exporters and drift tests register through these same hooks
(`workbench/models/builtin_plugin.py`).
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("workbench")
hookimpl = pluggy.HookimplMarker("workbench")


@hookspec
def workbench_trainers() -> dict[str, type]:
    """Trainers by name, for `[train] trainer = "NAME"`.

    A trainer class is built as `Cls(table, params, seed)` (a
    `workbench.trainers.tabular.Table`, `[train] params`, `[train] seed`) and has
    `framework` (a name), `framework_version() -> str`, `classes` (the labels
    after `fit`, None for regression), `fit(x_train, y_train, x_valid, y_valid)
    -> {curve: [value per step]}`, `predict(features) -> (pred, proba or None)`
    and `save(folder) -> Path` (in a format that runs no code at load). To load a
    saved model back, it has a classmethod `load(schema, model_file)` returning an
    object with `predict(frame) -> (pred, proba or None)`.
    """


@hookspec
def workbench_exporters() -> dict[str, Any]:
    """Export formats by name, for `workbench model export --format NAME`.

    An exporter is `fn(version, folder, *, progress, **options) -> dict`: it
    writes the `ModelVersion` into the empty `folder`, calls `progress(text)` per
    step, ignores options it does not know, and returns a report (`notes`: lines
    for a person).
    """


@hookspec
def workbench_validators() -> list[Any]:
    """Extra checks for `workbench data validate`.

    A validator is `fn(frame, schema) -> list[dict]`, each dict a check:
    `check` (a name), `severity` ("error" or "warn"), `passed`, `message`, and
    optionally `column` and `details`. A failed error-level check rejects the file.
    """


@hookspec
def workbench_drift_tests() -> dict[str, Any]:
    """Drift tests by name, for `[drift] method` and per-column methods.

    Each is a `workbench.data.drift.DriftTest`: `run(profile, values) ->
    (statistic, p_value or None)` gets the reference column's profile (see
    `reference_profile`) and the current column's non-null values (sorted floats
    for a numeric column); `statistic` ("p_value": drift when p < threshold, or
    "distance": drift when statistic >= threshold) and its default `threshold`.
    """


@hookspec
def workbench_notify(event: dict[str, Any], settings: dict[str, Any]) -> None:
    """Hear about an event: `kind` (e.g. "model.promoted", "data.rejected",
    "data.drift"), `project`, `message`, `ts` and `data`. `settings` is the
    plugin's `[plugins.<name>]` table of `$WORKBENCH_HOME/config.toml`."""


@hookspec
def workbench_executors() -> dict[str, Any]:
    """Executors by name, for `[runs] executor = "NAME"` and `run start --executor NAME`.

    An executor is an object with `submit(store, run_id, config) -> None` (hand
    the queued run over; record what is needed to find it again), `poll(store,
    jobs) -> None` (bring the given `store.jobs.Job`s' statuses up to date, in
    as few calls to the scheduler as it can) and `cancel(store, job) -> None`
    (ask the scheduler to stop it). A job never opens the store: it writes the
    run's journal (`workbench.runs.executors.journal`), which the workbench ingests.
    The built-in "local" and "slurm" executors are not registered through this hook.
    """
