"""Backups of the whole store as one zip file, and restoring one into an empty home.

A backup holds a consistent copy of the database, made with SQLite's online
backup API in one step (a single read transaction: in WAL mode writers carry on
while it copies, and the copy is the database as of the step's start), the
identity file written from that copy, and the files the store refers to under
`$WORKBENCH_HOME` (artifacts, run folders, data versions, pipelines, sweeps,
keys, the demo workspace, config.toml). `manifest.json` lists every member
with its size and SHA-256.

A backup file is untrusted input when restored: the manifest and every member
are checked (names, types, sizes, hashes, no member more or less than the
manifest lists) while being extracted into a hidden folder inside the home; the
database must pass `PRAGMA integrity_check`; only then is it moved into place.
Any failure removes what was extracted, leaving the home as empty as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from workbench.core import env, paths
from workbench.core.errors import NotFoundError, StoreError, UsageError
from workbench.core.version import __version__
from workbench.store import identity

FORMAT = "workbench-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "workbench.db"
IDENTITY = "store.json"
# What a backup carries besides the database: the folders and files the store
# refers to. Locks, sockets, the watcher's and warm runner's state, caches and
# lost+found are left out: they belong to the processes of the machine they ran on.
INCLUDED = (
    "artifacts",
    "runs",
    "data",
    "pipelines",
    "sweeps",
    "keys",
    "trusted_keys",
    "workspace",
    "config.toml",
)
ALLOWED_TOP = frozenset({DATABASE, IDENTITY, *INCLUDED})
STORED_AS_IS = frozenset({"artifacts", "data"})

_MB = 1 << 20
_CHUNK = 1 << 20
# The same limits (and environment variables) as a bundle load: the largest
# single file and the largest total, in MB. Every member is read with its cap,
# so a member that inflates past its declared size is stopped there, whatever
# its compression ratio.
DEFAULT_MAX_TOTAL_MB = 2048
DEFAULT_MAX_FILE_MB = 512
MAX_MANIFEST_BYTES = 64 * _MB
MAX_MEMBERS = 500_000
STAGING_PREFIX = ".restore-"
PARTIAL_SUFFIX = ".partial"

Progress = Callable[[str, int, int], None]
"""Called as (what is being done, bytes done, bytes in all)."""


@dataclass(frozen=True, slots=True)
class Member:
    """One file in a backup, as its manifest lists it."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What `create_backup` wrote."""

    path: Path
    store_id: str | None
    members: int
    bytes: int
    runs: int


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What `restore_backup` put in place."""

    home: Path
    store_id: str | None
    members: int
    bytes: int
    runs: int
    integrity: str


# -- backup -----------------------------------------------------------------------


def create_backup(
    out: Path, *, force: bool = False, progress: Progress | None = None
) -> BackupResult:
    """Write a backup of the store at `$WORKBENCH_HOME` to `out`, through a
    temporary file renamed on success: an interrupted backup leaves no `out`."""
    home = paths.home()
    db = home / DATABASE
    if not db.is_file():
        raise NotFoundError(f"there is no store to back up at {home} (no {DATABASE})")
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"-o {out}: is a folder; expected the backup file's name")
    if not out.parent.is_dir():
        raise UsageError(f"-o {out}: its folder {out.parent} does not exist")
    if (out.exists() or out.is_symlink()) and not force:
        raise UsageError(f"-o {out}: the file exists; pass --force to replace it")
    with contextlib.ExitStack() as stack:
        staging = Path(tempfile.mkdtemp(prefix=".wb-backup-", dir=out.parent))
        stack.callback(shutil.rmtree, staging, True)
        copy = staging / DATABASE
        store_id, runs = _copy_database(db, copy, progress)
        files = list(_store_files(home))
        total = copy.stat().st_size + (staging / IDENTITY).stat().st_size
        total += sum(size for _, _, size in files)
        # Not files.atomic_write_bytes: the zip is streamed to disk, then linked (no overwrite).
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{out.name}.", suffix=PARTIAL_SUFFIX, dir=out.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
        stack.callback(lambda: tmp.unlink(missing_ok=True))
        members: list[Member] = []
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress("writing the backup", done, total)

        with zipfile.ZipFile(tmp, "w", allowZip64=True, compresslevel=1) as zf:
            # The database is stored, not deflated: it is most of a backup's bytes,
            # and copying it at disk speed keeps a backup close to a bare `.backup`.
            sources = [
                (DATABASE, copy, zipfile.ZIP_STORED),
                (IDENTITY, staging / IDENTITY, zipfile.ZIP_DEFLATED),
                *((name, path, _method(name)) for name, path, _ in files),
            ]
            for name, path, method in sources:
                added = _add(zf, name, path, method, advance)
                if added is not None:
                    members.append(added)
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "workbench_version": __version__,
                "store_id": store_id,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "members": [
                    {"name": m.name, "size": m.size, "sha256": m.sha256}
                    for m in members
                ],
            }
            zf.writestr(MANIFEST, json.dumps(manifest, indent=1), zipfile.ZIP_DEFLATED)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _put_in_place(tmp, out, force)
    return BackupResult(out, store_id, len(members), sum(m.size for m in members), runs)


def _method(name: str) -> int:
    """Artifacts and data versions (models, parquet) are compressed already:
    stored as they are; logs, JSON and TOML are deflated."""
    return zipfile.ZIP_STORED if name.split("/")[0] in STORED_AS_IS else zipfile.ZIP_DEFLATED


def _copy_database(db: Path, copy: Path, progress: Progress | None) -> tuple[str | None, int]:
    """A consistent copy of the database (one backup step: one read transaction),
    and the identity file beside it, written from the copy."""
    from workbench.store.db import open_store

    size = db.stat().st_size
    if progress is not None:
        progress("copying the database", 0, size)
    store = open_store()
    try:
        target = sqlite3.connect(copy)
        try:
            # pages=-1: everything in one step. Step by step, a write by another
            # connection between steps would restart the copy, forever under load.
            store.conn.backup(target, pages=-1)
            store_id = identity.database_id(target)
            projects, runs = identity.counts(target)
            # A standalone file: no WAL beside it to carry along.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot copy the store's database {db}: {exc}") from exc
    finally:
        store.close()
    if store_id is not None:
        identity.write_identity(copy, store_id, projects, runs)
    else:  # an older store without an id: its file as it is, or none
        (copy.parent / IDENTITY).write_text("{}\n")
    if progress is not None:
        progress("copying the database", size, size)
    return store_id, runs


def _store_files(home: Path) -> Iterator[tuple[str, Path, int]]:
    """(name in the backup, path, size) of each regular file the backup carries;
    links, sockets and other special files are skipped, never followed."""
    for top in INCLUDED:
        root = home / top
        try:
            st = root.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            yield top, root, st.st_size
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for file in sorted(files):
                path = Path(folder) / file
                try:
                    st = path.lstat()
                except FileNotFoundError:  # removed while walking
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield path.relative_to(home).as_posix(), path, st.st_size


def _add(
    zf: zipfile.ZipFile,
    name: str,
    path: Path,
    method: int,
    advance: Callable[[int], None] | None,
) -> Member | None:
    """Copy one file into the zip, hashing what is written; None if it is gone."""
    try:
        source: IO[bytes] = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:  # removed since the walk (a rotated log, say)
        return None
    with source:
        st = os.fstat(source.fileno())
        info = zipfile.ZipInfo(name, date_time=time.gmtime(max(st.st_mtime, 315532800))[:6])
        info.compress_type = method
        info.external_attr = (stat.S_IFREG | 0o600) << 16
        digest = hashlib.sha256()  # not files.sha256_file: hashes the bytes copied, in one read
        size = 0
        with zf.open(info, "w", force_zip64=st.st_size > (1 << 30)) as dest:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                dest.write(chunk)
                size += len(chunk)
                if advance is not None:
                    advance(len(chunk))
    return Member(name, size, digest.hexdigest())


def _put_in_place(tmp: Path, out: Path, force: bool) -> None:
    if force:
        os.replace(tmp, out)
        return
    try:
        os.link(tmp, out)  # fails if `out` appeared meanwhile: never overwritten
    except FileExistsError:
        raise UsageError(f"-o {out}: the file exists; pass --force to replace it") from None
    tmp.unlink()


# -- restore ----------------------------------------------------------------------


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


def restore_backup(source: Path, *, progress: Progress | None = None) -> RestoreResult:
    """Restore the backup file `source` into `$WORKBENCH_HOME`, which must be
    empty; refuse a damaged, tampered or foreign file with a UsageError naming
    what is wrong, leaving the home as empty as it was."""
    source = Path(source)
    home = _empty_home()
    max_file = _limit_mb(env.MAX_FILE_MB, DEFAULT_MAX_FILE_MB)
    max_total = _limit_mb(env.MAX_BUNDLE_MB, DEFAULT_MAX_TOTAL_MB)
    try:
        st = source.stat()
    except FileNotFoundError:
        raise NotFoundError(f"{source}: no such backup file") from None
    except OSError as exc:
        raise UsageError(f"{source}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{source}: not a regular file; expected a backup file")
    if st.st_size > max_total + MAX_MANIFEST_BYTES:
        raise UsageError(
            f"{source}: {st.st_size / _MB:.0f} MB, over the {max_total // _MB} MB limit"
            f" (raise ${env.MAX_BUNDLE_MB} to allow it)"
        )
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=home))
    try:
        try:
            with zipfile.ZipFile(source) as zf:
                manifest, members = _read_manifest(source, zf)
                _check_members(source, zf, members, max_file, max_total)
                _extract(source, zf, members, staging, progress)
        except zipfile.BadZipFile as exc:
            raise UsageError(f"{source}: not a readable backup ({exc})") from None
        except (zlib.error, EOFError) as exc:
            raise UsageError(f"{source}: damaged ({exc})") from None
        except OSError as exc:
            raise UsageError(f"{source}: cannot be read ({exc.strerror or exc})") from None
        integrity, store_id, runs = _check_database(source, staging / DATABASE, manifest)
        _move_into_place(staging, home)
    except BaseException:
        _empty_out(home)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(
        home, store_id, len(members), sum(m.size for m in members), runs, integrity
    )


def _empty_home() -> Path:
    configured = os.environ.get(env.HOME)
    home = Path(configured).expanduser() if configured else None
    if home is not None and home.exists():
        if not home.is_dir():
            raise UsageError(f"${env.HOME}={home}: not a folder")
        entries = sorted(p.name for p in home.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise UsageError(
                f"${env.HOME}={home} is not empty ({shown}); restore needs an empty"
                f" store folder: point {env.HOME} at a new one"
            )
    resolved = paths.home()  # made now, 0700, if it did not exist
    entries = sorted(p.name for p in resolved.iterdir())
    if entries:
        raise UsageError(
            f"the store folder {resolved} is not empty ({', '.join(entries[:3])});"
            f" restore needs an empty one: set ${env.HOME} to a new folder"
        )
    return resolved


def _read_manifest(source: Path, zf: zipfile.ZipFile) -> tuple[dict[str, Any], list[Member]]:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise UsageError(f"{source}: no {MANIFEST}; not a workbench backup") from None
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
        raise UsageError(
            f'{source}: {MANIFEST} is not a workbench backup\'s (no "format": "{FORMAT}")'
        )
    version = document.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise UsageError(
            f"{source}: backup format version {str(version)[:20]!s}; this workbench"
            f" ({__version__}) reads version {FORMAT_VERSION}"
        )
    listed = document.get("members")
    if not isinstance(listed, list) or len(listed) > MAX_MEMBERS:
        raise UsageError(f'{source}: {MANIFEST}: "members" must be a list of at most {MAX_MEMBERS}')
    members: list[Member] = []
    seen: set[str] = set()
    for entry in listed:
        member = _member(source, entry)
        if member.name in seen:
            raise UsageError(f"{source}: {MANIFEST} lists {member.name!r} twice")
        seen.add(member.name)
        members.append(member)
    if DATABASE not in seen:
        raise UsageError(f"{source}: {MANIFEST} lists no {DATABASE}")
    return document, members


def _member(source: Path, entry: object) -> Member:
    if not isinstance(entry, dict):
        raise UsageError(f"{source}: {MANIFEST}: each member must be an object")
    name, size, digest = entry.get("name"), entry.get("size"), entry.get("sha256")
    if not isinstance(name, str):
        raise UsageError(f"{source}: {MANIFEST}: a member has no name")
    problem = unsafe_name(name)
    if problem:
        raise UsageError(f"{source}: member {name!r} {problem}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UsageError(f"{source}: {MANIFEST}: member {name!r} has no valid size")
    if (
        not isinstance(digest, str)
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise UsageError(f"{source}: {MANIFEST}: member {name!r} has no valid sha256")
    return Member(name, size, digest)


def unsafe_name(name: str) -> str | None:
    """Why a member's name cannot be extracted into the home, None if it can."""
    if not name or len(name) > 4096:
        return "has an empty or overlong name"
    if "\x00" in name or "\\" in name:
        return "has a NUL or backslash in its name"
    if name.startswith("/"):
        return "is an absolute path"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, '.' or '..' part in its path"
    if parts[0] not in ALLOWED_TOP or (parts[0] in (DATABASE, IDENTITY) and len(parts) > 1):
        return f"is outside what a backup holds ({', '.join(sorted(ALLOWED_TOP))})"
    return None


