"""Crafted archives refused by `archive import` (and `verify`) with a one-line
reason, leaving the store exactly as it was and nothing behind in its folder."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from wbtest import REPO
from wbtest import wb_inprocess as wbi

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"


@pytest.fixture(scope="module")
def valid_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small signed archive: one project, one finished run with metrics and an artifact."""
    import shutil

    from workbench.core import paths
    from workbench.store import metrics, open_store
    from workbench.store import runs as store_runs

    root = tmp_path_factory.mktemp("hostile-archive")
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", root / "penguins")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(root / "home"))
        assert wbi("project", "add", str(root / "penguins")).returncode == 0
        store = open_store()
        try:
            project_id = store.scalar("SELECT id FROM projects")
            now = time.time()
            run_id = store_runs.create(
                store,
                project_id,
                "lightgbm",
                event_message="run {id} made for the test",
                status="succeeded",
                params={"n_estimators": 3},
                started_at=now,
                ended_at=now + 1,
                exit_code=0,
            )
            data = b"a model, as far as this test cares\n"
            sha = hashlib.sha256(data).hexdigest()
            target = paths.artifact_file(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            with store.write() as conn:
                metrics.append_points(
                    conn, run_id, {"loss": [(i, now + i, 1.0 / (i + 1)) for i in range(50)]}
                )
                store_runs.put_artifacts(
                    conn, [(run_id, "model.txt", sha, len(data), "model", now)]
                )
        finally:
            store.close()
        out = root / "valid.wbx"
        made = wbi("archive", "export", "penguins", "-o", str(out))
        assert made.returncode == 0, made.stderr
    return out


def _entries(path: Path) -> dict[str, tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: (i, zf.read(i)) for i in zf.infolist()}


def _write(path: Path, entries: dict[str, tuple[zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in entries.values():
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _recraft(
    valid: Path,
    out: Path,
    *,
    manifest: Callable[[dict], None] | None = None,
    add: tuple[tuple[zipfile.ZipInfo, bytes], ...] = (),
    keep_signature: bool = False,
) -> Path:
    """A copy of `valid` with members added (and listed in its manifest), the
    manifest changed by `manifest`; unsigned unless `keep_signature`."""
    entries = _entries(valid)
    document = json.loads(entries[MANIFEST][1])
    for info, data in add:
        document["members"].append(
            {"name": info.filename, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )
        entries[info.filename] = (info, data)
    if manifest is not None:
        manifest(document)
    entries[MANIFEST] = (entries[MANIFEST][0], json.dumps(document).encode())
    if not keep_signature:
        del entries[SIGNATURE]
    return _write(out, entries)


def _member(name: str, mode: int = stat.S_IFREG | 0o600) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


def tampered(valid: Path, out: Path) -> Path:
    entries = _entries(valid)
    info, data = entries["records/runs.jsonl"]
    entries["records/runs.jsonl"] = (info, data.replace(b"succeeded", b"succeedex"))
    return _write(out, entries)


def truncated(valid: Path, out: Path) -> Path:
    data = valid.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


def traversal(valid: Path, out: Path) -> Path:
    return _recraft(valid, out, add=((_member("../evil.txt"), b"outside"),))


def absolute(valid: Path, out: Path) -> Path:
    return _recraft(valid, out, add=((_member("/tmp/evil.txt"), b"outside"),))


def symlink(valid: Path, out: Path) -> Path:
    target = b"/etc/passwd"
    name = f"blobs/{hashlib.sha256(target).hexdigest()}"
    return _recraft(valid, out, add=((_member(name, stat.S_IFLNK | 0o777), target),))


def zip_bomb(valid: Path, out: Path) -> Path:
    zeros = bytes(8 << 20)
    name = f"blobs/{hashlib.sha256(zeros).hexdigest()}"
    return _recraft(valid, out, add=((_member(name), zeros),))


def future_version(valid: Path, out: Path) -> Path:
    return _recraft(valid, out, manifest=lambda m: m.update(format_version=99))


def bad_signature(valid: Path, out: Path) -> Path:
    def more_runs(m: dict) -> None:
        m["counts"]["runs"] = 1000

    return _recraft(valid, out, manifest=more_runs, keep_signature=True)


def unlisted(valid: Path, out: Path) -> Path:
    entries = _entries(valid)
    entries["records/notes.jsonl"] = (_member("records/notes.jsonl"), b"{}\n")
    del entries[SIGNATURE]
    return _write(out, entries)


def bad_record(valid: Path, out: Path) -> Path:
    entries = _entries(valid)
    info, runs = entries["records/runs.jsonl"]
    row = json.loads(runs.splitlines()[0])
    row["trainer"] = {"__class__": "os.system"}
    data = json.dumps(row).encode() + b"\n"
    entries["records/runs.jsonl"] = (info, data)
    document = json.loads(entries[MANIFEST][1])
    for member in document["members"]:
        if member["name"] == "records/runs.jsonl":
            member.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    entries[MANIFEST] = (entries[MANIFEST][0], json.dumps(document).encode())
    del entries[SIGNATURE]
    return _write(out, entries)


def _with_record(valid: Path, out: Path, table: str, edit: Callable[[list[dict]], None]) -> Path:
    """A copy of `valid` whose records/<table>.jsonl is changed by `edit`, the
    manifest updated to match (so only the content is wrong), unsigned."""
    entries = _entries(valid)
    name = f"records/{table}.jsonl"
    info, data = entries.get(name, (_member(name), b""))
    rows = [json.loads(line) for line in data.splitlines() if line.strip()]
    edit(rows)
    data = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    entries[name] = (info, data)
    document = json.loads(entries[MANIFEST][1])
    document["members"] = [m for m in document["members"] if m["name"] != name]
    document["members"].append(
        {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    )
    entries[MANIFEST] = (entries[MANIFEST][0], json.dumps(document).encode())
    del entries[SIGNATURE]
    return _write(out, entries)


def bad_tag(valid: Path, out: Path) -> Path:
    def add(rows: list[dict]) -> None:
        uuid = json.loads(_entries(valid)["records/runs.jsonl"][1].splitlines()[0])["uuid"]
        rows.append({"run_uuid": uuid, "tag": "$(rm -rf ~)", "created_at": 1.0})

    return _with_record(valid, out, "run_tags", add)


def bad_note(valid: Path, out: Path) -> Path:
    def edit(rows: list[dict]) -> None:
        rows[0]["note"] = "\x1b]52;c;evil\x07"

    return _with_record(valid, out, "runs", edit)


def _wheel_entry(valid: Path, out: Path, entry: dict) -> Path:
    return _recraft(valid, out, manifest=lambda m: m.update(wheels=[entry]))


def wheel_traversal(valid: Path, out: Path) -> Path:
    blob = next(n for n in _entries(valid) if n.startswith("blobs/"))
    entry = {"file": "../../bin/evil.whl", "sha256": blob[6:], "requirement": "evil==1"}
    return _wheel_entry(valid, out, entry)


def wheel_without_blob(valid: Path, out: Path) -> Path:
    entry = {"file": "evil-1.0-py3-none-any.whl", "sha256": "0" * 64, "requirement": "evil==1"}
    return _wheel_entry(valid, out, entry)


CASES = {
    "bad-tag": (bad_tag, "is not a tag"),
    "bad-note": (bad_note, "control characters"),
    "wheel-traversal": (wheel_traversal, "is not a wheel's file name"),
    "wheel-without-blob": (wheel_without_blob, "names no blob the archive holds"),
    "bad-record": (bad_record, "'trainer' is not a plain value"),
    "tampered": (tampered, "does not match its SHA-256"),
    "truncated": (truncated, "not a readable archive"),
    "traversal": (traversal, "'..' part"),
    "absolute": (absolute, "is an absolute path"),
    "symlink": (symlink, "is a symbolic link"),
    "zip-bomb": (zip_bomb, "zip bomb"),
    "future-version": (future_version, "format version 99; this workbench"),
    "bad-signature": (bad_signature, "bad signature"),
    "unlisted": (unlisted, "not one of the record files"),
}


def _state(home: Path) -> tuple[list[str], list[str]]:
    conn = sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True)
    try:
        dump = list(conn.iterdump())
    finally:
        conn.close()
    files = sorted(
        p.relative_to(home).as_posix()
        for p in home.rglob("*")
        if not p.name.startswith("workbench.db")
    )
    return dump, files


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_crafted_archive_is_refused_and_nothing_is_written(
    case, valid_archive, tmp_path, wb_home
):
    craft, reason = CASES[case]
    crafted = craft(valid_archive, tmp_path / f"{case}.wbx")
    assert wbi("project", "list").returncode == 0  # the store exists: compare it after
    before = _state(wb_home)
    for verb in (("import",), ("import", "--dry-run"), ("verify",)):
        result = wbi("archive", *verb, str(crafted))
        assert result.returncode == 2, (verb, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert reason in lines[0], lines[0]
        assert "Traceback" not in result.stderr
    assert _state(wb_home) == before


def test_an_oversize_member_is_refused(valid_archive, wb_home, monkeypatch):
    assert wbi("project", "list").returncode == 0
    before = _state(wb_home)
    monkeypatch.setenv("WORKBENCH_MAX_FILE_MB", "0.0001")  # about 100 bytes
    result = wbi("archive", "import", str(valid_archive))
    assert result.returncode == 2
    assert "over the 0 MB limit" in result.stderr and "WORKBENCH_MAX_FILE_MB" in result.stderr
    assert _state(wb_home) == before


def test_the_valid_archive_imports(valid_archive, wb_home):
    """The crafted ones above differ from this one only in what is refused."""
    result = wbi("archive", "import", str(valid_archive), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metric_points_added"] == 50


def test_a_failure_halfway_through_the_import_leaves_the_store_as_it_was(
    valid_archive, tmp_path, wb_home
):
    """The project is inserted before the run that fails (its uuid twice): the
    one transaction takes both back."""
    entries = _entries(valid_archive)
    info, runs = entries["records/runs.jsonl"]
    doubled = runs + runs
    entries["records/runs.jsonl"] = (info, doubled)
    document = json.loads(entries[MANIFEST][1])
    for member in document["members"]:
        if member["name"] == "records/runs.jsonl":
            member.update(size=len(doubled), sha256=hashlib.sha256(doubled).hexdigest())
    entries[MANIFEST] = (entries[MANIFEST][0], json.dumps(document).encode())
    del entries[SIGNATURE]
    crafted = _write(tmp_path / "doubled.wbx", entries)
    assert wbi("project", "list").returncode == 0
    before = _state(wb_home)
    result = wbi("archive", "import", str(crafted))
    assert result.returncode == 2, result.stderr
    assert "nothing was imported" in result.stderr and "UNIQUE" in result.stderr
    assert _state(wb_home) == before


@pytest.mark.parametrize(
    "line", [b"not json", b'{"steps": [0], "ts": ["x"], "values": [1.0]}', b"[1, 2]"]
)
def test_bad_metric_points_are_refused(line, valid_archive, tmp_path, wb_home):
    entries = _entries(valid_archive)
    info, _ = entries["records/metrics.jsonl"]
    series_info, _ = entries["records/metric_series.jsonl"]
    index = b'{"run_uuid": "%s", "key": "loss", "count": 1}\n' % json.loads(
        entries["records/runs.jsonl"][1].splitlines()[0]
    )["uuid"].encode()
    entries["records/metrics.jsonl"] = (info, line + b"\n")
    entries["records/metric_series.jsonl"] = (series_info, index)
    document = json.loads(entries[MANIFEST][1])
    for member in document["members"]:
        for name in ("records/metrics.jsonl", "records/metric_series.jsonl"):
            if member["name"] == name:
                data = entries[name][1]
                member.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    entries[MANIFEST] = (entries[MANIFEST][0], json.dumps(document).encode())
    del entries[SIGNATURE]
    crafted = _write(tmp_path / "points.wbx", entries)
    assert wbi("project", "list").returncode == 0
    before = _state(wb_home)
    result = wbi("archive", "import", str(crafted))
    assert result.returncode == 2, result.stderr
    assert "records/metrics.jsonl line 1" in result.stderr
    assert _state(wb_home) == before


def test_a_format_version_1_archive_still_imports(valid_archive, tmp_path, wb_home):
    """Version 1 had no tags, notes or wheels: such an archive imports as it did."""
    entries = _entries(valid_archive)
    del entries["records/run_tags.jsonl"], entries[SIGNATURE]
    info, runs = entries["records/runs.jsonl"]
    rows = [json.loads(line) for line in runs.splitlines()]
    for row in rows:
        del row["note"], row["archived_at"]
    runs = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    entries["records/runs.jsonl"] = (info, runs)
    document = json.loads(entries[MANIFEST][1])
    document["format_version"] = 1
    document["members"] = [m for m in document["members"] if m["name"] != "records/run_tags.jsonl"]
    for member in document["members"]:
        if member["name"] == "records/runs.jsonl":
            member.update(size=len(runs), sha256=hashlib.sha256(runs).hexdigest())
    entries[MANIFEST] = (entries[MANIFEST][0], json.dumps(document).encode())
    old = _write(tmp_path / "v1.wbx", entries)
    result = wbi("archive", "import", str(old), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["counts"]["runs"]["new"] == 1 and report["metric_points_added"] == 50
    assert report["counts"]["tags"]["new"] == report["counts"]["notes"]["new"] == 0
