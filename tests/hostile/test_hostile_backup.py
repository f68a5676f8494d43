"""Hostile backup files for `workbench restore`: tampered, truncated, traversing,
linking, oversized, foreign or malformed archives.

Every case: exit 2, one line on stderr naming the file and what is wrong, no
traceback, the backup file byte for byte as it was, and the home left empty
(nothing extracted, no hidden staging folder left behind).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from wbtest import wb_inprocess as wb  # no case starts a process: run them in this one

from workbench.core import paths

Contents = dict[str, bytes]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Contents:
    """The members of a real backup of a small store (a database, its identity
    file, an artifact and a run log), by name."""
    from workbench.store import open_store
    from workbench.store.backup import create_backup

    folder = tmp_path_factory.mktemp("hostile-backup")
    before = os.environ.get("WORKBENCH_HOME")
    os.environ["WORKBENCH_HOME"] = str(folder / "home")
    try:
        open_store().close()
        blob = b"model bytes " * 100
        artifact = paths.artifact_file(hashlib.sha256(blob).hexdigest())
        artifact.parent.mkdir(parents=True)
        artifact.write_bytes(blob)
        paths.run_dir(1).mkdir(parents=True)
        paths.run_log(1).write_text("epoch 1\n" * 50)
        create_backup(folder / "good.zip")
    finally:
        if before is None:
            del os.environ["WORKBENCH_HOME"]
        else:
            os.environ["WORKBENCH_HOME"] = before
    with zipfile.ZipFile(folder / "good.zip") as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _manifest(contents: Contents) -> dict:
    return json.loads(contents["manifest.json"])


def _with_manifest(contents: Contents, manifest: dict) -> Contents:
    return {**contents, "manifest.json": json.dumps(manifest).encode()}


def _listed(contents: Contents, name: str, data: bytes) -> Contents:
    """`contents` plus member `name`, listed in the manifest with its true hash."""
    manifest = _manifest(contents)
    manifest["members"].append(
        {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    )
    return {**_with_manifest(contents, manifest), name: data}


def _write(path: Path, contents: Contents, special: list[zipfile.ZipInfo] | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
        for info, data in special or []:
            zf.writestr(info, data)


def _artifact(contents: Contents) -> str:
    return next(n for n in contents if n.startswith("artifacts/"))


# -- the cases: each writes a hostile backup file at the given path ---------------


def tampered_member(path, c):
    name = _artifact(c)
    _write(path, {**c, name: c[name].replace(b"model", b"MODEL")})  # same size


def tampered_database(path, c):
    db = bytearray(c["workbench.db"])
    db[-1] ^= 0xFF
    _write(path, {**c, "workbench.db": bytes(db)})


def tampered_manifest_hash(path, c):
    m = _manifest(c)
    m["members"][0]["sha256"] = "0" * 64
    _write(path, _with_manifest(c, m))


def truncated_file(path, c):
    _write(path, c)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def truncated_tail(path, c):
    _write(path, c)
    data = path.read_bytes()
    path.write_bytes(data[:-30])


def empty_file(path, c):
    path.write_bytes(b"")


def not_a_zip(path, c):
    path.write_bytes(b"PK\x03\x04 but not really a zip " * 40)


def traversal_name(path, c):
    _write(path, _listed(c, "../escaped.txt", b"outside"))


def traversal_inside_a_folder(path, c):
    _write(path, _listed(c, "artifacts/../../escaped.txt", b"outside"))


def absolute_name(path, c):
    _write(path, _listed(c, "/tmp/escaped.txt", b"outside"))


def backslash_name(path, c):
    _write(path, _listed(c, "artifacts\\..\\..\\escaped.txt", b"outside"))


def dot_name(path, c):
    _write(path, _listed(c, "artifacts/./x", b"x"))


def outside_what_a_backup_holds(path, c):
    _write(path, _listed(c, "watcher.lock", b"123"))


def database_as_a_folder(path, c):
    _write(path, _listed(c, "workbench.db/inner", b"x"))


def symlink_member(path, c):
    manifest = _manifest(c)
    target = b"/etc/passwd"
    manifest["members"].append(
        {"name": "runs/2/output.log", "size": len(target),
         "sha256": hashlib.sha256(target).hexdigest()}
    )  # fmt: skip
    info = zipfile.ZipInfo("runs/2/output.log")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    _write(path, _with_manifest(c, manifest), [(info, target)])


def fifo_member(path, c):
    manifest = _manifest(c)
    manifest["members"].append(
        {"name": "runs/2/pipe", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()}
    )
    info = zipfile.ZipInfo("runs/2/pipe")
    info.external_attr = (stat.S_IFIFO | 0o600) << 16
    _write(path, _with_manifest(c, manifest), [(info, b"")])


def directory_member(path, c):
    info = zipfile.ZipInfo("runs/9/")
    info.external_attr = (stat.S_IFDIR | 0o700) << 16
    _write(path, c, [(info, b"")])


def oversize_member(path, c):
    os.environ["WORKBENCH_MAX_FILE_MB"] = "1"
    _write(path, _listed(c, "artifacts/ff/big", b"\0" * (2 << 20)))


def oversize_total(path, c):
    os.environ["WORKBENCH_MAX_BUNDLE_MB"] = "0.1"
    _write(path, _listed(c, "artifacts/ff/big", os.urandom(200 << 10)))


def bad_limit_variable(path, c):
    os.environ["WORKBENCH_MAX_FILE_MB"] = "lots"
    _write(path, c)


def unknown_format_version(path, c):
    m = _manifest(c)
    m["format_version"] = 2
    _write(path, _with_manifest(c, m))


def format_version_as_text(path, c):
    m = _manifest(c)
    m["format_version"] = "1"
    _write(path, _with_manifest(c, m))


def format_version_true(path, c):
    m = _manifest(c)
    m["format_version"] = True
    _write(path, _with_manifest(c, m))


def another_format(path, c):
    m = _manifest(c)
    m["format"] = "workbench-bundle"
    _write(path, _with_manifest(c, m))


def missing_manifest(path, c):
    _write(path, {n: d for n, d in c.items() if n != "manifest.json"})


def manifest_not_json(path, c):
    _write(path, {**c, "manifest.json": b"{not json"})


def manifest_not_utf8(path, c):
    _write(path, {**c, "manifest.json": b"\xff\xfe{}"})


def manifest_a_list(path, c):
    _write(path, {**c, "manifest.json": b"[1, 2, 3]"})


def manifest_deeply_nested(path, c):
    _write(path, {**c, "manifest.json": b"[" * 100_000 + b"]" * 100_000})


def members_not_a_list(path, c):
    m = _manifest(c)
    m["members"] = {"workbench.db": 1}
    _write(path, _with_manifest(c, m))


def member_not_an_object(path, c):
    m = _manifest(c)
    m["members"].append("workbench.db")
    _write(path, _with_manifest(c, m))


def member_without_a_name(path, c):
    m = _manifest(c)
    m["members"].append({"size": 1, "sha256": "0" * 64})
    _write(path, _with_manifest(c, m))


def negative_size(path, c):
    m = _manifest(c)
    m["members"][1]["size"] = -1
    _write(path, _with_manifest(c, m))


def hash_not_hex(path, c):
    m = _manifest(c)
    m["members"][1]["sha256"] = "z" * 64
    _write(path, _with_manifest(c, m))


def size_mismatch(path, c):
    m = _manifest(c)
    m["members"][1]["size"] += 1
    _write(path, _with_manifest(c, m))


def extra_member(path, c):
    _write(path, {**c, "artifacts/ee/extra": b"not listed"})


def listed_but_missing(path, c):
    name = _artifact(c)
    _write(path, {n: d for n, d in c.items() if n != name})


def listed_twice(path, c):
    m = _manifest(c)
    m["members"].append(dict(m["members"][-1]))
    _write(path, _with_manifest(c, m))


def stored_twice(path, c):
    name = _artifact(c)
    info = zipfile.ZipInfo(name)
    _write(path, c, [(info, c[name])])


def no_database(path, c):
    m = _manifest(c)
    m["members"] = [x for x in m["members"] if x["name"] != "workbench.db"]
    _write(path, {n: d for n, d in _with_manifest(c, m).items() if n != "workbench.db"})


def database_not_sqlite(path, c):
    m = _manifest(c)
    junk = b"not a database at all " * 300
    for member in m["members"]:
        if member["name"] == "workbench.db":
            member.update(size=len(junk), sha256=hashlib.sha256(junk).hexdigest())
    _write(path, {**_with_manifest(c, m), "workbench.db": junk})


def another_stores_id(path, c):
    m = _manifest(c)
    m["store_id"] = "f" * 32
    _write(path, _with_manifest(c, m))


def a_folder(path, c):
    path.mkdir()


CASES: dict[str, tuple[Callable[[Path, Contents], None], str]] = {
    "tampered member": (tampered_member, "does not match its SHA-256"),
    "tampered database": (tampered_database, "does not match its SHA-256"),
    "tampered manifest hash": (tampered_manifest_hash, "does not match its SHA-256"),
    "truncated file": (truncated_file, "not a readable backup"),
    "truncated tail": (truncated_tail, "not a readable backup"),
    "empty file": (empty_file, "not a readable backup"),
    "not a zip": (not_a_zip, "not a readable backup"),
    "traversal name": (traversal_name, "'..'"),
    "traversal inside a folder": (traversal_inside_a_folder, "'..'"),
    "absolute name": (absolute_name, "absolute path"),
    "backslash name": (backslash_name, "backslash"),
    "dot name": (dot_name, "'.'"),
    "outside what a backup holds": (outside_what_a_backup_holds, "outside what a backup holds"),
    "database as a folder": (database_as_a_folder, "outside what a backup holds"),
    "symlink member": (symlink_member, "symbolic link"),
    "fifo member": (fifo_member, "not a regular file"),
    "directory member": (directory_member, "not in manifest.json"),
    "oversize member": (oversize_member, "WORKBENCH_MAX_FILE_MB"),
    "oversize total": (oversize_total, "WORKBENCH_MAX_BUNDLE_MB"),
    "bad limit variable": (bad_limit_variable, "WORKBENCH_MAX_FILE_MB"),
    "unknown format version": (unknown_format_version, "format version 2"),
    "format version as text": (format_version_as_text, "reads version 1"),
    "format version true": (format_version_true, "reads version 1"),
    "another format": (another_format, "not a workbench backup"),
    "missing manifest": (missing_manifest, "no manifest.json"),
    "manifest not json": (manifest_not_json, "not valid JSON"),
    "manifest not utf8": (manifest_not_utf8, "not valid JSON"),
    "manifest a list": (manifest_a_list, "not a workbench backup"),
    "manifest deeply nested": (manifest_deeply_nested, "not valid JSON"),
    "members not a list": (members_not_a_list, '"members"'),
    "member not an object": (member_not_an_object, "must be an object"),
    "member without a name": (member_without_a_name, "has no name"),
    "negative size": (negative_size, "no valid size"),
    "hash not hex": (hash_not_hex, "no valid sha256"),
    "size mismatch": (size_mismatch, "manifest.json says"),
    "extra member": (extra_member, "not in manifest.json"),
    "listed but missing": (listed_but_missing, "but not in the file"),
    "listed twice": (listed_twice, "twice"),
    "stored twice": (stored_twice, "twice"),
    "no database": (no_database, "lists no workbench.db"),
    "database not sqlite": (database_not_sqlite, "workbench.db"),
    "another store's id": (another_stores_id, "names"),
    "a folder": (a_folder, "is a directory"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_hostile_backup_is_refused_and_the_home_stays_empty(
    case, good, tmp_path, wb_home, monkeypatch
):
    make, reason = CASES[case]
    for variable in ("WORKBENCH_MAX_FILE_MB", "WORKBENCH_MAX_BUNDLE_MB"):
        monkeypatch.setenv(variable, "")  # the default; put back after a case sets one
    backup = tmp_path / "hostile.zip"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate names
        make(backup, good)
    before = backup.read_bytes() if backup.is_file() else None

    result = wb("restore", str(backup))

    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert reason in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not wb_home.exists() or list(wb_home.iterdir()) == []
    if before is not None:
        assert backup.read_bytes() == before
    assert not (tmp_path / "escaped.txt").exists()
