"""Exporting a model version: each format writes into an empty staging folder
next to the target, which is moved into place only when the export succeeded,
so a failed export leaves nothing behind and an existing target is replaced
only on `force`."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from workbench.errors import UsageError
from workbench.models.registry import ModelVersion
from workbench.store import Store

FORMATS = ("bundle", "mlflow", "onnx")  # the built-in ones; plugins may add more


def export_model(
    store: Store | None,
    version: ModelVersion,
    fmt: str,
    output: Path,
    *,
    with_wheels: bool = False,
    wheelhouses: list[Path] | None = None,
    docker: bool = False,
    tolerance: float = 1e-4,
    force: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """Write `version` to `output` in `fmt`; returns a report with at least
    `path`, `format` and `notes` (lines for a person). `progress(message)`,
    when given, hears about each step."""
    from workbench.plugins import exporter

    project_dir = Path(version.project_path) if version.project_path else None
    write = exporter(fmt, project_dir)  # built in or from a plugin
    output = output.expanduser().absolute()
    as_zip = output.suffix.lower() == ".zip"
    if as_zip and fmt != "bundle":
        raise UsageError(f"only a bundle can be written as a .zip, not {fmt}")
    if (with_wheels or docker) and fmt != "bundle":
        raise UsageError("--with-wheels and --docker apply to --format bundle only")
    if output.exists() and not force:
        raise UsageError(f"{output} already exists; pass --force to replace it")
    output.parent.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda message: None)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        folder = staging / "export"
        folder.mkdir()
        report = write(
            version,
            folder,
            progress=say,
            store=store,
            with_wheels=with_wheels,
            wheelhouses=wheelhouses or [],
            docker=docker,
            tolerance=tolerance,
        )
        if as_zip:
            from workbench.models.bundle import zip_folder

            say("zipping")
            zip_folder(folder, staging / "export.zip")
            folder = staging / "export.zip"
        if output.exists():
            if output.is_dir() and not output.is_symlink():
                shutil.rmtree(output)
            else:
                output.unlink()
        folder.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report = {"format": fmt, "model": version.ref, "notes": [], **report, "path": str(output)}
    if store is not None:
        now = time.time()
        with store.write():
            store.add_event(
                "model.exported",
                f"model version {version.version} exported as {fmt} to {output}",
                ts=now,
                project_id=version.project_id,
                run_id=version.run_id,
                data={"format": fmt, "path": str(output), "version": version.version},
            )
    return report


# The built-in formats, registered as exporters by `workbench.builtin_plugins`.


def write_bundle(
    version: ModelVersion,
    folder: Path,
    *,
    progress: Any,
    store: Store | None = None,
    with_wheels: bool = False,
    wheelhouses: list[Path] | None = None,
    docker: bool = False,
    **_: Any,
) -> dict[str, Any]:
    from workbench.data.versions import run_datasets
    from workbench.models.bundle import export_bundle

    return export_bundle(
        version,
        folder,
        with_wheels=with_wheels,
        wheelhouses=wheelhouses or [],
        docker=docker,
        progress=progress,
        datasets=run_datasets(store, version.run_id) if store is not None else None,
    )


def write_mlflow(version: ModelVersion, folder: Path, *, progress: Any, **_: Any) -> dict[str, Any]:
    from workbench.models.mlflow_format import export_mlflow

    return export_mlflow(version, folder, progress=progress)


def write_onnx(
    version: ModelVersion, folder: Path, *, progress: Any, tolerance: float = 1e-4, **_: Any
) -> dict[str, Any]:
    from workbench.models.onnx_format import export_onnx

    return export_onnx(version, folder, tolerance=tolerance, progress=progress)
