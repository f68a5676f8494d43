"""Exporting a model version: each format writes into an empty staging folder
next to the target, which is moved into place only when the export succeeded,
so a failed export leaves nothing behind. An existing target is replaced only
on `force`, and only when it is a previous export (recognised by its layout:
a bundle's manifest, an MLflow MLmodel, an ONNX model with its contract);
anything else there is left alone. `-o NAME.onnx` writes that file, with its
contract beside it as NAME.onnx.json."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError
from workbench.models.registry import ModelVersion
from workbench.store import Store

# The built-in formats, each written by `write_<name>` below and registered as an
# exporter by `workbench.builtin_plugins`. Plugins may add more: every name, built
# in or not, is `workbench.plugins.export_formats(project_dir)`.
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
    from workbench.plugins import exporter

    project_dir = Path(version.project_path) if version.project_path else None
    write = exporter(fmt, project_dir)  # built in or from a plugin
    output = output.expanduser().absolute()
    as_zip = output.suffix.lower() == ".zip"
    if as_zip and fmt != "bundle":
        raise UsageError(f"only a bundle can be written as a .zip, not {fmt}")
    if (with_wheels or docker) and fmt != "bundle":
        raise UsageError("--with-wheels and --docker apply to --format bundle only")
    as_file = fmt == "onnx" and output.suffix.lower() == ".onnx"
    targets = [output, contract_file_for(output)] if as_file else [output]
    for target in targets:
        if target.exists() or target.is_symlink():
            if not force:
                raise UsageError(f"{target} already exists; pass --force to replace it")
            why = _not_an_export(target)
            if why:
                raise UsageError(
                    f"{target} is not a previous export ({why}), so --force leaves it alone; "
                    "remove it yourself or choose another -o"
                )
    if output.parent.exists() and not output.parent.is_dir():
        raise UsageError(f"{output.parent} is not a folder")
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
        if as_file:
            from workbench.models.onnx_format import CONTRACT_FILE, MODEL_FILE

            moves = [(folder / MODEL_FILE, output), (folder / CONTRACT_FILE, targets[1])]
        else:
            moves = [(folder, output)]
        old = staging / "replaced"
        old.mkdir()
        for i, (made, target) in enumerate(moves):
            if target.exists() or target.is_symlink():
                target.rename(old / str(i))  # removed with the staging folder
            made.rename(target)
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


def contract_file_for(onnx_file: Path) -> Path:
    """Where `-o NAME.onnx` puts the model's input/output contract: NAME.onnx.json."""
    return onnx_file.with_name(f"{onnx_file.name}.json")


def _not_an_export(path: Path) -> str | None:
    """Why `path` is not something an export wrote (None when it is one)."""
    if path.is_symlink():
        return "a symbolic link"
    if path.is_dir():
        if _json_has(path / "manifest.json", "bundle_format"):
            return None
        if (path / "MLmodel").is_file():
            return None
        if (path / "model.onnx").is_file() and _json_has(path / "model.json", "inputs"):
            return None
        return "a folder without a bundle's manifest.json, an MLflow MLmodel or model.onnx"
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                if "manifest.json" in archive.namelist():
                    return None
        except (zipfile.BadZipFile, OSError):
            pass
        return "a file that is not a bundle .zip"
    if path.name.lower().endswith(".onnx.json") and _json_has(path, "inputs"):
        return None
    if path.suffix.lower() == ".onnx" and _json_has(contract_file_for(path), "inputs"):
        return None
    return "a file without the contract an ONNX export writes beside it"


def _json_has(path: Path, key: str) -> bool:
    try:
        if path.stat().st_size > 16 << 20:
            return False
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and key in found


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
    from workbench.models.bundle import export_bundle
    from workbench.store import datasets

    return export_bundle(
        version,
        folder,
        with_wheels=with_wheels,
        wheelhouses=wheelhouses or [],
        docker=docker,
        progress=progress,
        datasets=datasets.for_run(store, version.run_id) if store is not None else None,
        store=store,
    )


def write_mlflow(version: ModelVersion, folder: Path, *, progress: Any, **_: Any) -> dict[str, Any]:
    from workbench.models.mlflow_format import export_mlflow

    return export_mlflow(version, folder, progress=progress)


def write_onnx(
    version: ModelVersion, folder: Path, *, progress: Any, tolerance: float = 1e-4, **_: Any
) -> dict[str, Any]:
    from workbench.models.onnx_format import export_onnx

    return export_onnx(version, folder, tolerance=tolerance, progress=progress)
