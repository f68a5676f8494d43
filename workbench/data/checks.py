"""Project-level data checks: the schema of a project, and the validation and
drift reports of a batch, each stored with the dataset version it judged.

`validate` (`data validate`), `drift` (`data drift`) and `check` (`data check`)
run the same steps: read the batch with every malformed-file check, validate it
(`_validated`: the report, the version registered, the report stored), measure
its drift (`_drift_of`, `_save_drift`). `check` does both from one read of the
batch, registers it once, and overlaps the imports and the reference's profile
with the read (`reading.start_read`).

pandas and the drift tests are imported inside the functions that use them, so
that `check` can start reading before it imports them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.config.project import ProjectConfig, read_columns
from workbench.core.errors import WorkbenchError
from workbench.data.reading import Batch, Malformed, read_batch, read_checked, start_read
from workbench.data.versions import register_version
from workbench.projects import project_config
from workbench.store import Store, datasets
from workbench.store.datasets import DatasetVersion


def project_schema(store: Store, project: str, infer: bool = False) -> tuple[dict[str, Any], Path]:
    """The project's schema.toml, inferred from the reference data when there is
    none yet (or when asked); pinned rules survive re-inference."""
    from workbench.data.schema import load_schema, schema_path, write_schema

    _, config = project_config(store, project)
    path = schema_path(config.root)
    schema = load_schema(path)
    if schema is None or infer:
        schema = _infer(config, previous=schema)
        write_schema(path, schema, source=config.train_file.name)
    return schema, path


def _infer(config: ProjectConfig, previous: dict[str, Any] | None) -> dict[str, Any]:
    from workbench.data.schema import infer_schema

    try:
        frame = read_checked(config.train_file)
    except Malformed as exc:
        raise WorkbenchError(
            f"cannot infer a schema from the reference data: {exc.message}"
        ) from None
    return infer_schema(frame, config.target, config.task, previous)


def _resolved(file: Path) -> Path:
    return file.expanduser().resolve() if file.exists() else file.expanduser()


def validate(store: Store, project: str, file: Path) -> dict[str, Any]:
    """Validate `file` against the project's schema and store the report with the
    file's dataset version (when the file can be read at all)."""
    from workbench.data.validate import expected_columns

    row, _ = project_config(store, project)
    schema, schema_file = project_schema(store, project)
    file = _resolved(file)
    try:
        # Kept for `data drift` of the same file, which then reads it back unparsed.
        batch: Batch | Malformed = read_batch(file, expected_columns(schema), keep=True)
    except Malformed as exc:
        batch = exc
    return _validated(store, row, file, schema, schema_file, batch)[0]


def _validated(
    store: Store,
    row: Any,
    file: Path,
    schema: dict[str, Any],
    schema_file: Path,
    batch: Batch | Malformed,
    counts: Any = None,
) -> tuple[dict[str, Any], DatasetVersion | None]:
    """The validation report of a batch read (or refused: `Malformed`), its dataset
    version registered when it was read, and the report stored with it. `counts`:
    the batch's `ValueCounts`, shared with its drift report."""
    from workbench.data.validate import validation_report

    project_dir = Path(row["path"])
    if isinstance(batch, Malformed):
        result = validation_report(file, None, schema, project_dir, malformed=batch)
    else:
        result = validation_report(file, batch.frame, schema, project_dir, counts=counts)
    result["schema"] = str(schema_file)
    version = None
    if isinstance(batch, Batch) and file.is_file():
        try:
            version = register_version(
                store, row["id"], file, (result["rows"], result["columns"]), sha256=batch.sha256
            )
            result["dataset_version"] = {"id": version.id, "sha256": version.sha256}
        except WorkbenchError:
            pass  # the report itself says why the file is unusable
    save_report(
        store,
        row["id"],
        version.id if version else None,
        "validation",
        str(file),
        result["passed"],
        result,
    )
    return result, version


def save_report(
    store: Store,
    project_id: int,
    version_id: int | None,
    kind: str,
    file: str,
    passed: bool,
    report: dict[str, Any],
) -> int:
    verdict = "passed" if passed else "failed"
    return datasets.add_report(
        store,
        project_id,
        version_id,
        kind,
        file,
        passed,
        report,
        event=f"{kind} of {Path(file).name} {verdict}",
    )


# The serving model's metric on a labelled batch: (store, project, batch, config) -> report.
# Passed in by `workbench.models.degradation.check_drift`: data never reaches up into models.
Performance = Callable[[Store, str, Any, ProjectConfig], dict[str, Any]]
NOT_JUDGED = {"available": False, "reason": "no model was asked to judge the batch"}


class _Reference:
    """What a batch's drift is measured against: the reference's version, its
    profile, its columns and the project's drift settings."""

    def __init__(self, store: Store, row: Any, config: ProjectConfig) -> None:
        self.columns = read_columns(config.train_file, config.file)
        self.version = register_version(store, row["id"], config.train_file)
        try:
            self.profile = reference_profile_for(store, self.version, config)
        except Malformed as exc:
            raise WorkbenchError(f"cannot profile the reference data: {exc.message}") from None
        self.settings = drift_settings(config)
        self.settings.validate()  # a bad [drift] table is refused before any report


