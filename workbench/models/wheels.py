"""A bundle's pinned requirements, and the wheels for them found without a network.

The pins are the exact versions installed here of what the bundle's runtime
imports and of what the saved model is made of (every type a skops file
records, mapped from its top-level module to the distribution that provides it:
lightgbm for an LGBMClassifier inside a scikit-learn Pipeline), plus everything
those need (from each distribution's metadata, with environment markers
evaluated for this interpreter).

Wheels come from folders the user names, from the local wheel folders and
`file://` indexes pip is configured with (`find-links`, `index-url`,
`extra-index-url`: what an air-gapped machine's mirror looks like), and from
pip's own cache: its `wheels/` folder of locally built wheels, and its HTTP
cache (`http-v2/`, older `http/`), whose entries hold downloaded wheel bodies
under hashed names. Those are recognised by opening them as zips and reading
the wheel's own METADATA and WHEEL files. Nothing is downloaded.
"""

from __future__ import annotations

import html.parser
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from workbench.core.errors import WorkbenchError

# What wb_runtime.py imports, by framework: pandas/numpy always, pyarrow for
# Parquet, starlette/uvicorn to serve.
RUNTIME_PACKAGES = ("numpy", "pandas", "pyarrow", "starlette", "uvicorn")
FRAMEWORK_PACKAGES = {
    "lightgbm": ("lightgbm",),
    "sklearn": ("scikit-learn", "scipy", "skops"),
}
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_MAX_SKOPS_SCHEMA = 64 << 20


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503) name
    version: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def model_types(framework: str, model_path: Path | None) -> list[str]:
    """The dotted names of the types a saved model is made of: for skops, every
    type its schema records (the ones skops trusts by default among them, which
    `skops.io.get_untrusted_types` leaves out); for LightGBM's text model, the
    Booster."""
    if framework == "lightgbm" or model_path is None:
        return ["lightgbm.basic.Booster"] if framework == "lightgbm" else []
    import skops.io

    try:
        with zipfile.ZipFile(model_path) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > _MAX_SKOPS_SCHEMA:
                raise WorkbenchError(f"{model_path}: its skops schema is over 64 MB")
            schema = json.loads(archive.read(info))
        untrusted = skops.io.get_untrusted_types(file=model_path)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise WorkbenchError(f"cannot read the types of {model_path}: {exc}") from exc
    return sorted(set(untrusted) | set(_recorded_types(schema)))


def _recorded_types(node: Any) -> Iterable[str]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module, name = item.get("__module__"), item.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                yield f"{module}.{name}"
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# Reading every installed distribution's file list takes 0.2-0.6 s; a process that
# exports several bundles (the watcher, a pipeline exporting two formats) reads it once,
# and again only when a module is not found in it.
_PROVIDED: dict[str, list[str]] | None = None


def _packages_distributions(fresh: bool = False) -> dict[str, list[str]]:
    global _PROVIDED
    if fresh or _PROVIDED is None:
        _PROVIDED = dict(metadata.packages_distributions())
    return _PROVIDED


def _forget_provided() -> None:
    global _PROVIDED
    _PROVIDED = None


_packages_distributions.cache_clear = _forget_provided  # type: ignore[attr-defined]


def model_distributions(framework: str, model_path: Path | None) -> list[str]:
    """The installed distributions (canonical names) that provide the model's types,
    besides the framework's own packages; a type from a module that no installed
    distribution provides is an error naming it."""
    provided = _packages_distributions()
    found = set(FRAMEWORK_PACKAGES.get(framework, ()))
    for dotted in model_types(framework, model_path):
        top = dotted.split(".")[0]
        if top in sys.stdlib_module_names or top == "builtins":
            continue
        names = provided.get(top)
        if not names:  # installed since it was read (a long-running watcher)?
            provided = _packages_distributions(fresh=True)
            names = provided.get(top)
        if not names:
            raise WorkbenchError(
                f"the model holds {dotted}, but no installed distribution provides the "
                f"module {top!r}, so its requirements cannot be pinned"
            )
        found.update(canonicalize_name(n) for n in names)
    return sorted(canonicalize_name(n) for n in found)


def pinned_requirements(framework: str, model_path: Path | None = None) -> list[Pin]:
    """Exact versions of the runtime's packages, of the distributions the model at
    `model_path` is made of (see `model_distributions`) and of their runtime
    dependencies, as installed in this environment."""
    if framework not in FRAMEWORK_PACKAGES:
        raise WorkbenchError(f"cannot bundle a {framework!r} model")
    wanted = (*RUNTIME_PACKAGES, *model_distributions(framework, model_path))
    todo = [Requirement(name) for name in wanted]
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


def pip_local_sources() -> tuple[list[Path], list[Path]]:
    """(wheel folders, `file://` simple indexes) from pip's own configuration and
    environment (`find-links`, `index-url`, `extra-index-url`); remote URLs are
    left out, since nothing is downloaded."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return [], []
    folders: list[Path] = []
    indexes: list[Path] = []
    for line in result.stdout.splitlines() if result.returncode == 0 else []:
        key, _, value = line.partition("=")
        option = key.rpartition(".")[2]
        if option not in ("find-links", "index-url", "extra-index-url"):
            continue
        for item in value.strip().strip("'\"").split():
            local = _local_path(item)
            if local is None or not local.is_dir():
                continue
            target = folders if option == "find-links" else indexes
            if local not in target:
                target.append(local)
    return folders, indexes


def _local_path(location: str) -> Path | None:
    if "://" not in location:
        return Path(location).expanduser()
    parsed = urlparse(location)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def index_wheels(index: Path, names: Iterable[str]) -> list[Candidate]:
    """The wheels a local (`file://`) PEP 503 simple index lists for `names`."""
    found = []
    for name in names:
        page = index / canonicalize_name(name) / "index.html"
        if not page.is_file():
            continue
        links = _Links()
        links.feed(page.read_text(errors="replace"))
        base = page.resolve().as_uri()
        for href in links.hrefs:
            target = urlparse(urljoin(base, href))
            filename = unquote(target.path.rsplit("/", 1)[-1])
            path = Path(unquote(target.path))
            if target.scheme == "file" and filename.endswith(".whl") and path.is_file():
                found.append(Candidate(filename, path, None, str(index)))
    return found


def candidates(
    wheelhouses: list[Path],
    cache: Path | None,
    indexes: list[Path] | None = None,
    names: Iterable[str] = (),
) -> list[Candidate]:
    """Every wheel in the wheelhouses (by file name), those the local `indexes`
    list for `names`, then those in pip's cache."""
    found: list[Candidate] = []
    for house in wheelhouses:
        for path in sorted(house.glob("*.whl")):
            found.append(Candidate(path.name, path, None, str(house)))
    for index in indexes or []:
        found += index_wheels(index, names)
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
    pins: list[Pin],
    wheelhouses: list[Path],
    target: Path,
    cache: Path | None = None,
    indexes: list[Path] | None = None,
) -> list[dict[str, str]]:
    """Copy a wheel for every pin into `target`, from `wheelhouses`, local simple
    `indexes` and pip's cache `cache`; a missing one is an error naming it and
    where it was looked for."""
    found = candidates(wheelhouses, cache, indexes, [pin.name for pin in pins])
    chosen, wrong_platform = _choose(pins, found)
    missing = [pin for pin in pins if pin not in chosen]
    if missing:
        places = [str(h) for h in [*wheelhouses, *(indexes or [])]] + (
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
