"""core.files: atomic writes, file hashes and file locks, with real files and processes."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from wbtest import wait_until

from workbench.core.files import (
    atomic_write_bytes,
    atomic_write_text,
    exclusive_lock,
    sha256_file,
    try_lock,
)


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    atomic_write_text(target, '{"new": true}')
    assert target.read_text() == '{"new": true}'
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_atomic_write_gives_a_new_file_the_umask_mode_or_the_one_asked(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "plain.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o644
    atomic_write_text(tmp_path / "secret.key", "k", mode=0o600)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "kept.txt"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "\udcff", encoding="utf-8")  # fails before any write
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError):  # the rename itself fails
        atomic_write_bytes(tmp_path / "folder", b"new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "kept.txt"]


def test_a_write_into_a_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "nope" / "file.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_sha256_file_matches_hashlib(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 7)  # more than one read chunk
    (tmp_path / "blob").write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(tmp_path / "empty")) == hashlib.sha256(b"").hexdigest()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from workbench.core.files import exclusive_lock
    lock, ready, release = map(Path, sys.argv[1:4])
    with exclusive_lock(lock):
        ready.write_text("held")
        while not release.exists():
            time.sleep(0.02)
    """
)


def test_exclusive_lock_excludes_another_process_until_released(tmp_path):
    lock, ready, release = tmp_path / "x.lock", tmp_path / "ready", tmp_path / "release"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(ready), str(release)])
    try:
        wait_until(ready.exists, what="the other process to take the lock")
        assert try_lock(lock) is None  # held elsewhere: refused at once
        release.write_text("go")
        handle = wait_until(lambda: try_lock(lock), what="the lock to be released")
        handle.close()
    finally:
        release.write_text("go")
        holder.wait(timeout=60)
    assert holder.returncode == 0


def test_a_lock_held_by_a_process_that_died_is_free(tmp_path):
    lock = tmp_path / "daemon.lock"
    code = (
        "from workbench.core.files import try_lock\n"
        f"print(try_lock({str(lock)!r}) is not None)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True"
    with exclusive_lock(lock) as handle:
        assert not handle.closed
    handle2 = try_lock(lock)
    assert handle2 is not None
    handle2.close()


def test_try_lock_on_an_unopenable_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        try_lock(tmp_path / "missing" / "x.lock")
    assert not Path(tmp_path / "missing").exists()
