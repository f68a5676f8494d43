"""A bundle's pinned requirements, and the wheels for them found without a network.

The pins are the exact versions installed here of what the bundle's runtime
imports, plus everything those need (from each distribution's metadata, with
environment markers evaluated for this interpreter). Wheels come from folders
the user names and from pip's own cache: its `wheels/` folder of locally built
wheels, and its HTTP cache (`http-v2/`, older `http/`), whose entries hold
downloaded wheel bodies under hashed names. Those are recognised by opening
them as zips and reading the wheel's own METADATA and WHEEL files.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from workbench.errors import WorkbenchError

# What wb_runtime.py imports, by framework: pandas/numpy always, pyarrow for
# Parquet, starlette/uvicorn to serve.
RUNTIME_PACKAGES = ("numpy", "pandas", "pyarrow", "starlette", "uvicorn")
FRAMEWORK_PACKAGES = {
    "lightgbm": ("lightgbm",),
    "sklearn": ("scikit-learn", "scipy", "skops"),
}
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503) name
    version: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def pinned_requirements(framework: str) -> list[Pin]:
    """Exact versions of the runtime's packages and their runtime dependencies, as
    installed in this environment."""
    if framework not in FRAMEWORK_PACKAGES:
        raise WorkbenchError(f"cannot bundle a {framework!r} model")
    todo = [Requirement(name) for name in (*RUNTIME_PACKAGES, *FRAMEWORK_PACKAGES[framework])]
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise WorkbenchError(
                f"the bundle needs {requirement}, which is not installed here"
            ) from exc
        pins[name] = distribution.version
        extras = [{"extra": extra} for extra in (requirement.extras or {""})]
        for text in distribution.requires or []:
            dependency = Requirement(text)
            if dependency.marker is None or any(dependency.marker.evaluate(e) for e in extras):
                todo.append(dependency)
    return [Pin(name, version) for name, version in sorted(pins.items())]


def pip_cache_dir() -> Path | None:
    """pip's cache folder as pip itself reports it (it honours PIP_CACHE_DIR and
    pip's config); None when pip is missing or its cache is off."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "cache", "dir"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        return None
    return Path(lines[-1].strip())


@dataclass(frozen=True)
class Candidate:
    """A wheel found somewhere: its proper file name and where its bytes are."""

    filename: str
    path: Path
    span: tuple[int, int] | None  # (start, end) of the wheel inside a cache entry
    source: str

    @property
    def parsed(self) -> tuple[Any, Version, Any, frozenset]:
        return parse_wheel_filename(self.filename)


def _zip_span(path: Path) -> tuple[int, int] | None:
    """Where a zip lies inside `path` (a cache entry may wrap it in other bytes),
    from its end-of-central-directory record; None when there is no zip."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            fh.seek(max(0, size - 65536 - _EOCD_SIZE))
            tail = fh.read()
    except OSError:
        return None
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        return None
    *_, cd_size, cd_offset, comment = struct.unpack("<4s4H2LH", tail[at : at + _EOCD_SIZE])
    eocd = size - len(tail) + at
    start, end = eocd - cd_size - cd_offset, eocd + _EOCD_SIZE + comment
    return (start, end) if 0 <= start < end <= size else None


def wheel_filename(archive: zipfile.ZipFile) -> str | None:
    """The file name a wheel should have, rebuilt from its .dist-info METADATA and
    WHEEL (name, version, build tag, compressed tag set); None if not a wheel."""
    names = archive.namelist()
    infos = {n.split("/")[0] for n in names if n.count("/") == 1 and ".dist-info/" in n}
    for info in sorted(infos):
        if f"{info}/METADATA" not in names or f"{info}/WHEEL" not in names:
            continue
        parser = HeaderParser()
        meta = parser.parsestr(archive.read(f"{info}/METADATA").decode("utf-8", "replace"))
        wheel = parser.parsestr(archive.read(f"{info}/WHEEL").decode("utf-8", "replace"))
        tags = [t.strip().split("-") for t in wheel.get_all("Tag", []) if t.count("-") == 2]
        if not (meta["Name"] and meta["Version"] and tags):
            continue
        parts = [".".join(dict.fromkeys(tag[i] for tag in tags)) for i in range(3)]
        build = f"-{wheel['Build'].strip()}" if wheel["Build"] else ""
        name = canonicalize_name(meta["Name"]).replace("-", "_")
        filename = f"{name}-{meta['Version'].strip()}{build}-{'-'.join(parts)}.whl"
        try:
            parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            return None
        return filename
    return None


def _cached_wheel(path: Path, source: str) -> Candidate | None:
    span = _zip_span(path)
    if span is None:
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            filename = wheel_filename(archive)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return None
    return Candidate(filename, path, span, source) if filename else None


def candidates(wheelhouses: list[Path], cache: Path | None) -> list[Candidate]:
    """Every wheel in the wheelhouses (by file name), then in pip's cache."""
    found: list[Candidate] = []
    for house in wheelhouses:
        for path in sorted(house.glob("*.whl")):
            found.append(Candidate(path.name, path, None, str(house)))
    if cache is None:
        return found
    for path in sorted((cache / "wheels").rglob("*.whl")):
        found.append(Candidate(path.name, path, None, f"{cache / 'wheels'}"))
    for folder in ("http-v2", "http"):
        for root, _, files in os.walk(cache / folder):
            for file in sorted(files):
                # http-v2 keeps bodies apart in `.body` files; http keeps them inside.
                if folder == "http-v2" and not file.endswith(".body"):
                    continue
                candidate = _cached_wheel(Path(root, file), str(cache / folder))
                if candidate:
                    found.append(candidate)
    return found


