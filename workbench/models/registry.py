"""The model registry: a version per succeeded run that saved a model, and
aliases (champion, challenger, or any name) pointing at versions.

The versions are `workbench.store.models.ModelVersion` records; this module
decides what gets registered and resolves what a user names.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.core.errors import NotFoundError, UsageError
from workbench.projects import find_project
from workbench.store import Store
from workbench.store import archive as archive_records
from workbench.store import models as records
from workbench.store import runs as run_records
from workbench.store.metrics import latest_values
from workbench.store.models import ModelVersion

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "AliasProposal",
    "ModelVersion",
    "alias_proposals",
    "alias_target",
    "check_alias",
    "drop_proposal",
    "find_proposal",
    "get_version_by_id",
    "list_versions",
    "load_model",
    "promotions",
    "register_run",
    "remove_alias",
    "resolve",
    "set_alias",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


# The last few models loaded by this process. One pipeline reads the champion and the
# challenger several times over (drift, the gate's evaluation, its promotion, the
# model card), and the watcher runs pipeline after pipeline: each load parses and
# checks the whole model file again. Kept by the file's path, size and change time,
# so a file replaced in place is loaded afresh; a plugin's model is always loaded
# afresh, since its plugin file may have changed.
_LOADED: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_LOADED_MAX = 4
_LOADED_LOCK = threading.Lock()


def load_model(version: ModelVersion) -> Any:
    """The version's model, ready to `predict(frame)` (which changes nothing in it)."""
    from workbench.models.loading import BUILTIN_FRAMEWORKS, TrainedModel

    folder = Path(version.project_path) if version.project_path else None
    try:
        stat = Path(version.model_path).stat()
    except OSError:
        stat = None  # TrainedModel says what is wrong with the file
    key = None
    if stat is not None and version.schema.get("framework") in BUILTIN_FRAMEWORKS:
        shown = json.dumps(version.schema, sort_keys=True, default=str)
        key = (str(version.model_path), stat.st_size, stat.st_mtime_ns, shown)
        with _LOADED_LOCK:
            if key in _LOADED:
                _LOADED.move_to_end(key)
                return _LOADED[key]
    model = TrainedModel(version.schema, version.model_path, project_dir=folder)
    if key is not None:
        with _LOADED_LOCK:
            _LOADED[key] = model
            while len(_LOADED) > _LOADED_MAX:
                _LOADED.popitem(last=False)
    return model


def _forget_loaded() -> None:
    with _LOADED_LOCK:
        _LOADED.clear()


load_model.cache_clear = _forget_loaded  # type: ignore[attr-defined]  # as functools' caches


def register_run(
    store: Store, run_id: int, config: Any = None, *, trainer_succeeded: bool = False
) -> ModelVersion | None:
    """Register the model saved by a succeeded run; None when it saved none.
    The first version of a project becomes its champion unless the project
    promotes by hand; every later one becomes the challenger."""
    existing = records.for_run(store, run_id)
    if existing:
        return existing
    artifacts = {a.name: a for a in run_records.artifacts(store, run_id)}
    schema_artifact = artifacts.get("feature_schema.json")
    schema: dict[str, Any] = {}
    if schema_artifact:
        schema = json.loads(paths.artifact_file(schema_artifact.sha256).read_text())
        model = artifacts.get(schema.get("model_file", ""))
    else:
        model = next((a for a in artifacts.values() if a.kind == "model"), None)
    if model is None:
        return None
    run = run_records.get(store, run_id)
    if run is None or not (trainer_succeeded or run.status == run_records.RunStatus.SUCCEEDED):
        return None
    task = schema.get("target", {}).get("task")
    holdout = artifacts.get("holdout.parquet")
    version = records.add_version(
        store,
        project_id=run.project_id,
        run_id=run_id,
        framework=schema.get("framework", "custom"),
        framework_version=schema.get("framework_version"),
        model_name=model.name,
        model_sha256=model.sha256,
        schema_sha256=schema_artifact.sha256 if schema_artifact else None,
        holdout_sha256=holdout.sha256 if holdout else None,
        task=task,
        metric=config.primary_metric(task) if config is not None else None,
        metrics=latest_values(store.conn, [run_id]).get(run_id, {}),
    )
    champion = alias_target(store, version.project_id, CHAMPION)
    if champion is None and (config is None or config.promote != "manual"):
        from workbench.models.gate import promote

        promote(store, version, CHAMPION, config=config)
    else:
        set_alias(store, version, CHALLENGER)
    return get_version_by_id(store, version.id)


def get_version_by_id(store: Store, version_id: int) -> ModelVersion:
    version = records.by_id(store, version_id)
    if version is None:
        raise NotFoundError(f"no model version with id {version_id}")
    return version


