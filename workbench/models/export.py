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

FORMATS = ("bundle", "mlflow", "onnx")


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
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
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
        if fmt == "bundle":
            from workbench.models.bundle import export_bundle, zip_folder

            report = export_bundle(
                version,
                folder,
                with_wheels=with_wheels,
                wheelhouses=wheelhouses or [],
                docker=docker,
                progress=say,
            )
            if as_zip:
                say("zipping")
                zip_folder(folder, staging / "export.zip")
                folder = staging / "export.zip"
        elif fmt == "mlflow":
            from workbench.models.mlflow_format import export_mlflow

            report = export_mlflow(version, folder, progress=say)
        else:
            from workbench.models.onnx_format import export_onnx

            report = export_onnx(version, folder, tolerance=tolerance, progress=say)
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