def _choose(pins: list[Pin], found: list[Candidate]) -> tuple[dict[Pin, Candidate], list[str]]:
    """The most specific compatible wheel per pin, and wheels that matched a pin
    but not this interpreter."""
    priority = {str(tag): i for i, tag in enumerate(sys_tags())}
    best: dict[Pin, tuple[int, Candidate]] = {}
    wrong_platform: list[str] = []
    wanted = {pin.name: pin for pin in pins}
    for candidate in found:
        try:
            name, version, _, tags = candidate.parsed
        except (InvalidWheelFilename, InvalidVersion):
            continue
        pin = wanted.get(canonicalize_name(name))
        if pin is None or version != Version(pin.version):
            continue
        rank = min((priority[str(t)] for t in tags if str(t) in priority), default=None)
        if rank is None:
            wrong_platform.append(candidate.filename)
        elif pin not in best or rank < best[pin][0]:
            best[pin] = (rank, candidate)
    return {pin: c for pin, (_, c) in best.items()}, wrong_platform


def collect_wheels(
    pins: list[Pin], wheelhouses: list[Path], target: Path, cache: Path | None = None
) -> list[dict[str, str]]:
    """Copy a wheel for every pin into `target`, from `wheelhouses` and pip's cache
    `cache`; a missing one is an error naming it and where it was looked for."""
    found = candidates(wheelhouses, cache)
    chosen, wrong_platform = _choose(pins, found)
    missing = [pin for pin in pins if pin not in chosen]
    if missing:
        places = [str(h) for h in wheelhouses] + (
            [f"pip's cache {cache}"] if cache else ["(no pip cache found)"]
        )
        hint = ""
        if wrong_platform:
            hint = f" Found only for another Python or platform: {', '.join(wrong_platform)}."
        raise WorkbenchError(
            f"no wheel for {', '.join(map(str, missing))} (Python "
            f"{sys.version_info.major}.{sys.version_info.minor}, {next(iter(sys_tags()))}); "
            f"looked in: {', '.join(places)}.{hint} On a machine with network access run "
            f"`pip download --only-binary :all: --no-deps -d WHEELHOUSE "
            f"{' '.join(map(str, missing))}` and pass --wheelhouse WHEELHOUSE."
        )
    target.mkdir(parents=True, exist_ok=True)
    report = []
    for pin in pins:
        candidate = chosen[pin]
        _copy(candidate, target / candidate.filename)
        report.append(
            {"requirement": str(pin), "file": candidate.filename, "from": candidate.source}
        )
    return report


def _copy(candidate: Candidate, dest: Path) -> None:
    if candidate.span is None:
        shutil.copyfile(candidate.path, dest)
        return
    start, end = candidate.span
    with candidate.path.open("rb") as src, dest.open("wb") as out:
        src.seek(start)
        left = end - start
        while left > 0:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)
    with zipfile.ZipFile(dest) as archive:
        if wheel_filename(archive) != dest.name:
            raise WorkbenchError(f"the wheel taken from {candidate.path} does not read back")