def list_versions(store: Store, project: str) -> list[ModelVersion]:
    """A project's versions, newest first."""
    return records.for_project(store, find_project(store, project).id)


def alias_target(store: Store, project_id: int, alias: str) -> ModelVersion | None:
    return records.alias_target(store, project_id, alias)


def resolve(store: Store, ref: str) -> ModelVersion:
    """`PROJECT`, `PROJECT@VERSION` (also `@v3`) or `PROJECT@ALIAS`. A bare
    project means its champion, else its newest version."""
    name, _, which = ref.partition("@")
    if not name:
        raise UsageError(f"expected PROJECT, PROJECT@VERSION or PROJECT@ALIAS, got {ref!r}")
    project_id = find_project(store, name).id
    if not which:
        version = alias_target(store, project_id, CHAMPION) or records.newest(store, project_id)
        if version is None:
            raise NotFoundError(
                f"project {name!r} has no model versions yet; a succeeded training run "
                "registers one"
            )
        return version
    number = which[1:] if which[:1] in "vV" and which[1:].isdigit() else which
    if number.isdigit() and len(number) <= 18:  # longer: beyond SQLite's integers
        found = records.by_number(store, project_id, int(number))
        if found is None:
            raise NotFoundError(f"{name} has no model version {number}{_known(store, project_id)}")
        return found
    version = alias_target(store, project_id, which)
    if version is None:
        raise NotFoundError(f"{name} has no model with alias {which!r}{_known(store, project_id)}")
    return version


def _known(store: Store, project_id: int) -> str:
    versions = [str(n) for n in records.numbers(store, project_id)]
    aliases = records.alias_names(store, project_id)
    if not versions:
        return " (it has no model versions yet)"
    return f" (versions: {', '.join(versions)}; aliases: {', '.join(aliases) or 'none'})"


def check_alias(alias: str) -> str:
    if not _ALIAS.match(alias):
        raise UsageError(
            f"bad alias {alias!r}: expected a letter, then letters, digits, '_' or '-' (at most 32)"
        )
    return alias


def set_alias(store: Store, version: ModelVersion, alias: str) -> ModelVersion:
    """Point `alias` at `version`; returns the version as it now is."""
    return records.set_alias(store, version, check_alias(alias))


def remove_alias(store: Store, project: str, alias: str) -> None:
    if not records.remove_alias(store, find_project(store, project).id, alias):
        raise NotFoundError(f"{project} has no alias {alias!r}")


def promotions(store: Store, project: str, limit: int = 50) -> list[dict[str, Any]]:
    """The latest promotion decisions, newest first, as dicts."""
    return [p.as_dict() for p in records.promotions(store, find_project(store, project).id, limit)]


@dataclass(frozen=True, slots=True)
class AliasProposal:
    """An alias another store gave a version, brought by an archive and waiting
    here to be accepted (through the gate) or dropped. Its id is ALIAS:VERSION."""

    project: str
    alias: str
    version: int
    version_id: int
    source_store: str | None
    proposed_at: float

    @property
    def id(self) -> str:
        return f"{self.alias}:{self.version}"

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alias": self.alias,
            "version": self.version,
            "source_store": self.source_store,
            "proposed_at": self.proposed_at,
        }


def alias_proposals(store: Store, project: str) -> list[AliasProposal]:
    """A project's alias proposals, by alias then version."""
    found = find_project(store, project)
    return [
        AliasProposal(
            found.name, p.alias, p.version, p.version_id, p.source_store, p.proposed_at
        )
        for p in archive_records.proposals(store, found.id)
    ]


def find_proposal(store: Store, project: str, proposal_id: str) -> AliasProposal:
    """The proposal ALIAS:VERSION of `project` (NotFoundError naming those there are)."""
    alias, sep, number = proposal_id.rpartition(":")
    if not sep or not alias or not number.isdigit():
        raise UsageError(
            f"bad proposal {proposal_id!r}: expected ALIAS:VERSION, as"
            f" `workbench model proposals {project}` lists them"
        )
    proposals = alias_proposals(store, project)
    for p in proposals:
        if p.alias == alias and p.version == int(number):
            return p
    known = ", ".join(p.id for p in proposals) or "none"
    raise NotFoundError(f"{project} has no alias proposal {proposal_id} (proposals: {known})")


def drop_proposal(store: Store, proposal: AliasProposal) -> bool:
    """Forget a proposal; returns whether it was still there."""
    project_id = find_project(store, proposal.project).id
    return archive_records.drop_proposal(
        store, project_id, proposal.alias, proposal.version_id
    )
