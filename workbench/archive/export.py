"""`archive export`: a project's records, metric points and files into one signed zip.

With `--include wheels` the archive also carries a wheelhouse for serving its
model versions: the pinned requirements of each (as `model export` pins them),
found offline the way `model export --with-wheels` finds them (folders given,
pip's local sources and cache), stored as blobs and listed in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workbench.archive.format import (
    DEFAULT_INCLUDE,
    FORMAT,
    FORMAT_VERSION,
    INCLUDE,
    MANIFEST,
    SIGNATURE,
    Member,
)
from workbench.core import paths
from workbench.core.errors import NotFoundError, UsageError
from workbench.core.version import __version__
from workbench.models import signing
from workbench.store import archive as records
from workbench.store.db import Store

_CHUNK = 1 << 20
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    counts: dict[str, int]
    members: int
    bytes: int
    since: float | None
    watermark: float
    signer: str | None
    wheels: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def parse_include(text: str | None) -> tuple[str, ...]:
    if not text:
        return DEFAULT_INCLUDE
    chosen = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    unknown = [p for p in chosen if p not in INCLUDE]
    if unknown:
        raise UsageError(f"--include {unknown[0]!r}: expected some of {', '.join(INCLUDE)}")
    return chosen


def parse_runs(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(f"--runs {text!r}: expected run ids separated by commas") from None


def resolve_since(store: Store, since: str | None, to: str | None) -> float | None:
    """--since last (the watermark of the last export --to NAME), a date, or a watermark."""
    if to is not None and (not to or not set(to) <= _NAME_CHARS or len(to) > 64):
        raise UsageError(f"--to {to!r}: expected a name of letters, digits, '.', '_', '-', '@'")
    if since is None:
        return None
    if since == "last":
        if to is None:
            raise UsageError(
                "--since last needs --to NAME: the destination the last export went to"
            )
        return records.watermark(store, to)  # None: never exported there, so everything
    try:
        return float(since)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise UsageError(
            f"--since {since!r}: expected last, a date (2026-01-31 or 2026-01-31T12:00) or"
            " a watermark from an archive's manifest"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def export_archive(
    store: Store,
    project_names: Sequence[str],
    out: Path,
    *,
    since: str | None = None,
    to: str | None = None,
    runs: str | None = None,
    include: str | None = None,
    force: bool = False,
    wheelhouses: Sequence[Path] = (),
    progress: Callable[[str, int, int], None] | None = None,
) -> ExportResult:
    chosen = parse_include(include)
    if wheelhouses and "wheels" not in chosen:
        raise UsageError("--wheelhouse is for --include wheels")
    for house in wheelhouses:
        if not Path(house).is_dir():
            raise UsageError(f"--wheelhouse {house}: no such folder")
    run_filter = parse_runs(runs)
    since_ts = resolve_since(store, since, to)
    found = records.projects(store, project_names)
    missing = sorted(set(project_names) - {p.name for p in found})
    if missing:
        raise NotFoundError(f"no project named {missing[0]!r} (see `workbench project list`)")
    out = Path(out)
    if out.exists() and not force:
        raise UsageError(f"-o {out}: the file exists; pass --force to replace it")
    watermark = time.time()  # what changes from now on goes into the next --since last
    project_ids = [p.id for p in found]
    store.conn.execute("BEGIN")  # one read transaction: a consistent view while runs write
    wheel_dir: Path | None = None
    try:
        run_ids = records.changed_run_ids(
            store, project_ids, since=since_ts, run_ids=run_filter
        )
        if run_filter is not None:
            unknown = sorted(set(run_filter) - set(run_ids))
            if unknown and since_ts is None:
                raise NotFoundError(
                    f"--runs: run {unknown[0]} is not a finished run of"
                    f" {', '.join(project_names)}"
                )
        tables = records.export_tables(store, project_ids, run_ids, since_ts)
        blobs = records.referenced_blobs(store, run_ids, artifacts="artifacts" in chosen)
        if "models" not in chosen and "artifacts" not in chosen:
            blobs = []
        elif "models" not in chosen:
            models = {
                sha
                for row in tables["model_versions"].dicts()
                for sha in (row["model_sha256"], row["schema_sha256"], row["holdout_sha256"])
            }
            blobs = [b for b in blobs if b not in models]
        sources = {sha: paths.artifact_file(sha) for sha in blobs}
        if "datasets" in chosen:  # the registered file, unless the store holds a copy
            for row in tables["dataset_versions"].dicts():
                kept = paths.artifact_file(row["sha256"])
                sources.setdefault(row["sha256"], kept if kept.is_file() else Path(row["path"]))
        carried: list[dict[str, str]] = []
        notes: list[str] = []
        if "wheels" in chosen:
            wheel_dir = Path(tempfile.mkdtemp(prefix=".archive-wheels-", dir=paths.home()))
            carried, notes = _wheels(tables["model_versions"].dicts(), wheelhouses, wheel_dir)
            for wheel in carried:
                sources.setdefault(wheel["sha256"], wheel_dir / wheel["file"])
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            counts, members = _write(store, tmp, tables, run_ids, sources, progress)
            counts["wheels"] = len(carried)
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "workbench_version": __version__,
                "store_id": records.store_id(store),
                "created_at": watermark,
                "watermark": watermark,
                "since": since_ts,
                "destination": to,
                "projects": sorted(project_names),
                "include": list(chosen),
                "counts": counts,
                "members": [{"name": m.name, "size": m.size, "sha256": m.sha256} for m in members],
            }
            if "wheels" in chosen:
                manifest["wheels"] = carried
            signer = _finish(tmp, manifest)
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    finally:
        if store.conn.in_transaction:
            store.conn.execute("ROLLBACK")
        if wheel_dir is not None:
            shutil.rmtree(wheel_dir, ignore_errors=True)
    if to is not None:
        records.set_watermark(store, to, watermark)
    return ExportResult(
        out,
        counts,
        len(members),
        sum(m.size for m in members),
        since_ts,
        watermark,
        signer,
        tuple(w["file"] for w in carried),
        tuple(notes),
    )


def _wheels(
    versions: list[dict[str, Any]], wheelhouses: Sequence[Path], folder: Path
) -> tuple[list[dict[str, str]], list[str]]:
    """Wheels for every pinned requirement of the model versions, copied into
    `folder`: [{file, sha256, requirement}] and notes for a person. A missing
    wheel is a WorkbenchError naming it and where it was looked for."""
    from workbench.models import wheels as finder

    pins: dict[str, finder.Pin] = {}
    skipped: list[str] = []
    for row in versions:
        framework = row["framework"]
        if framework not in finder.FRAMEWORK_PACKAGES:
            skipped.append(f"{row['project']}@{row['version']} ({framework})")
            continue
        model = paths.artifact_file(row["model_sha256"])
        for pin in finder.pinned_requirements(framework, model):
            pins.setdefault(pin.name, pin)
    notes = []
    if skipped:
        notes.append(
            "no wheels for " + ", ".join(skipped) + ": only LightGBM and scikit-learn"
            " models are served from a bundle"
        )
    if not pins:
        notes.append("no model version to serve, so no wheels")
        return [], notes
    houses, indexes = finder.pip_local_sources()
    report = finder.collect_wheels(
        sorted(pins.values(), key=lambda p: p.name),
        [*map(Path, wheelhouses), *houses],
        folder,
        cache=finder.pip_cache_dir(),
        indexes=indexes,
    )
    carried = [
        {
            "file": r["file"],
            "sha256": _file_sha256(folder / r["file"]),
            "requirement": r["requirement"],
        }
        for r in report
    ]
    return carried, notes


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
    return "".join(dumps(r) + "\n" for r in rows).encode("utf-8")


def _put(zf: zipfile.ZipFile, name: str, data: bytes) -> Member:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o600) << 16
    zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    return Member(name, len(data), hashlib.sha256(data).hexdigest())


def _write(
    store: Store,
    tmp: Path,
    tables: dict[str, records.Table],
    run_ids: list[int],
    sources: dict[str, Path],
    progress: Callable[[str, int, int], None] | None,
) -> tuple[dict[str, int], list[Member]]:
    counts: dict[str, int] = {}
    members: list[Member] = []
    with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
        for done, (name, table) in enumerate(tables.items(), 1):
            counts[name] = len(table.rows)
            members.append(_put(zf, f"records/{name}.jsonl", _jsonl(table.dicts())))
            if progress is not None:
                progress("writing records", done, len(tables))
        index: list[dict[str, Any]] = []
        lines: list[str] = []
        points = 0
        for s in records.metric_series(store, run_ids):
            index.append({"run_uuid": s.run_uuid, "key": s.key, "count": len(s.steps)})
            lines.append(
                json.dumps(
                    {"steps": s.steps, "ts": s.ts, "values": s.values},
                    separators=(",", ":"),
                    allow_nan=False,
                )
            )
            points += len(s.steps)
        counts["metric_series"] = len(index)
        counts["metric_points"] = points
        members.append(_put(zf, "records/metric_series.jsonl", _jsonl(index)))
        members.append(
            _put(zf, "records/metrics.jsonl", ("\n".join(lines) + "\n" if lines else "").encode())
        )
        for done, (sha, path) in enumerate(sorted(sources.items()), 1):
            if not path.is_file():
                raise UsageError(
                    f"{path}: the file {sha[:12]} the export needs is missing"
                    " (see `workbench fsck`)"
                )
            member = _add_file(zf, f"blobs/{sha}", path)
            if member.sha256 != sha:
                raise UsageError(
                    f"{path}: no longer the file {sha[:12]} the store recorded"
                    " (changed since; see `workbench fsck`)"
                )
            members.append(member)
            if progress is not None:
                progress("adding files", done, len(sources))
        counts["blobs"] = len(sources)
    return counts, members


def _add_file(zf: zipfile.ZipFile, name: str, path: Path) -> Member:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o600) << 16
    digest = hashlib.sha256()  # hashes the bytes copied, in one read
    size = 0
    with open(path, "rb") as source:
        big = os.fstat(source.fileno()).st_size > (1 << 30)
        with zf.open(info, "w", force_zip64=big) as dest:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                dest.write(chunk)
                size += len(chunk)
    return Member(name, size, digest.hexdigest())


def _finish(tmp: Path, manifest: dict[str, Any]) -> str | None:
    """Add the manifest and its signature (by this store's key) to the zip."""
    raw = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    with tempfile.TemporaryDirectory(prefix=".archive-sign-", dir=paths.home()) as folder:
        (Path(folder) / MANIFEST).write_bytes(raw)
        document = signing.sign_folder(Path(folder))
        signature = (Path(folder) / SIGNATURE).read_bytes()
    with zipfile.ZipFile(tmp, "a") as zf:
        for name, data in ((MANIFEST, raw), (SIGNATURE, signature)):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o600) << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return str(document.get("fingerprint"))
