"""The model bundle: a folder (or .zip) that carries a model version to another
machine and runs there with or without Workbench.

What is in one, and how it is checked and used, is the business of
`workbench.models.bundle_runtime`, which is copied into the bundle as `wb_runtime.py`;
this module writes bundles and connects the runtime to Workbench's errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.version import __version__
from workbench.core.errors import NotFoundError, UsageError, WorkbenchError
from workbench.core.files import sha256_file
from workbench.models import bundle_runtime, signing
from workbench.models.bundle_runtime import MANIFEST, RUNTIME_FILE, SIGNATURE

if TYPE_CHECKING:
    from workbench.store import Store
    from workbench.store.datasets import DatasetVersion
    from workbench.store.models import ModelVersion

REQUIREMENTS = "requirements.txt"
MODEL_CARD = "model_card.html"  # the model report (`workbench model report`), self-contained
WHEELS = "wheels"
SELF_CHECK_ROWS = 200


@contextlib.contextmanager
def runtime_errors() -> Iterator[None]:
    """The runtime's own errors (it cannot import Workbench) as Workbench errors."""
    try:
        yield
    except bundle_runtime.InputError as exc:
        raise UsageError(str(exc)) from exc
    except bundle_runtime.BundleRuntimeError as exc:
        raise WorkbenchError(str(exc)) from exc


def export_bundle(
    version: ModelVersion,
    folder: Path,
    *,
    with_wheels: bool,
    wheelhouses: list[Path],
    docker: bool,
    progress: Callable[[str], None],
    datasets: list[DatasetVersion] | None = None,
    store: Store | None = None,
) -> dict[str, Any]:
    """Write `version` as a bundle into the empty `folder`; `datasets` are the
    training run's dataset versions, recorded by hash in the manifest; `store`
    gives the model card its lineage and gate decisions. Returns a report with
    `files`, `wheels` and `notes` (lines for a person)."""
    from workbench.models import wheels as wheel_finder

    schema = version.schema
    framework = schema["framework"]
    if framework not in wheel_finder.FRAMEWORK_PACKAGES:
        raise WorkbenchError(
            f"{version.ref} is a {framework} model; a bundle holds LightGBM or scikit-learn "
            "models of the built-in trainers"
        )
    progress("copying the model")
    model_file = schema["model_file"]
    shutil.copyfile(version.model_path, folder / model_file)
    shutil.copyfile(bundle_runtime.__file__, folder / RUNTIME_FILE)
    progress("pinning the requirements")
    # The framework's packages and every distribution the model's types come from.
    pins = wheel_finder.pinned_requirements(framework, version.model_path)
    (folder / REQUIREMENTS).write_text(requirements_text(pins))
    notes = [f"{REQUIREMENTS} pins {len(pins)} packages for Python {_python()} ({_platform()})"]
    collected: list[dict[str, str]] = []
    if with_wheels:
        progress("collecting wheels (no network)")
        local_houses, local_indexes = wheel_finder.pip_local_sources()
        collected = wheel_finder.collect_wheels(
            pins,
            [*wheelhouses, *local_houses],
            folder / WHEELS,
            cache=wheel_finder.pip_cache_dir(),
            indexes=local_indexes,
        )
        size = sum(p.stat().st_size for p in (folder / WHEELS).iterdir())
        notes.append(f"{len(collected)} wheels ({size / 1e6:.1f} MB) in {WHEELS}/")
    manifest = _manifest(version, schema, datasets or [])
    if docker:
        (folder / "Dockerfile").write_text(dockerfile_text(with_wheels))
        if with_wheels and sys.platform != "linux":
            notes.append(
                f"the wheels are for {_platform()}; the Linux image needs Linux wheels: "
                "export with --wheelhouse pointing at Linux ones"
            )
    (folder / "README.md").write_text(readme_text(manifest, docker=docker, wheels=with_wheels))
    progress("writing the model card")
    notes.append(_model_card(version, folder, store, progress))
    if (folder / MODEL_CARD).exists():
        manifest["model_card"] = MODEL_CARD
    progress("hashing")
    manifest["files"] = {
        name: {"sha256": _sha256(folder / name), "bytes": (folder / name).stat().st_size}
        for name in _relative_files(folder)
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    progress("signing")
    signed = signing.sign_folder(folder)
    notes.append(f"signed by this store's key {signed['fingerprint']}")
    progress("checking the bundle loads")
    notes.append(_self_check(version, folder))
    return {
        "files": len(manifest["files"]) + 1,
        "bytes": sum(entry["bytes"] for entry in manifest["files"].values()),
        "requirements": [str(pin) for pin in pins],
        "wheels": collected,
        "notes": notes,
    }


def _manifest(
    version: ModelVersion, schema: dict[str, Any], datasets: list[DatasetVersion]
) -> dict[str, Any]:
    def iso(ts: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))

    return {
        "bundle_format": bundle_runtime.BUNDLE_FORMAT,
        "name": version.project,
        "project": version.project,
        "version": version.version,
        "ref": version.ref,
        "framework": schema["framework"],
        "framework_version": schema.get("framework_version") or version.framework_version,
        "model_file": schema["model_file"],
        "model_sha256": version.model_sha256,
        "features": schema["features"],
        "target": schema["target"],
        "task": schema["target"].get("task"),
        "metrics": version.metrics,
        "primary_metric": version.metric,
        "training_data": [
            {"sha256": d.sha256, "file": Path(d.path).name, "rows": d.rows, "role": d.role}
            for d in datasets
        ],
        "holdout_sha256": version.holdout_sha256,
        "run_id": version.run_id,
        "model_created_at": iso(version.created_at),
        "created_at": iso(time.time()),
        "workbench_version": __version__,
        "python": _python(),
        "platform": _platform(),
        "requirements": REQUIREMENTS,
        "runtime": RUNTIME_FILE,
        # skops loads its default types plus exactly these (the runtime's allow-list).
        "trusted_types": None
        if schema["framework"] == "lightgbm"
        else sorted(bundle_runtime.TRUSTED_TYPES),
    }


