"""Managing finished runs: tags, notes, the archive, and deleting runs with
their files. The CLI (`run tag|note|archive|unarchive|delete`) and the TUI's
project screen both call these.

Deleting is planned first (`plan_delete`: what goes, what stays, how many
bytes it frees) so that both front ends can show the plan and ask; then
`delete` removes the rows in one transaction and the files after it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core import paths
from workbench.core.errors import UsageError
from workbench.runs.queries import find_run
from workbench.store import Store
from workbench.store import run_notes
from workbench.store.run_notes import BlobUse, Blocker, RunNotes

# A tag is one word: letters, digits and _ . : / + -, starting with a letter or digit.
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,63}")
MAX_TAGS = 100  # per command
MAX_NOTE_CHARS = 10_000


def check_tags(tags: Iterable[str]) -> list[str]:
    """The tags as given, each checked (UsageError names the first bad one);
    duplicates dropped, order kept."""
    out: list[str] = []
    for tag in tags:
        if not TAG.fullmatch(tag):
            shown = repr(tag if len(tag) <= 40 else tag[:40] + "...")
            raise UsageError(
                f"not a tag: {shown}; a tag is one word of up to 64 letters, digits"
                " and _ . : / + -, starting with a letter or digit"
            )
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise UsageError(f"at most {MAX_TAGS} tags at once, got {len(out)}")
    return out


def tag_run(
    store: Store, run_ref: int | str, tags: Iterable[str], *, remove: bool = False
) -> tuple[int, list[str]]:
    """Add (or with `remove`, take off) tags of a run; returns its id and its tags now."""
    run_id = find_run(store, run_ref).id
    checked = check_tags(tags)
    if remove:
        return run_id, run_notes.remove_tags(store, run_id, checked)
    return run_id, run_notes.add_tags(store, run_id, checked)


def notes_of_run(store: Store, run_ref: int | str) -> RunNotes:
    """A run's tags, note and archive time (NotFoundError when there is no such run)."""
    run_id = find_run(store, run_ref).id
    return run_notes.notes_of(store, [run_id]).get(run_id) or RunNotes(run_id)


def check_note(text: str) -> str | None:
    """The note as it will be kept: stripped, None when empty; UsageError when
    it is too long or holds control characters other than newlines and tabs."""
    text = text.strip()
    if len(text) > MAX_NOTE_CHARS:
        raise UsageError(f"a note holds at most {MAX_NOTE_CHARS} characters, got {len(text)}")
    bad = next((c for c in text if ord(c) < 32 and c not in "\n\t"), None)
    if bad is not None:
        raise UsageError(f"a note cannot hold control characters (found {bad!r})")
    return text or None


def note_run(store: Store, run_ref: int | str, text: str) -> str | None:
    """Set a run's note (empty text clears it); returns the note kept."""
    run_id = find_run(store, run_ref).id
    note = check_note(text)
    run_notes.set_note(store, run_id, note)
    return note


def set_tags_and_note(store: Store, run_ref: int | str, tags: str, note: str) -> RunNotes:
    """Replace a run's tags (given as one space-separated text) and its note,
    both checked first (UsageError); returns what the run now has."""
    run_id = find_run(store, run_ref).id
    checked = check_tags(tags.split())
    kept = check_note(note)
    run_notes.set_tags_and_note(store, run_id, checked, kept)
    return notes_of_run(store, run_id)


def set_archived(store: Store, run_refs: Sequence[int | str], archived: bool) -> list[int]:
    """Archive (or unarchive) runs; every run named must exist (checked before
    any changes). Returns those whose state changed."""
    ids = [find_run(store, ref).id for ref in run_refs]
    return run_notes.set_archived(store, ids, archived)


