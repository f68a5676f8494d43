"""The offline installer kit: a folder of wheels (workbench and every dependency
it needs on this platform and Python), `install.sh` and a README.txt.

The dependencies are the distributions installed here, found by walking
workbench-mlops's requirements (and the chosen extras) with their markers, and
pinned to the versions installed, so the kit installs what this machine runs.
Wheels come from `--from DIR` when given, else from `pip download`. The
workbench wheel itself is taken from DIR when it has one, else packed from the
installed package (an editable install included), as hatch would build it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from workbench.core.errors import UsageError, WorkbenchError
from workbench.core.version import __version__

DISTRIBUTION = "workbench-mlops"
KNOWN_EXTRAS = ("onnx", "mlflow")
WHEELS = "wheels"
# What `python -m venv` provides: never pinned into the kit.
PROVIDED = frozenset({"pip", "setuptools", "wheel"})


class KitError(WorkbenchError):
    """Wheels the kit needs could not be found or downloaded (exit 1)."""

    title = "Offline kit incomplete"


def make_kit(output: Path, *, wheelhouse: Path | None = None, extras: str = "") -> dict[str, Any]:
    """Make the kit in `output` (absent or empty), through a temporary folder
    renamed on success; returns a summary."""
    chosen = _extras(extras)
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UsageError(f"-o {output}: exists and is not an empty folder")
    if not output.parent.is_dir():
        raise UsageError(f"-o {output}: its folder {output.parent} does not exist")
    pins = requirements(chosen)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        wheels = staging / WHEELS
        wheels.mkdir()
        missing = _from_wheelhouse(wheelhouse, pins, wheels) if wheelhouse else dict(pins)
        if missing and wheelhouse is None:
            missing = _download(missing, wheels)
        if missing:
            shown = ", ".join(f"{n}=={v}" for n, v in sorted(missing.items()))
            where = f"in {wheelhouse}" if wheelhouse else "from the package index (pip download)"
            raise KitError(
                f"no wheel for this platform and Python {where} for {len(missing)}"
                f" distribution(s): {shown}; add them to the wheelhouse (pip download -d DIR"
                " NAME==VERSION on a connected machine) and run again"
            )
        if not any(canonicalize_name(_name_of(p)) == DISTRIBUTION for p in wheels.iterdir()):
            pack_workbench_wheel(wheels)
        _write_scripts(staging, chosen)
        if output.exists():
            output.rmdir()
        os.rename(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {
        "folder": str(output),
        "wheels": sum(1 for _ in (output / WHEELS).iterdir()),
        "extras": list(chosen),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def _extras(extras: str) -> tuple[str, ...]:
    chosen = tuple(e.strip() for e in extras.split(",") if e.strip())
    for extra in chosen:
        if extra not in KNOWN_EXTRAS:
            raise UsageError(
                f"--extras: unknown extra {extra!r}; expected some of {', '.join(KNOWN_EXTRAS)}"
            )
    return chosen


def requirements(extras: tuple[str, ...] = ()) -> dict[str, str]:
    """Canonical name -> installed version of every distribution workbench-mlops
    (with `extras`) needs here, found through the installed metadata."""
    pins: dict[str, str] = {}
    pending: list[tuple[str, frozenset[str]]] = [(DISTRIBUTION, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, wanted = pending.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise KitError(f"{name} is needed but not installed here") from None
        if name in PROVIDED:
            continue
        if name != DISTRIBUTION:
            pins[canonicalize_name(name)] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            contexts = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(c) for c in contexts):
                continue
            target = canonicalize_name(req.name)
            if target == DISTRIBUTION:  # an extra naming the project's own extras
                pending.append((DISTRIBUTION, frozenset(req.extras) | wanted))
            else:
                pending.append((target, frozenset(req.extras)))
    return pins


def _name_of(wheel: Path) -> str:
    try:
        return str(parse_wheel_filename(wheel.name)[0])
    except Exception:
        return ""


def _from_wheelhouse(source: Path, pins: dict[str, str], dest: Path) -> dict[str, str]:
    """Copy the wheel of each pin that `source` has for this platform; returns the rest.
    A workbench-mlops wheel of this version is taken too."""
    supported = set(sys_tags())
    found: dict[str, Path] = {}
    for wheel in sorted(source.glob("*.whl")):
        try:
            name, version, _, tags = parse_wheel_filename(wheel.name)
        except Exception:
            continue
        wanted = __version__ if name == DISTRIBUTION else pins.get(name)
        if wanted is None or str(version) != wanted or not (set(tags) & supported):
            continue
        found.setdefault(name, wheel)
    for wheel in found.values():
        shutil.copy2(wheel, dest / wheel.name)
    return {n: v for n, v in pins.items() if n not in found}


def _download(pins: dict[str, str], dest: Path) -> dict[str, str]:
    """`pip download` the pinned wheels (binary only, no dependencies: the pins
    are the whole set); returns what is still missing."""
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--only-binary=:all:", "--retries", "1", "--timeout", "30", "-d", str(dest),
        *(f"{n}=={v}" for n, v in sorted(pins.items())),
    ]  # fmt: skip
    try:
        subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return pins
    have = {canonicalize_name(_name_of(p)) for p in dest.glob("*.whl")}
    return {n: v for n, v in pins.items() if n not in have}


def pack_workbench_wheel(dest: Path) -> Path:
    """A wheel of the installed workbench package, laid out as the project's hatch
    build makes it (the sample projects inside as workbench/_sample_projects)."""
    import workbench.core as core

    package = Path(core.__file__).resolve().parent.parent
    dist = metadata.distribution(DISTRIBUTION)
    tag = f"{DISTRIBUTION.replace('-', '_')}-{dist.version}"
    wheel = dest / f"{tag}-py3-none-any.whl"
    records: list[str] = []

    def add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
        zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        records.append(f"{name},sha256={digest},{len(data)}")

    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in _package_files(package):
            add(zf, "workbench/" + path.relative_to(package).as_posix(), path.read_bytes())
        samples = package.parent / "sample_projects"
        if not (package / "_sample_projects").is_dir() and samples.is_dir():
            for path in _package_files(samples):
                rel = path.relative_to(samples).as_posix()
                add(zf, f"workbench/_sample_projects/{rel}", path.read_bytes())
        info = f"{tag}.dist-info"
        add(zf, f"{info}/METADATA", (dist.read_text("METADATA") or "").encode())
        add(zf, f"{info}/entry_points.txt", (dist.read_text("entry_points.txt") or "").encode())
        add(
            zf,
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: workbench offline-kit\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        )
        records.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return wheel


def _package_files(root: Path) -> list[Path]:
    skip = re.compile(r"(__pycache__|\.pyc$|\.pyo$|/\.)")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and not skip.search("/" + p.relative_to(root).as_posix())
    )


INSTALL_SH = """#!/bin/sh
# Installs workbench from the wheels beside this script, with no network:
#   sh install.sh            (into ./.venv)
#   PYTHON=python3.11 sh install.sh
set -eu
cd "$(dirname "$0")"
PYTHON=${{PYTHON:-python3}}
want={python}
have=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$have" != "$want" ]; then
  echo "error: these wheels are for Python $want; $PYTHON is $have (set PYTHON=python$want)" >&2
  exit 2
