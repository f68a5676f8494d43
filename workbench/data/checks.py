"""Project-level data checks: the schema of a project, and validation reports
stored with the dataset version they judged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.config.project import ProjectConfig
from workbench.data.reading import Malformed, read_checked
from workbench.data.schema import infer_schema, load_schema, schema_path, write_schema
from workbench.data.validate import validate_file
from workbench.data.versions import register_version
from workbench.core.errors import WorkbenchError
from workbench.projects import project_config
from workbench.store import Store, datasets
from workbench.store.datasets import DatasetVersion


def project_schema(store: Store, project: str, infer: bool = False) -> tuple[dict[str, Any], Path]:
    """The project's schema.toml, inferred from the reference data when there is
    none yet (or when asked); pinned rules survive re-inference."""
    _, config = project_config(store, project)
    path = schema_path(config.root)
    schema = load_schema(path)
    if schema is None or infer:
        schema = _infer(config, previous=schema)
        write_schema(path, schema, source=config.train_file.name)
    return schema, path


def _infer(config: ProjectConfig, previous: dict[str, Any] | None) -> dict[str, Any]:
    try:
        frame = read_checked(config.train_file)
    except Malformed as exc:
        raise WorkbenchError(
            f"cannot infer a schema from the reference data: {exc.message}"
        ) from None
    return infer_schema(frame, config.target, config.task, previous)


def validate(store: Store, project: str, file: Path) -> dict[str, Any]:
    """Validate `file` against the project's schema and store the report with the
    file's dataset version (when the file can be read at all)."""
    row, _ = project_config(store, project)
    schema, schema_file = project_schema(store, project)
    file = file.expanduser().resolve() if file.exists() else file.expanduser()
    result = validate_file(file, schema, project_dir=Path(row["path"]))
    result["schema"] = str(schema_file)
    version_id = None
    if file.is_file() and result["rows"] is not None:
        try:
            version = register_version(
                store, row["id"], file, (result["rows"], result["columns"])
            )
            version_id = version.id
            result["dataset_version"] = {"id": version.id, "sha256": version.sha256}
        except WorkbenchError:
            pass  # the report itself says why the file is unusable
    save_report(store, row["id"], version_id, "validation", str(file), result["passed"], result)
    return result


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


def drift(
    store: Store, project: str, file: Path, *, performance: Performance | None = None
) -> dict[str, Any]:
    """Drift of `file` against the project's reference data, per column and for the
    dataset, stored with the file's dataset version; with `performance`'s judgement
    of the serving model on the batch (`workbench.models.degradation.check_drift`
    passes it in)."""
    from workbench.config.project import read_columns
    from workbench.data.drift import drift_report
    from workbench.data.drift.stattests import start_scipy_import

    start_scipy_import()  # loads while the batch is read
    row, config = project_config(store, project)
    expected = read_columns(config.train_file, config.file)
    try:
        current = read_checked(file, expected, reuse=True)  # as `data validate` kept it
    except Malformed as exc:
        raise WorkbenchError(f"cannot check drift: {exc.message}") from None
    if not set(expected) & set(current.columns):
        raise WorkbenchError(f"cannot check drift: {file.name} has none of the reference's columns")
    reference = register_version(store, row["id"], config.train_file)
    profile = reference_profile_for(store, reference, config)
    result = drift_report(profile, current, drift_settings(config))
    result["file"] = str(file)
    result["reference"] = {"id": reference.id, "sha256": reference.sha256, "rows": reference.rows}
    result["performance"] = (
        performance(store, project, current, config) if performance else dict(NOT_JUDGED)
    )
    version = register_version(
        store, row["id"], file.resolve(), (len(current), list(current.columns))
    )
    save_report(
        store, row["id"], version.id, "drift", str(file), not result["dataset_drift"], result
    )
    return result


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
