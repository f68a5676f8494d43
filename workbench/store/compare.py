"""Batched reads for comparing runs: which data versions each run used, and
which evaluation set each was scored on as the registry records it.

Each read takes every run id at once (a JSON array through `json_each`) and
runs one query, so comparing fifty runs costs what comparing two does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from workbench.store.db import Store

_IDS = "SELECT value FROM json_each(?)"  # a JSON array of ids, as a subquery


def _ids(ids: Iterable[int]) -> str:
    return json.dumps([int(i) for i in ids])


@dataclass(frozen=True, slots=True)
class RunDataset:
    """A dataset version one run used, in its role (`train`, ...)."""

    run_id: int
    version_id: int
    role: str
    sha256: str
    path: str
    rows: int


def datasets_of(store: Store, run_ids: Sequence[int]) -> dict[int, list[RunDataset]]:
    """The dataset versions of many runs, oldest version first: {run_id: [...]}."""
    out: dict[int, list[RunDataset]] = {}
    for row in store.conn.execute(
        "SELECT rd.run_id, v.id, rd.role, v.sha256, v.path, v.rows FROM run_datasets rd"
        " JOIN dataset_versions v ON v.id = rd.dataset_version_id"
        f" WHERE rd.run_id IN ({_IDS}) ORDER BY rd.run_id, v.id",
        (_ids(run_ids),),
    ):
        out.setdefault(row[0], []).append(RunDataset(*row))
    return out


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    """The rows a run's final metrics were measured on, as recorded: the
    hold-out of the run's model version in the registry (`source` "model"),
    else an artifact the run logged as its evaluation data ("artifact").
    `gate_rows` is how many rows the promotion gate last scored the version on."""

    run_id: int
    sha256: str
    size: int | None
    source: str
    project: str | None = None
    model_version: int | None = None
    gate_rows: int | None = None


def evaluation_sets(store: Store, run_ids: Sequence[int]) -> dict[int, EvaluationRecord]:
    """The evaluation set of each run that has one (one query)."""
    out: dict[int, EvaluationRecord] = {}
    for run_id, version, project, holdout, gate_rows, artifact, size in store.conn.execute(
        "SELECT r.value, mv.version, p.name, mv.holdout_sha256,"
        "  (SELECT pr.evaluation_rows FROM promotions pr WHERE pr.challenger_id = mv.id"
        "     AND pr.evaluation_rows IS NOT NULL ORDER BY pr.id DESC LIMIT 1),"
        "  a.sha256, a.size"
        f" FROM ({_IDS}) r"
        " LEFT JOIN model_versions mv ON mv.run_id = r.value"
        " LEFT JOIN projects p ON p.id = mv.project_id"
        " LEFT JOIN artifacts a ON a.id = (SELECT MIN(e.id) FROM artifacts e"
        "   WHERE e.run_id = r.value AND e.kind = 'evaluation')",
        (_ids(run_ids),),
    ):
        if holdout:
            out[run_id] = EvaluationRecord(
                run_id,
                holdout,
                size if artifact == holdout else None,
                "model",
                project,
                version,
                gate_rows,
            )
        elif artifact:
            out[run_id] = EvaluationRecord(run_id, artifact, size, "artifact")
    return out


def registered_metrics(store: Store, run_ids: Sequence[int]) -> dict[int, str]:
    """The primary metric each run's model version was registered with, for
    the runs that have a model version naming one (one query)."""
    return {
        run_id: metric
        for run_id, metric in store.conn.execute(
            f"SELECT run_id, metric FROM model_versions WHERE run_id IN ({_IDS})"
            " AND metric IS NOT NULL",
            (_ids(run_ids),),
        )
    }