def drift(
    store: Store, project: str, file: Path, *, performance: Performance | None = None
) -> dict[str, Any]:
    """Drift of `file` against the project's reference data, per column and for the
    dataset, stored with the file's dataset version; with `performance`'s judgement
    of the serving model on the batch (`workbench.models.degradation.check_drift`
    passes it in)."""
    from workbench.data import drift as _tests  # noqa: F401 - pandas first, or the thread
    from workbench.data import preload  # below would fight its import for the GIL

    preload.start("scipy.special")  # loads while the batch is read
    row, config = project_config(store, project)
    expected = read_columns(config.train_file, config.file)
    try:
        batch = read_batch(file, expected, reuse=True)  # as `data validate` kept it
    except Malformed as exc:
        raise WorkbenchError(f"cannot check drift: {exc.message}") from None
    reference = _Reference(store, row, config)
    result = _drift_of(store, project, config, file, batch.frame, reference, performance)
    current = batch.frame
    version = register_version(
        store, row["id"], file.resolve(), (len(current), list(current.columns)), sha256=batch.sha256
    )
    _save_drift(store, row["id"], version, file, result)
    return result


def _drift_of(
    store: Store,
    project: str,
    config: ProjectConfig,
    file: Path,
    current: Any,
    reference: _Reference,
    performance: Performance | None,
    counts: Any = None,
) -> dict[str, Any]:
    """The drift report of a batch read as `current`; WorkbenchError when it shares
    no column with the reference."""
    from workbench.data.drift import drift_report

    if not set(reference.columns) & set(current.columns):
        raise WorkbenchError(f"cannot check drift: {file.name} has none of the reference's columns")
    result = drift_report(reference.profile, current, reference.settings, counts=counts)
    result["file"] = str(file)
    version = reference.version
    result["reference"] = {"id": version.id, "sha256": version.sha256, "rows": version.rows}
    result["performance"] = (
        performance(store, project, current, config) if performance else dict(NOT_JUDGED)
    )
    return result


def _save_drift(
    store: Store, project_id: int, version: DatasetVersion, file: Path, result: dict[str, Any]
) -> None:
    save_report(
        store, project_id, version.id, "drift", str(file), not result["dataset_drift"], result
    )


def check(
    store: Store, project: str, file: Path, *, performance: Performance | None = None
) -> dict[str, Any]:
    """Validation and drift of `file` from one read: exactly the reports `validate`
    and `drift` store, the batch registered once.

    Returns {"file", "passed" (the validation's verdict), "dataset_drift" (None
    when drift could not be measured), "validation" (the report `validate`
    returns), "drift" (the report `drift` returns, or None), "drift_error" (why
    drift could not be measured: the batch cannot be read as a table, or shares no
    column with the reference; else None)}. A project whose configuration is
    broken (its schema, its [drift] settings) raises before any report is stored.
    """
    row, config = project_config(store, project)
    given, file = file, _resolved(file)  # each report names the file as its command does
    with start_read(file) as pending:
        # While the batch is read and hashed on threads (outside the GIL): the
        # imports, the schema, the reference's version and profile, all on this
        # thread. scipy.special comes last: imported on a thread of its own, it
        # would fight the pandas import for the GIL.
        from workbench.data.validate import expected_columns

        schema, schema_file = project_schema(store, project)
        reference = _Reference(store, row, config)
        _import_drift_tests()
        try:
            batch: Batch | Malformed = pending.result(expected_columns(schema) or reference.columns)
        except Malformed as exc:
            batch = exc
    counts = None
    if isinstance(batch, Batch):
        from workbench.data.counts import ValueCounts

        counts = ValueCounts(batch.frame)  # each text column counted once, for both
    validation, version = _validated(store, row, file, schema, schema_file, batch, counts)
    report, problem = None, None
    if isinstance(batch, Malformed):
        problem = f"cannot check drift: {batch.message}"
    elif version is None:
        problem = f"cannot check drift: {file.name} could not be registered"
    else:
        try:
            report = _drift_of(
                store, project, config, given, batch.frame, reference, performance, counts
            )
        except WorkbenchError as exc:
            problem = exc.message
        else:
            _save_drift(store, row["id"], version, given, report)
    return {
        "file": str(file),
        "passed": validation["passed"],
        "dataset_drift": None if report is None else report["dataset_drift"],
        "validation": validation,
        "drift": report,
        "drift_error": problem,
    }


def _import_drift_tests() -> None:
    """Load what the drift tests import (`drift.distributions`); a failure is left
    for their own import to raise, where it is reported."""
    import contextlib

    with contextlib.suppress(Exception):
        import scipy.special  # noqa: F401


def drift_settings(config: ProjectConfig) -> Any:
    """The project's `[drift]` settings (a `DriftSettings`), with its plugins' tests:
    what `data drift` and `workbench monitor` both judge by."""
    from workbench.data.drift import DriftSettings
    from workbench.plugins import drift_tests

    settings = config.raw.get("drift", {})
    columns = settings.get("columns", {})
    methods = [settings.get("method"), *(rules.get("method") for rules in columns.values())]
    return DriftSettings(
        share=settings.get("share", 0.5),
        method=settings.get("method"),
        threshold=settings.get("threshold"),
        columns=columns,
        tests=drift_tests(config.root, methods),
    )


def reference_profile_for(
    store: Store, reference: DatasetVersion, config: ProjectConfig
) -> dict[str, Any]:
    """Histograms and quantiles of the reference, computed once per version: kept
    in the store for the TUI, and as a file keyed by the content's hash
    (`workbench.data.profiles`), which `data add` may have written already."""
    from workbench.data import profiles
    from workbench.data.drift import PROFILE_VERSION

    cached = datasets.reference_profile(store, reference.id)
    if cached and cached.get("version") == PROFILE_VERSION:
        return cached
    profile = profiles.profile_for(reference.sha256, config.train_file)
    datasets.save_reference_profile(store, reference.id, profile)
    return profile