def _model_card(
    version: ModelVersion, folder: Path, store: Store | None, progress: Callable[[str], None]
) -> str:
    """The model report as the bundle's model card, hashed like every other file.
    A report that cannot be made leaves the bundle without a card, and says why:
    the model itself is still good to ship."""
    from workbench.models.report import build_report
    from workbench.models.report_html import render_html

    try:
        report = build_report(store, version, progress=lambda step: progress(f"model card: {step}"))
        (folder / MODEL_CARD).write_text(render_html(report), encoding="utf-8")
    except Exception as exc:  # noqa: BLE001 - said in the export's notes
        return f"no {MODEL_CARD}: {exc}"
    return f"{MODEL_CARD}: the model report, self-contained HTML"


def _self_check(version: ModelVersion, folder: Path) -> str:
    """Load the finished bundle as a user would (verifying it) and predict a few
    hold-out rows, so a bundle that cannot be used is never delivered."""
    import pandas as pd

    with runtime_errors():
        bundle = bundle_runtime.load(folder)
        path = version.holdout_path
        if path is None or not path.exists():
            return f"verified {len(bundle.manifest['files']) + 1} files and loaded the model"
        rows = pd.read_parquet(path).head(SELF_CHECK_ROWS)
        pred, _ = bundle.predict(rows)
    return (
        f"verified {len(bundle.manifest['files']) + 1} files, loaded the model and predicted "
        f"{len(pred)} hold-out rows"
    )


def requirements_text(pins: list[Any]) -> str:
    lines = [
        f"# Exact versions the bundle was made with (Python {_python()}, {_platform()}).",
        "# pip install -r requirements.txt",
        "# offline, when the bundle has wheels/: "
        "pip install --no-index --find-links wheels -r requirements.txt",
        *(str(pin) for pin in pins),
    ]
    return "\n".join(lines) + "\n"


def dockerfile_text(wheels: bool) -> str:
    install = (
        "pip install --no-cache-dir --no-index --find-links wheels -r requirements.txt"
        if wheels
        else "pip install --no-cache-dir -r requirements.txt"
    )
    health = (
        "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"
    )
    return f"""\
# Serves the model with the bundle's own runtime on port 8080:
#   docker build -t my-model . && docker run --rm -p 8080:8080 my-model
# The runtime verifies every file against manifest.json before it loads the model.
FROM python:{_python()}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /bundle
COPY . /bundle
# Files exported under a private umask (the workbench's is 077) keep their modes
# through COPY; the server runs as nobody, so it must be able to read them.
RUN chmod -R a+rX /bundle && {install}
USER nobody
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \\
  CMD ["python", "-c", "{health}"]
CMD ["python", "{RUNTIME_FILE}", "serve", "/bundle", "--host", "0.0.0.0", "--port", "8080"]
"""


