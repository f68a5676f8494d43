"""Dataset versions, which runs used them, the validation and drift reports
judging them, and the reference profiles drift compares against.

A dataset version is a file registered by the SHA-256 of its content, unique
per project; `run_datasets` is the lineage from data version to run.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from workbench.store.db import Store
from workbench.store.events import add_event


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One registered data file; `runs` (how many runs used it) and `role` (its
    role in one run) are filled by the reads that join them."""

    id: int
    project_id: int
    sha256: str
    path: str
    format: str
    rows: int
    columns: tuple[str, ...]
    size_bytes: int
    mtime_ns: int
    created_at: float
    runs: int | None = None
    role: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DatasetVersion:
        return cls(
            id=row["id"],
            project_id=row["project_id"],
            sha256=row["sha256"],
            path=row["path"],
            format=row["format"],
            rows=row["rows"],
            columns=tuple(json.loads(row["columns"])),
            size_bytes=row["size_bytes"],
            mtime_ns=row["mtime_ns"],
            created_at=row["created_at"],
            runs=row.get("runs"),
            role=row.get("role"),
        )

    def as_dict(self) -> dict[str, Any]:
        """The version as `data list --json` and `run show --json` print it: the
        table's columns, plus `runs` or `role` when the read filled them."""
        out: dict[str, Any] = {
            "id": self.id,
            "project_id": self.project_id,
            "sha256": self.sha256,
            "path": self.path,
            "format": self.format,
            "rows": self.rows,
            "columns": list(self.columns),
            "size_bytes": self.size_bytes,
            "mtime_ns": self.mtime_ns,
            "created_at": self.created_at,
        }
        if self.runs is not None:
            out["runs"] = self.runs
        if self.role is not None:
            out["role"] = self.role
        return out


def unchanged(
    store: Store, project_id: int, path: str, size_bytes: int, mtime_ns: int
) -> DatasetVersion | None:
    """The version registered from this very file when it had this size and mtime."""
    row = store.row(
        "SELECT * FROM dataset_versions WHERE project_id = ? AND path = ? AND size_bytes = ?"
        " AND mtime_ns = ?",
        (project_id, path, size_bytes, mtime_ns),
    )
    return DatasetVersion.from_row(row) if row else None


def by_sha256(store: Store, project_id: int, sha256: str) -> DatasetVersion | None:
    row = store.row(
        "SELECT * FROM dataset_versions WHERE project_id = ? AND sha256 = ?", (project_id, sha256)
    )
    return DatasetVersion.from_row(row) if row else None


def add(
    store: Store,
    project_id: int,
    *,
    sha256: str,
    path: str,
    fmt: str,
    rows: int,
    columns: list[str],
    size_bytes: int,
    mtime_ns: int,
    event: str,
) -> DatasetVersion:
    """Register a version (a no-op when the project has this content already) and
    log `event` in the same transaction; returns the project's version of it."""
    now = time.time()
    with store.write() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO dataset_versions (project_id, sha256, path, format, rows,"
            " columns, size_bytes, mtime_ns, created_at, uuid)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project_id,
                sha256,
                path,
                fmt,
                rows,
                json.dumps(columns),
                size_bytes,
                mtime_ns,
                now,
                uuid.uuid4().hex,
            ),
        )
        add_event(conn, "data.added", event, ts=now, project_id=project_id, data={"sha256": sha256})
    found = by_sha256(store, project_id, sha256)
    assert found is not None  # inserted above, or already there
    return found


def for_project(store: Store, project_id: int) -> list[DatasetVersion]:
    """A project's versions, newest first, each with the number of runs that used it."""
    rows = store.rows(
        """SELECT v.*, (SELECT COUNT(*) FROM run_datasets rd WHERE rd.dataset_version_id = v.id)
               AS runs
           FROM dataset_versions v WHERE v.project_id = ? ORDER BY v.id DESC""",
        (project_id,),
    )
    return [DatasetVersion.from_row(r) for r in rows]


def link_run(store: Store, run_id: int, version_id: int, role: str = "train") -> None:
    with store.write() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO run_datasets (run_id, dataset_version_id, role)"
            " VALUES (?, ?, ?)",
            (run_id, version_id, role),
        )


def for_run(store: Store, run_id: int) -> list[DatasetVersion]:
    """The versions a run used, each with its role."""
    rows = store.rows(
        "SELECT v.*, rd.role FROM run_datasets rd JOIN dataset_versions v"
        " ON v.id = rd.dataset_version_id WHERE rd.run_id = ? ORDER BY v.id",
        (run_id,),
    )
    return [DatasetVersion.from_row(r) for r in rows]


def add_report(
    store: Store,
    project_id: int,
    version_id: int | None,
    kind: str,
    file: str,
    passed: bool,
    report: dict[str, Any],
    *,
    event: str,
) -> int:
    """Keep a validation or drift report (`kind`) with the version it judged, and
    log `event` in the same transaction; returns the report's id."""
    now = time.time()
    with store.write() as conn:
        report_id = conn.execute(
            "INSERT INTO data_reports (project_id, dataset_version_id, kind, file, passed, report,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (project_id, version_id, kind, file, int(passed), json.dumps(report, default=str), now),
        ).lastrowid
        add_event(
            conn, f"data.{kind}", event, ts=now, project_id=project_id, data={"report": report_id}
        )
    assert report_id is not None
    return report_id


def reference_profile(store: Store, version_id: int) -> dict[str, Any] | None:
    """The stored drift profile of a reference version, if one was computed."""
    text = store.scalar(
        "SELECT profile FROM reference_profiles WHERE dataset_version_id = ?", (version_id,)
    )
    return json.loads(text) if text else None


def save_reference_profile(store: Store, version_id: int, profile: dict[str, Any]) -> None:
    with store.write() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO reference_profiles (dataset_version_id, profile, created_at)"
            " VALUES (?, ?, ?)",
            (version_id, json.dumps(profile), time.time()),
        )