def _check_members(
    source: Path, zf: zipfile.ZipFile, members: list[Member], max_file: int, max_total: int
) -> None:
    """Before anything is written: the zip holds exactly the manifest's members,
    each a regular file of the declared size, within the limits."""
    listed = {m.name: m for m in members}
    found: set[str] = set()
    for info in zf.infolist():
        if info.filename == MANIFEST:
            continue
        if info.filename in found:
            raise UsageError(f"{source}: member {info.filename!r} appears twice")
        found.add(info.filename)
        member = listed.get(info.filename)
        if member is None:
            raise UsageError(f"{source}: member {info.filename!r} is not in {MANIFEST}")
        kind = stat.S_IFMT(info.external_attr >> 16)
        if info.is_dir() or (kind and kind != stat.S_IFREG):
            what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file"
            raise UsageError(f"{source}: member {info.filename!r} is {what}")
        if info.file_size != member.size:
            raise UsageError(
                f"{source}: member {info.filename!r} holds {info.file_size} bytes;"
                f" {MANIFEST} says {member.size}"
            )
        if member.size > max_file:
            raise UsageError(
                f"{source}: member {info.filename!r} is {member.size / _MB:.0f} MB, over the"
                f" {max_file // _MB} MB limit (raise ${env.MAX_FILE_MB} to allow it)"
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


def _extract(
    source: Path,
    zf: zipfile.ZipFile,
    members: list[Member],
    staging: Path,
    progress: Progress | None,
) -> None:
    total = sum(m.size for m in members)
    done = 0
    for member in members:
        target = staging.joinpath(*member.name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        digest = hashlib.sha256()  # not files.sha256_file: hashes the stream under a size cap
        size = 0
        # O_EXCL|O_NOFOLLOW: a name never lands on, or through, anything already there.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out, zf.open(member.name) as fh:
            while chunk := fh.read(min(_CHUNK, member.size - size + 1)):
                size += len(chunk)
                if size > member.size:
                    break
                digest.update(chunk)
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress("restoring", done, total)
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


def _check_database(
    source: Path, db: Path, manifest: dict[str, Any]
) -> tuple[str, str | None, int]:
    """`PRAGMA integrity_check` of the extracted database, and that it is the
    store the manifest names."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
            store_id = identity.database_id(conn)
            runs = identity.counts(conn)[1]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise UsageError(f"{source}: its {DATABASE} is not a usable database ({exc})") from None
    if rows != ["ok"]:
        raise UsageError(f"{source}: its {DATABASE} fails SQLite's integrity check ({rows[0]})")
    if store_id != manifest.get("store_id"):
        raise UsageError(
            f"{source}: its {DATABASE} is store {store_id}, not the {manifest.get('store_id')}"
            f" {MANIFEST} names"
        )
    return "ok", store_id, runs


def _move_into_place(staging: Path, home: Path) -> None:
    for entry in sorted(staging.iterdir()):
        os.rename(entry, home / entry.name)


def _empty_out(home: Path) -> None:
    """Remove everything from the home (it was empty when the restore began)."""
    for entry in home.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