fi
"$PYTHON" -m venv .venv && .venv/bin/pip install --no-index --find-links wheels '{target}'
echo "installed: $(pwd)/.venv/bin/workbench"
"""

README_TXT = """Workbench {version}: offline installer kit
======================================

Made for Python {python} on {platform}. Contents:
  wheels/      workbench-mlops and every dependency ({count} wheels)
  install.sh   makes .venv here and installs from wheels/ with --no-index
  README.txt   this file

Moving it to a machine with no network:
  1. Copy the whole folder (e.g. tar czf kit.tgz KIT, then a USB stick or scp
     through a jump host). The target needs Python {python} (python3 -m venv
     must work: on Debian/Ubuntu, the python3-venv package) and the same
     platform ({platform}).
  2. On the target: sh install.sh   (or PYTHON=/path/to/python{python} sh install.sh)
  3. Check it: .venv/bin/workbench doctor
  4. To move your work too: `workbench backup -o store.zip` on the old machine,
     then `WORKBENCH_HOME=/new/empty/folder .venv/bin/workbench restore store.zip`.

pip never reaches the network here (--no-index); a missing wheel is named by
pip as "No matching distribution found".
"""


def _write_scripts(folder: Path, extras: tuple[str, ...]) -> None:
    import sysconfig

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = DISTRIBUTION + (f"[{','.join(extras)}]" if extras else "")
    script = folder / "install.sh"
    script.write_text(INSTALL_SH.format(python=python, target=target))
    script.chmod(0o755)
    (folder / "README.txt").write_text(
        README_TXT.format(
            version=__version__,
            python=python,
            platform=sysconfig.get_platform(),
            count=sum(1 for _ in (folder / WHEELS).iterdir()),
        )
    )