def readme_text(manifest: dict[str, Any], *, docker: bool, wheels: bool) -> str:
    target = manifest["target"]
    features = "\n".join(
        f"| `{f['name']}` | {f['kind']} | "
        + (", ".join(f"`{c}`" for c in f.get("categories") or []) or f.get("dtype", ""))
        + " |"
        for f in manifest["features"]
    )
    metrics = ", ".join(
        f"{k} {v:.4g}" for k, v in sorted(manifest["metrics"].items()) if isinstance(v, float)
    )
    classes = target.get("classes")
    output = (
        f"`prediction` (one of {', '.join(map(str, classes))}) and `proba_<class>` per class"
        if classes
        else "`prediction`"
    )
    offline = (
        "\nOffline (the wheels are in `wheels/`):\n\n"
        "    pip install --no-index --find-links wheels -r requirements.txt\n"
        if wheels
        else ""
    )
    container = (
        "\n## Docker\n\n"
        "    docker build -t my-model . && docker run --rm -p 8080:8080 my-model\n\n"
        "The image serves on port 8080 and has a HEALTHCHECK on `/health`.\n"
        if docker
        else ""
    )
    return f"""\
# {manifest["ref"]} — a Workbench model bundle

{manifest["framework"]} {manifest["framework_version"]} {target.get("task")} model of
`{target["name"]}`, from run {manifest["run_id"]}. Hold-out metrics: {metrics or "none"}
(primary: {manifest["primary_metric"]}). Made {manifest["created_at"]} by Workbench
{manifest["workbench_version"]} with Python {manifest["python"]} ({manifest["platform"]}).

## Files

- `{manifest["model_file"]}`: the model, in a format that runs no code when it is loaded
  (LightGBM's text model, or skops loaded with an allow-list of types).
- `manifest.json`: what the model is, its input schema, the training data's SHA-256,
  and the SHA-256 of every other file.
- `{SIGNATURE}`: an Ed25519 signature of `manifest.json` by the exporting store's key
  (`workbench model verify` names the signer; `workbench keys` hands keys over).
- `{RUNTIME_FILE}`: verifies, loads, predicts and serves (needs only the packages in
  `requirements.txt`).
- `requirements.txt`: the exact versions it was made with.
- `model_card.html`: the model report (metrics with bootstrap intervals, feature
  importance, curves, training data profile, lineage, the gate's decisions); one
  self-contained file that opens offline in any browser.

## Check it

Every load verifies the bundle first and refuses a changed, missing or extra file, a
path leaving the bundle, a link, a file over the size limits, a bad signature, or a
model holding anything but data and allow-listed classes. `workbench predict` and
`workbench serve` also refuse a bundle not signed by a key they trust, unless `--trust`.
`{RUNTIME_FILE}` checks the signature when the `cryptography` package is installed and
otherwise says it was not checked. To check by hand:

    workbench model verify BUNDLE           # with Workbench
    python {RUNTIME_FILE} verify BUNDLE     # without

## Install (without Workbench)

    pip install -r requirements.txt
{offline}
## Predict a file

Input: CSV, CSV.gz or Parquet with these columns (others are ignored):

| column | kind | categories / dtype |
|---|---|---|
{features}

Output: the input plus {output}.

    workbench predict BUNDLE input.csv -o predictions.csv
    python {RUNTIME_FILE} predict BUNDLE input.csv -o predictions.parquet

## Serve over HTTP

    workbench serve BUNDLE --port 8080
    python {RUNTIME_FILE} serve BUNDLE --host 127.0.0.1 --port 8080

`GET /health`, `GET /metadata` (this manifest without the hashes) and `POST /predict`
with `{{"rows": [{{"column": value, ...}}, ...]}}` (or a bare list of row objects, or
`{{"columns": {{"column": [values, ...]}}}}`), answering
`{{"predictions": [...], "probabilities": [[...], ...] or null, "classes": [...]}}`.
A missing column or a wrong type gets 422 with the reason. The server has no
authentication: bind to another host than 127.0.0.1 only behind something that has.
{container}
## From Python

    import sys
    import pandas as pd

    sys.dont_write_bytecode = True  # no __pycache__ in the bundle: it would be an extra file
    sys.path.insert(0, "BUNDLE")
    import wb_runtime  # with Workbench installed: from workbench.models import bundle_runtime

    bundle = wb_runtime.load("BUNDLE")  # verifies first
    predictions, probabilities = bundle.predict(pd.read_csv("input.csv"))
"""


def zip_folder(folder: Path, zip_path: Path) -> None:
    """Zip a bundle folder: regular files only, in a fixed order with fixed dates,
    wheels stored as they are (already compressed)."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name in [MANIFEST, *sorted(set(_relative_files(folder)) - {MANIFEST})]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.compress_type = (
                zipfile.ZIP_STORED if name.endswith(".whl") else zipfile.ZIP_DEFLATED
            )
            with (folder / name).open("rb") as src, archive.open(info, "w") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def verify_bundle(path: Path) -> dict[str, Any]:
    """Check a bundle folder or .zip against its manifest and its signature; see
    `bundle_runtime.verify`. Adds `signer` (see `signing.signer`): who signed it."""
    if not (path.exists() or path.is_symlink()):
        raise NotFoundError(f"{path}: no such bundle")
    with runtime_errors():
        result = bundle_runtime.verify(path)
    result["signer"] = signing.signer(result["signature"])
    return result


def load_bundle(path: Path, trust: bool = False) -> bundle_runtime.Bundle:
    """Verify, then load a bundle; refused bundles raise a WorkbenchError. Only a
    bundle signed by this store or a trusted key is loaded, unless `trust`."""
    if not (path.exists() or path.is_symlink()):
        raise NotFoundError(f"{path}: no such bundle")

    def accept(result: dict[str, Any]) -> None:
        who = signing.signer(result["signature"])
        if not (who["trusted"] or trust):
            raise bundle_runtime.BundleError(
                f"refused {path}: {signing.refusal(who)}; pass --trust to load it anyway"
            )

    with runtime_errors():
        return bundle_runtime.load(path, accept=accept)


def _relative_files(folder: Path) -> list[str]:
    return sorted(
        Path(root, name).relative_to(folder).as_posix()
        for root, _, names in os.walk(folder)
        for name in names
    )


def _sha256(path: Path) -> str:
    return sha256_file(path)


def _python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _platform() -> str:
    return f"{platform.system().lower()} {platform.machine()}"