@dataclass(frozen=True, slots=True)
class DeletePlan:
    """What deleting runs would do: the runs, why some cannot go (then nothing
    goes), the files removed with their bytes, and the blobs kept because
    another run or a model version needs them."""

    run_ids: list[int]
    blockers: list[Blocker]
    run_files: list[Path] = field(default_factory=list)  # the runs' folders (logs, work files)
    run_bytes: int = 0
    blobs: list[BlobUse] = field(default_factory=list)
    blob_bytes: int = 0  # of the blobs that go
    kept_bytes: int = 0  # of the blobs that stay

    @property
    def freed_bytes(self) -> int:
        return self.run_bytes + self.blob_bytes

    @property
    def removed_blobs(self) -> list[str]:
        return [b.sha256 for b in self.blobs if not b.needed]

    @property
    def kept_blobs(self) -> list[str]:
        return [b.sha256 for b in self.blobs if b.needed]

    def summary(self) -> str:
        """One paragraph saying what goes and what stays."""
        runs = ", ".join(map(str, self.run_ids))
        text = (
            f"Deletes run{'s' if len(self.run_ids) != 1 else ''} {runs}: records, metrics,"
            f" logs and {len(self.removed_blobs)} artifact file(s); frees"
            f" {_size(self.freed_bytes)}."
        )
        if self.kept_blobs:
            text += (
                f" Keeps {len(self.kept_blobs)} artifact file(s) ({_size(self.kept_bytes)})"
                " that another run or a model version needs."
            )
        return text + " This cannot be undone."


def _size(n: int) -> str:
    from workbench.core.formatting import size

    return size(n)


def _tree_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (links counted as links, not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _file_bytes(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def plan_delete(store: Store, run_refs: Sequence[int | str]) -> DeletePlan:
    """What `delete` would do with these runs (each must exist: NotFoundError)."""
    ids = sorted({find_run(store, ref).id for ref in run_refs})
    blockers = run_notes.delete_blockers(store, ids)
    folders = [paths.run_dir(i) for i in ids if paths.run_dir(i).exists()]
    blobs = run_notes.blobs_of(store, ids)
    sizes = {b.sha256: _file_bytes(paths.artifact_file(b.sha256)) for b in blobs}
    return DeletePlan(
        run_ids=ids,
        blockers=blockers,
        run_files=folders,
        run_bytes=sum(_tree_bytes(f) for f in folders),
        blobs=blobs,
        blob_bytes=sum(sizes[b.sha256] for b in blobs if not b.needed),
        kept_bytes=sum(sizes[b.sha256] for b in blobs if b.needed),
    )


@dataclass(frozen=True, slots=True)
class Deleted:
    run_ids: list[int]
    freed_bytes: int
    problems: list[str]  # files that could not be removed


def delete(store: Store, plan: DeletePlan) -> Deleted:
    """Delete the planned runs: their rows in one transaction (checked again
    there), then their folders and the artifact blobs nothing else needs.
    UsageError when something blocks it. Files that cannot be removed are
    named in `problems` (`workbench fsck` finds them later as orphans)."""
    if plan.blockers:
        first = plan.blockers[0]
        raise UsageError(f"cannot delete run {first.run_id}: {first.reason}")
    try:
        ids, unneeded = run_notes.delete_runs(store, plan.run_ids)
    except ValueError as exc:  # it changed since the plan
        raise UsageError(str(exc)) from None
    freed, problems = 0, []
    for run_id in ids:
        folder = paths.run_dir(run_id)
        if not folder.exists():
            continue
        size = _tree_bytes(folder)
        try:
            shutil.rmtree(folder)
            freed += size
        except OSError as exc:
            problems.append(f"{folder}: {exc.strerror or exc}")
    # A blob another process logs between the check and this unlink would go
    # missing; `workbench fsck` reports such a file.
    for sha in unneeded:
        blob = paths.artifact_file(sha)
        size = _file_bytes(blob)
        try:
            blob.unlink(missing_ok=True)
            freed += size
        except OSError as exc:
            problems.append(f"{blob}: {exc.strerror or exc}")
    return Deleted(ids, freed, problems)
