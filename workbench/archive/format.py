"""The archive file: a zip holding `manifest.json`, its signature `manifest.sig`,
the records as JSON lines under `records/`, and files by content under `blobs/`.

    manifest.json          format, format_version, workbench_version, store_id,
                           created_at, watermark, since, destination, projects,
                           include, counts, members [{name, size, sha256}],
                           wheels [{file, sha256, requirement}] (with wheels)
    manifest.sig           Ed25519 over the exact bytes of manifest.json
    records/<table>.jsonl  one JSON object per line (see TABLES)
    records/metric_series.jsonl, records/metrics.jsonl
                           one line per series, in the same order: its run,
                           key and count; then its steps, times and values
    blobs/<sha256>         an artifact, model file, dataset file or wheel, stored once

Format version 2 added runs' notes and archive times (in runs.jsonl), their
tags (`records/run_tags.jsonl`) and wheels; version 1 archives still import.

An archive is untrusted input: `read_archive` checks the manifest, every
member's name, type, size, compression ratio and SHA-256, and the signature
before the caller writes anything; each refusal is a UsageError naming what
is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from workbench.core import env
from workbench.core.errors import NotFoundError, UsageError
from workbench.core.version import __version__
from workbench.models import bundle_runtime, signing

FORMAT = "workbench-archive"
FORMAT_VERSION = 2
# What this workbench reads: version 1 lacks tags, notes and wheels, nothing more.
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SUFFIX = ".wbx"
TABLES = (
    "projects",
    "runs",
    "run_tags",
    "params",
    "artifacts",
    "resources",
    "events",
    "dataset_versions",
    "run_datasets",
    "model_versions",
    "model_aliases",
    "promotions",
    "pipelines",
    "metric_series",
    "metrics",
)
INCLUDE = ("artifacts", "models", "datasets", "wheels")
DEFAULT_INCLUDE = ("artifacts", "models")

_MB = 1 << 20
_CHUNK = 1 << 20
# The limits of a bundle load (and their environment variables): the largest
# member, the largest total, the highest compression ratio of a member.
DEFAULT_MAX_TOTAL_MB = bundle_runtime.DEFAULT_MAX_BUNDLE_MB
DEFAULT_MAX_FILE_MB = bundle_runtime.DEFAULT_MAX_FILE_MB
DEFAULT_MAX_RATIO = bundle_runtime.DEFAULT_MAX_RATIO
RATIO_FREE_BYTES = bundle_runtime.RATIO_FREE_BYTES
MAX_MANIFEST_BYTES = 16 * _MB
MAX_SIGNATURE_BYTES = 16 << 10
MAX_MEMBERS = 500_000
_BLOB = re.compile(r"blobs/[0-9a-f]{64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
# A wheel's file name: name-version(-build)-python-abi-platform.whl, no path.
_WHEEL_FILE = re.compile(r"[A-Za-z0-9_.+!-]{1,200}\.whl")


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Wheel:
    """A wheel an archive carries for serving its models: its file name, the
    blob holding it and the pinned requirement it satisfies."""

    file: str
    sha256: str
    requirement: str


@dataclass(frozen=True, slots=True)
class Archive:
    """A verified archive: its manifest, who signed it, its records (bytes of each
    `records/` member) and the blobs it holds (written to `blob_dir` when given)."""

    path: Path
    manifest: dict[str, Any]
    signer: dict[str, Any]
    members: tuple[Member, ...]
    records: dict[str, bytes] = field(default_factory=dict)

    @property
    def blobs(self) -> list[str]:
        return [m.name.split("/", 1)[1] for m in self.members if m.name.startswith("blobs/")]

    def lines(self, table: str) -> list[dict[str, Any]]:
        """The records of `table`, each line a JSON object."""
        out = []
        for number, line in enumerate(self.records.get(table, b"").splitlines(), 1):
            if not line.strip():
                continue
            out.append(parse_line(self.path, table, number, line))
        return out


def parse_line(path: Path, table: str, number: int, line: bytes) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        raise UsageError(f"{path}: records/{table}.jsonl line {number} is not JSON") from None
    if not isinstance(row, dict):
        raise UsageError(f"{path}: records/{table}.jsonl line {number} is not an object")
    return row


def _limit_mb(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default * _MB
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"${variable}={raw!r}: expected a number of megabytes") from None
    if not value > 0:
        raise UsageError(f"${variable}={raw!r}: expected a positive number of megabytes")
    return int(value * _MB)


def _max_ratio() -> float:
    raw = os.environ.get(env.MAX_ZIP_RATIO, "").strip()
    try:
        return float(raw) if raw else float(DEFAULT_MAX_RATIO)
    except ValueError:
        raise UsageError(f"${env.MAX_ZIP_RATIO}={raw!r}: expected a number") from None


def member_problem(name: str) -> str | None:
    """Why `name` cannot be a member of an archive, None if it can."""
    if not name or len(name) > 1024:
        return "has an empty or overlong name"
    if "\x00" in name or "\\" in name:
        return "has a NUL or backslash in its name"
    if name.startswith("/"):
        return "is an absolute path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "has an empty, '.' or '..' part in its path"
    if name.startswith("records/"):
        if name.removeprefix("records/").removesuffix(".jsonl") not in TABLES or not name.endswith(
            ".jsonl"
        ):
            return "is not one of the record files an archive holds"
        return None
    if not _BLOB.fullmatch(name):
        return "is outside what an archive holds (records/*.jsonl, blobs/<sha256>)"
    return None


def read_archive(
    source: Path,
    *,
    blob_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Archive:
    """Check the archive at `source` from end to end and return it; with
    `blob_dir`, its blobs are written there (named by SHA-256) as they are
    checked. Nothing is written outside `blob_dir`."""
    source = Path(source)
    max_file = _limit_mb(env.MAX_FILE_MB, DEFAULT_MAX_FILE_MB)
    max_total = _limit_mb(env.MAX_BUNDLE_MB, DEFAULT_MAX_TOTAL_MB)
    ratio = _max_ratio()
    try:
        st = source.lstat()
    except FileNotFoundError:
        raise NotFoundError(f"{source}: no such archive") from None
    except OSError as exc:
        raise UsageError(f"{source}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{source}: not a regular file; expected an archive (.wbx)")
    if st.st_size > max_total + MAX_MANIFEST_BYTES:
        raise UsageError(
            f"{source}: {st.st_size / _MB:.0f} MB, over the {max_total // _MB} MB limit"
            f" (raise ${env.MAX_BUNDLE_MB} to allow it)"
        )
    try:
        with zipfile.ZipFile(source) as zf:
            raw, manifest, members = _manifest(source, zf)
            signer = _signature(source, zf, raw)
            _check_members(source, zf, members, max_file, max_total, ratio)
            records = _read_members(source, zf, members, blob_dir, progress)
    except zipfile.BadZipFile as exc:
        raise UsageError(f"{source}: not a readable archive ({exc})") from None
    except (zlib.error, EOFError) as exc:
        raise UsageError(f"{source}: damaged ({exc})") from None
    except NotImplementedError as exc:
        raise UsageError(f"{source}: unsupported zip feature ({exc})") from None
    except OSError as exc:
        raise UsageError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    return Archive(source, manifest, signer, tuple(members), records)


def _manifest(source: Path, zf: zipfile.ZipFile) -> tuple[bytes, dict[str, Any], list[Member]]:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise UsageError(f"{source}: no {MANIFEST}; not a workbench archive") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise UsageError(f"{source}: {MANIFEST} is over {MAX_MANIFEST_BYTES // _MB} MB")
    with zf.open(info) as fh:
        raw = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise UsageError(f"{source}: {MANIFEST} is over {MAX_MANIFEST_BYTES // _MB} MB")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UsageError(f"{source}: {MANIFEST} is not valid JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UsageError(f'{source}: not a workbench archive (no "format": "{FORMAT}")')
    version = document.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise UsageError(
            f"{source}: archive format version {str(version)[:20]}; this workbench"
            f" ({__version__}) reads format version"
            f" {' and '.join(map(str, READABLE_VERSIONS))}"
        )
    listed = document.get("members")
    if not isinstance(listed, list) or len(listed) > MAX_MEMBERS:
        raise UsageError(f'{source}: {MANIFEST}: "members" must be a list of at most {MAX_MEMBERS}')
    members: list[Member] = []
    seen: set[str] = set()
    for entry in listed:
        if not isinstance(entry, dict):
            raise UsageError(f"{source}: {MANIFEST}: each member must be an object")
        name, size, digest = entry.get("name"), entry.get("size"), entry.get("sha256")
        if not isinstance(name, str):
            raise UsageError(f"{source}: {MANIFEST}: a member has no name")
        problem = member_problem(name)
        if problem:
            raise UsageError(f"{source}: member {name[:200]!r} {problem}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise UsageError(f"{source}: {MANIFEST}: member {name!r} has no valid size")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise UsageError(f"{source}: {MANIFEST}: member {name!r} has no valid sha256")
        if name.startswith("blobs/") and name != f"blobs/{digest}":
            raise UsageError(f"{source}: member {name!r} is not named by its sha256")
        if name in seen:
            raise UsageError(f"{source}: {MANIFEST} lists {name!r} twice")
        seen.add(name)
        members.append(Member(name, size, digest))
    _wheels(source, document, seen)
    return raw, document, members


def _wheels(source: Path, document: dict[str, Any], members: set[str]) -> list[Wheel]:
    listed = document.get("wheels", [])
    if not isinstance(listed, list) or len(listed) > MAX_MEMBERS:
        raise UsageError(f'{source}: {MANIFEST}: "wheels" must be a list')
    out: list[Wheel] = []
    names: set[str] = set()
    for entry in listed:
        if not isinstance(entry, dict):
            raise UsageError(f"{source}: {MANIFEST}: each wheel must be an object")
        file, digest, requirement = entry.get("file"), entry.get("sha256"), entry.get("requirement")
        if not isinstance(file, str) or not _WHEEL_FILE.fullmatch(file) or file.startswith("."):
            raise UsageError(
                f"{source}: {MANIFEST}: wheel {str(file)[:200]!r} is not a wheel's file name"
            )
        if file in names:
            raise UsageError(f"{source}: {MANIFEST} lists wheel {file!r} twice")
        names.add(file)
        if not isinstance(digest, str) or f"blobs/{digest}" not in members:
            raise UsageError(
                f"{source}: {MANIFEST}: wheel {file!r} names no blob the archive holds"
            )
        if not isinstance(requirement, str) or len(requirement) > 300:
            raise UsageError(f"{source}: {MANIFEST}: wheel {file!r} has no requirement")
        out.append(Wheel(file, digest, requirement))
    return out


def wheels(archive: Archive) -> list[Wheel]:
    """The wheels the archive carries (checked when it was read)."""
    return _wheels(archive.path, archive.manifest, {m.name for m in archive.members})


def _signature(source: Path, zf: zipfile.ZipFile, manifest: bytes) -> dict[str, Any]:
    try:
        info = zf.getinfo(SIGNATURE)
    except KeyError:
        return {"signer": "unsigned", "trusted": False, "fingerprint": None}
    if info.file_size > MAX_SIGNATURE_BYTES:
        raise UsageError(f"{source}: {SIGNATURE} is too large for a signature")
    with zf.open(info) as fh:
        data = fh.read(MAX_SIGNATURE_BYTES + 1)
    try:
        key, signature = bundle_runtime.parse_signature(data)
    except ValueError as exc:
        raise UsageError(f"{source}: {SIGNATURE} is not a signature ({exc})") from None
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, manifest)
    except InvalidSignature:
        raise UsageError(
            f"{source}: bad signature: {SIGNATURE} does not match {MANIFEST}"
            " (changed after it was signed)"
        ) from None
    who = signing.signer({"status": "valid", "fingerprint": bundle_runtime.key_fingerprint(key)})
    return {**who, "public_key": base64.b64encode(key).decode()}


def _check_members(
    source: Path,
    zf: zipfile.ZipFile,
    members: list[Member],
    max_file: int,
    max_total: int,
    ratio: float,
) -> None:
    """The zip holds exactly the manifest's members (besides the manifest and its
    signature), each a regular file of the declared size within the limits."""
    listed = {m.name: m for m in members}
    found: set[str] = set()
    for info in zf.infolist():
        name = info.filename
        if name in found:
            raise UsageError(f"{source}: member {name[:200]!r} appears twice")
        found.add(name)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if info.is_dir() or (kind and kind != stat.S_IFREG):
            what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file"
            raise UsageError(f"{source}: member {name[:200]!r} is {what}")
        if name in (MANIFEST, SIGNATURE):
            continue
        problem = member_problem(name)
        if problem:
            raise UsageError(f"{source}: member {name[:200]!r} {problem}")
        member = listed.get(name)
        if member is None:
            raise UsageError(f"{source}: member {name!r} is not in {MANIFEST}")
        if info.file_size != member.size:
            raise UsageError(
                f"{source}: member {name!r} holds {info.file_size} bytes; {MANIFEST} says"
                f" {member.size}"
            )
        if member.size > max_file:
            raise UsageError(
                f"{source}: member {name!r} is {member.size / _MB:.0f} MB, over the"
                f" {max_file // _MB} MB limit (raise ${env.MAX_FILE_MB} to allow it)"
            )
        expands = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FREE_BYTES and expands > ratio:
            raise UsageError(
                f"{source}: member {name!r} expands {expands:.0f}"
                f" times, over the ratio limit {ratio:g} (a zip bomb?; raise"
                f" ${env.MAX_ZIP_RATIO} to allow it)"
            )
    missing = sorted(set(listed) - found)
    if missing:
        raise UsageError(f"{source}: member {missing[0]!r} is in {MANIFEST} but not in the file")
    total = sum(m.size for m in members)
    if total > max_total:
        raise UsageError(
            f"{source}: {total / _MB:.0f} MB in all, over the {max_total // _MB} MB limit"
            f" (raise ${env.MAX_BUNDLE_MB} to allow it)"
        )


def _read_members(
    source: Path,
    zf: zipfile.ZipFile,
    members: list[Member],
    blob_dir: Path | None,
    progress: Callable[[str, int, int], None] | None,
) -> dict[str, bytes]:
    """Read every member under its declared size, checking its SHA-256; keep the
    records, write the blobs to `blob_dir`."""
    records: dict[str, bytes] = {}
    total, done = sum(m.size for m in members), 0
    for member in members:
        digest = hashlib.sha256()
        size = 0
        parts: list[bytes] = []
        out: IO[bytes] | None = None
        target: Path | None = None
        if blob_dir is not None and member.name.startswith("blobs/"):
            target = blob_dir / member.sha256
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            out = os.fdopen(fd, "wb")
        try:
            with zf.open(member.name) as fh:
                while chunk := fh.read(min(_CHUNK * 16, member.size - size + 1)):
                    size += len(chunk)
                    if size > member.size:
                        break
                    digest.update(chunk)
                    if out is not None:
                        out.write(chunk)
                    elif member.name.startswith("records/"):
                        parts.append(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress("checking", done, total)
        finally:
            if out is not None:
                out.close()
        if size != member.size:
            raise UsageError(
                f"{source}: member {member.name!r} does not hold the {member.size} bytes"
                f" {MANIFEST} says"
            )
        if digest.hexdigest() != member.sha256:
            raise UsageError(
                f"{source}: member {member.name!r} does not match its SHA-256 in {MANIFEST}"
                " (the file was changed or damaged)"
            )
        if member.name.startswith("records/"):
            records[member.name.removeprefix("records/").removesuffix(".jsonl")] = b"".join(parts)
    return records


def summary(archive: Archive) -> dict[str, Any]:
    """What `archive show` prints: the manifest's facts, counts and the signer."""
    m = archive.manifest
    return {
        "file": str(archive.path),
        "format_version": m.get("format_version"),
        "workbench_version": m.get("workbench_version"),
        "store_id": m.get("store_id"),
        "created_at": m.get("created_at"),
        "projects": m.get("projects"),
        "since": m.get("since"),
        "watermark": m.get("watermark"),
        "destination": m.get("destination"),
        "include": m.get("include"),
        "counts": m.get("counts"),
        "wheels": [w.file for w in wheels(archive)],
        "members": len(archive.members),
        "bytes": sum(x.size for x in archive.members),
        "blobs": len(archive.blobs),
        "signer": archive.signer.get("signer"),
        "trusted": archive.signer.get("trusted"),
        "fingerprint": archive.signer.get("fingerprint"),
    }
