"""Where a sweep's Optuna study lives: a journal file per sweep run, written
without an fsync per record.

Only Optuna's public journal API is used (checked against Optuna 4.0 to 5.1):
`JournalFileBackend(file_path, lock_obj=...)` with a `JournalFileSymlinkLock`
this module makes and keeps, and the backend's `append_logs` overridden to
write under that lock. Optuna's own attributes (`_lock`, `_file_path`) are not
touched, so a rename of them inside Optuna cannot break the sweep.
"""

from __future__ import annotations

import functools
import json
import os
import stat
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.core.errors import NotFoundError, StoreError

# A journal past this size is refused rather than read into memory: a record is
# a few hundred bytes, so this is millions of reports.
MAX_JOURNAL_BYTES = 1 << 30
# What Optuna raises replaying a journal it cannot make sense of: bad JSON, bytes
# that are not UTF-8, nesting too deep, records of the wrong shape (some reach an
# `assert False`), no study in it, or the file cannot be read.
_DAMAGE = (
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    AssertionError,
    RecursionError,
    OSError,
)


def sweep_dir(run_id: int) -> Path:
    """Where a sweep's Optuna journal lives."""
    return paths.home() / "sweeps" / str(run_id)


STUDY_POINTER = "study.path"  # in sweep_dir: where a sweep's study lives when elsewhere


def study_file(run_id: int) -> Path:
    """The sweep's Optuna journal: under sweep_dir, or where its pointer file
    says (a Slurm array sweep's study is on the shared filesystem, where its
    tasks ask it for trials)."""
    folder = sweep_dir(run_id)
    try:
        text = (folder / STUDY_POINTER).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return folder / "journal.log"
    except (OSError, UnicodeDecodeError) as exc:
        raise _damaged(run_id, folder / STUDY_POINTER, str(exc)) from None
    return Path(text) if text else folder / "journal.log"


def place_study(run_id: int, journal: Path) -> None:
    """Keep sweep `run_id`'s study at `journal` (before it is first opened)."""
    folder = sweep_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    journal.parent.mkdir(parents=True, exist_ok=True)
    (folder / STUDY_POINTER).write_text(str(journal) + "\n", encoding="utf-8")


def open_study(run_id: int, direction: str | None = None) -> Any:
    """The sweep's study from its journal; created when `direction` is given."""
    import optuna
    from optuna.storages import JournalStorage

    journal = study_file(run_id)
    folder = journal.parent
    if direction is None and not os.path.lexists(journal):
        raise NotFoundError(f"sweep {run_id} has no study at {journal}")
    check_journal(run_id, journal)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"sweep-{run_id}"
    try:
        storage = JournalStorage(journal_backend(str(journal)))
        if direction is None:
            return optuna.load_study(study_name=name, storage=storage)
        return optuna.create_study(
            storage=storage, study_name=name, direction=direction, load_if_exists=True
        )
    except _DAMAGE as exc:
        raise _damaged(run_id, journal, f"{type(exc).__name__}: {exc}") from None


def check_journal(run_id: int, journal: Path) -> None:
    """Refuse a journal that is not a plain file of a sane size (a FIFO would
    block the reader forever, a link could point anywhere); a missing one is fine."""
    try:
        st = os.lstat(journal)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _damaged(run_id, journal, exc.strerror or str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise _damaged(run_id, journal, "not a regular file")
    if st.st_size > MAX_JOURNAL_BYTES:
        raise _damaged(run_id, journal, f"{st.st_size} bytes, over {MAX_JOURNAL_BYTES}")


def _damaged(run_id: int, journal: Path, why: str) -> StoreError:
    # One line: the reason may quote a record of the journal.
    why = " ".join(why.split())[:200]
    return StoreError(
        f"the study journal {journal} of sweep {run_id} cannot be read ({why});"
        " the sweep's trial runs are intact in the store"
    )


def journal_backend(file_path: str) -> Any:
    """Optuna's journal file backend for `file_path`, minus the fsync per record."""
    from optuna.storages.journal import JournalFileSymlinkLock

    # The same lock Optuna would make by default, made here so we hold it.
    return _journal_class()(file_path, JournalFileSymlinkLock(file_path))


@functools.cache
def _journal_class() -> type:
    """Defined on first use: Optuna is imported only when a sweep is opened."""
    from optuna.storages.journal import JournalFileBackend

    class Journal(JournalFileBackend):
        """Optuna's journal file without an fsync per record. Every report, ask
        and tell is a record, and at ~4 ms an fsync they were a tenth of a
        short trial. What is written survives the process being killed (it is
        in the OS's cache), not a power loss: the same promise as the store's
        (WAL with synchronous=NORMAL)."""

        def __init__(self, file_path: str, lock: Any) -> None:
            super().__init__(file_path, lock_obj=lock)
            self._workbench_path = file_path
            self._workbench_lock = lock

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            self._workbench_lock.acquire()
            try:
                # One write of whole lines, as the parent class does, minus the fsync.
                with open(self._workbench_path, "ab") as fh:
                    fh.write(text.encode("utf-8"))
            finally:
                self._workbench_lock.release()

    return Journal
