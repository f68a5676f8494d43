"""Run management from the command line and in the store: tags, notes, the
archive, and deleting runs with the files no other run or model version needs."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path

import pytest
from wbtest import wb_inprocess as cli

from workbench.core import paths
from workbench.store import open_store
from workbench.store import models as model_store
from workbench.store import projects as project_store
from workbench.store import run_notes
from workbench.store import runs as run_store


def blob(content: bytes) -> str:
    """Put `content` into the artifact store; returns its SHA-256."""
    sha = hashlib.sha256(content).hexdigest()
    target = paths.artifact_file(sha)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return sha


def finished_run(store, project_id: int, status: str = "succeeded", **columns) -> int:
    return run_store.create(
        store,
        project_id,
        "script",
        event_message="run {id} made by the test",
        status=status,
        params={"epochs": 3, "alpha": 0.5},
        **columns,
    )


def log(run_id: int, size: int) -> None:
    folder = paths.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "output.log").write_bytes(b"x" * size)


@pytest.fixture
def store_runs(wb_home: Path, tmp_path: Path) -> dict[str, object]:
    """Runs of project `demo`: 1 (artifacts unique.bin 1000 B and shared.json,
    which run 2 also logged; a 4000-byte log), 2 (a model version was registered
    from it; its schema is run 3's schema.json), 3 (failed; schema.json and
    own.bin 500 B), 4 (running), 5 (a sweep) with its trial 6."""
    store = open_store()
    try:
        project = project_store.add(store, "demo", str(tmp_path / "demo"))
        r1, r2, r3 = (finished_run(store, project.id) for _ in range(3))
        run_store.transition(store, r3, "failed", event=False)
        # Running on another machine that shares the store, its heartbeat fresh.
        r4 = finished_run(
            store, project.id, status="running", hostname="elsewhere", heartbeat_at=time.time()
        )
        r5 = finished_run(store, project.id)
        r6 = finished_run(store, project.id, parent_id=r5)
        shas = {
            "unique": blob(b"u" * 1000),
            "shared": blob(b'{"shared": true}'),
            "schema": blob(b'{"columns": ["x"]}'),
            "own": blob(b"o" * 500),
            "model": blob(b"m" * 300),
        }
        now = time.time()
        rows = [
            (r1, "unique.bin", "unique"),
            (r1, "shared.json", "shared"),
            (r2, "shared.json", "shared"),
            (r2, "model.skops", "model"),
            (r3, "schema.json", "schema"),
            (r3, "own.bin", "own"),
        ]
        with store.write() as conn:
            run_store.put_artifacts(
                conn,
                [
                    (run, name, shas[key], paths.artifact_file(shas[key]).stat().st_size, None, now)
                    for run, name, key in rows
                ],
            )
        model_store.add_version(
            store,
            project_id=project.id,
            run_id=r2,
            framework="sklearn",
            framework_version=None,
            model_name="model.skops",
            model_sha256=shas["model"],
            schema_sha256=shas["schema"],
            holdout_sha256=None,
            task=None,
            metric=None,
            metrics={},
        )
        log(r1, 4000)
        log(r3, 250)
        return {"ids": (r1, r2, r3, r4, r5, r6), "shas": shas}
    finally:
        store.close()


def listed(*args: str) -> list[int]:
    return [r["id"] for r in json.loads(cli("run", "list", "--json", *args, check=True).stdout)]


# --- tags and notes -------------------------------------------------------------------


def test_tags_are_added_removed_listed_and_shown(store_runs):
    r1, r2, *_ = store_runs["ids"]
    done = cli("run", "tag", str(r1), "baseline", "lr:0.1", "baseline", "--json", check=True)
    assert json.loads(done.stdout) == {"id": r1, "tags": ["baseline", "lr:0.1"]}
    cli("run", "tag", str(r2), "baseline", check=True)
    assert listed("--tag", "baseline") == [r2, r1]
    assert listed("--tag", "lr:0.1") == [r1]
    assert listed("--tag", "nope") == []

    rows = {r["id"]: r for r in json.loads(cli("run", "list", "--json", check=True).stdout)}
    assert rows[r1]["tags"] == ["baseline", "lr:0.1"] and rows[r2]["tags"] == ["baseline"]
    tsv = cli("run", "list", check=True).stdout.splitlines()
    assert tsv[0].split("\t")[-1] == "TAGS"
    assert any(line.startswith(f"{r1}\t") and line.endswith("baseline lr:0.1") for line in tsv)

    removed = cli("run", "tag", str(r1), "baseline", "--remove", check=True)
    assert removed.stdout.split() == ["lr:0.1"]
    shown = json.loads(cli("run", "show", str(r1), "--json", check=True).stdout)
    assert shown["tags"] == ["lr:0.1"]
    assert "lr:0.1" in cli("run", "show", str(r1), check=True).stdout


@pytest.mark.parametrize("bad", ["two words", "../../etc", "_flag", "x" * 65, "tab\there", ""])
def test_a_bad_tag_is_refused_in_one_line_and_nothing_is_tagged(store_runs, bad):
    r1 = store_runs["ids"][0]
    result = cli("run", "tag", str(r1), "fine", bad)
    assert result.returncode == 2
    assert "not a tag" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert listed("--tag", "fine") == []


def test_unknown_runs_are_named_and_change_nothing(store_runs):
    for args in (
        ("tag", "999", "x"),
        ("note", "999", "text"),
        ("archive", "1", "999"),
        ("delete", "999", "--yes"),
        ("tag", "abc", "x"),
    ):
        result = cli("run", *args)
        assert result.returncode == 2, args
        assert "no run" in result.stderr or "whole numbers" in result.stderr, result.stderr
    assert listed("--archived") == []


def test_a_note_is_set_edited_in_the_editor_and_cleared(store_runs, tmp_path, monkeypatch):
    r1 = store_runs["ids"][0]
    cli("run", "note", str(r1), "tried [b]bigger[/b] trees", check=True)
    shown = json.loads(cli("run", "show", str(r1), "--json", check=True).stdout)
    assert shown["note"] == "tried [b]bigger[/b] trees"
    assert "tried [b]bigger[/b] trees" in cli("run", "show", str(r1), check=True).stdout

    editor = tmp_path / "editor.sh"
    seen = tmp_path / "seen.txt"
    # The editor keeps what it was shown (the note so far) and writes a new note.
    editor.write_text(f'#!/bin/sh\ncp "$1" "{seen}"\nprintf "first\\nsecond line\\n" > "$1"\n')
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    cli("run", "note", str(r1), "--edit", check=True)
    shown = json.loads(cli("run", "show", str(r1), "--json", check=True).stdout)
    assert seen.read_text().strip() == "tried [b]bigger[/b] trees"
    assert shown["note"] == "first\nsecond line"

    cli("run", "note", str(r1), "", check=True)
    assert json.loads(cli("run", "show", str(r1), "--json", check=True).stdout)["note"] is None

    both = cli("run", "note", str(r1), "text", "--edit")
    assert both.returncode == 2 and "one of the two" in both.stderr
    for bad, why in (("x" * 10_001, "at most 10000"), ("bell\x07", "control characters")):
        result = cli("run", "note", str(r1), bad)
        assert result.returncode == 2 and why in result.stderr, result.stderr


# --- the archive ---------------------------------------------------------------------


def test_archived_runs_leave_the_listing_until_unarchived(store_runs):
    r1, r2, r3, r4, r5, r6 = store_runs["ids"]
    assert listed() == [r6, r5, r4, r3, r2, r1]
    done = cli("run", "archive", str(r1), str(r3), check=True)
    assert f"archived: runs {r1}, {r3}" in done.stderr
    assert listed() == [r6, r5, r4, r2]
    assert listed("--archived") == [r3, r1]
    again = cli("run", "archive", str(r1), check=True)
    assert "already archived" in again.stderr

    page = json.loads(cli("run", "list", "--json", "--page", "--limit", "1", check=True).stdout)
    assert page["total"] == 4 and [r["id"] for r in page["runs"]] == [r6]
    page = json.loads(
        cli("run", "list", "--json", "--archived", "--limit", "1", "--page", check=True).stdout
    )
    assert page["total"] == 2 and page["next_after"] == r3

    shown = json.loads(cli("run", "show", str(r1), "--json", check=True).stdout)
    assert shown["archived_at"] is not None
    empty = cli("run", "list", "--archived", "--tag", "x", check=True)
    assert "no archived runs tagged x" in empty.stderr

    cli("run", "unarchive", str(r1), check=True)
    assert listed() == [r6, r5, r4, r2, r1]
    shown = json.loads(cli("run", "show", str(r1), "--json", check=True).stdout)
    assert shown["archived_at"] is None


# --- deleting runs -------------------------------------------------------------------


def artifact_exists(sha: str) -> bool:
    return paths.artifact_file(sha).exists()


def test_delete_refuses_running_registered_and_parent_runs_and_deletes_nothing(store_runs):
    r1, r2, r3, r4, r5, r6 = store_runs["ids"]
    for ids, why in (
        ((r1, r4), "it is running"),
        ((r2,), "model version 1 of demo was registered from it"),
        ((r5,), "1 run(s) of it"),
    ):
        result = cli("run", "delete", *map(str, ids), "--yes")
        assert result.returncode == 2, result.stderr
        assert why in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert listed() == [r6, r5, r4, r3, r2, r1]
    assert paths.run_log(r1).exists() and all(map(artifact_exists, store_runs["shas"].values()))


def test_delete_asks_first_and_no_keeps_everything(store_runs):
    r1 = store_runs["ids"][0]
    result = cli("run", "delete", str(r1), input="n\n")
    assert result.returncode == 1
    assert "frees 4.9 KiB" in result.stderr and "nothing deleted" in result.stderr
    closed = cli("run", "delete", str(r1), input="")  # no answer at all is a no
    assert closed.returncode == 1 and "nothing deleted" in closed.stderr
    assert r1 in listed() and paths.run_log(r1).exists()


def test_delete_removes_rows_logs_and_unneeded_artifacts_and_says_what_it_freed(store_runs):
    r1, r2, r3, r4, r5, r6 = store_runs["ids"]
    shas = store_runs["shas"]
    cli("run", "tag", str(r1), "gone", check=True)
    result = cli("run", "delete", str(r1), str(r3), input="y\n")
    assert result.returncode == 0, result.stderr
    # Plan: logs 4000 + 250, unique.bin 1000, own.bin 500; shared.json (run 2
    # logged it) and schema.json (model version 1 needs it) stay.
    assert "2 artifact file(s)" in result.stderr and "Keeps 2 artifact file(s)" in result.stderr
    assert f"deleted runs {r1}, {r3}; freed 5.6 KiB" in result.stderr
    assert listed() == [r6, r5, r4, r2]
    assert not paths.run_dir(r1).exists() and not paths.run_dir(r3).exists()
    assert not artifact_exists(shas["unique"]) and not artifact_exists(shas["own"])
    assert artifact_exists(shas["shared"]) and artifact_exists(shas["schema"])
    assert artifact_exists(shas["model"])

    store = open_store()
    try:
        assert run_notes.tags_of(store, [r1]) == {}
        assert run_store.params(store, r1) == {}
        assert run_store.artifacts(store, r1) == []
        deleted = store.rows("SELECT data FROM events WHERE kind = 'run.deleted' ORDER BY id")
        assert sorted(json.loads(e["data"])["run"] for e in deleted) == [r1, r3]
    finally:
        store.close()


def test_delete_a_sweep_with_its_trials_in_json(store_runs):
    r1, r2, r3, r4, r5, r6 = store_runs["ids"]
    log(r6, 100)
    result = cli("run", "delete", str(r5), str(r6), "--yes", "--json", check=True)
    assert json.loads(result.stdout) == {"deleted": [r5, r6], "freed_bytes": 100, "problems": []}
    assert listed() == [r4, r3, r2, r1]


def test_delete_checks_again_inside_its_transaction(store_runs):
    from workbench.core.errors import UsageError
    from workbench.runs.manage import delete, plan_delete

    r1 = store_runs["ids"][0]
    store = open_store()
    try:
        plan = plan_delete(store, [r1])
        assert not plan.blockers and plan.freed_bytes == 4000 + 1000
        # The run is registered as a model version after the plan was made.
        model_store.add_version(
            store,
            project_id=1,
            run_id=r1,
            framework="sklearn",
            framework_version=None,
            model_name="model.skops",
            model_sha256=store_runs["shas"]["unique"],
            schema_sha256=None,
            holdout_sha256=None,
            task=None,
            metric=None,
            metrics={},
        )
        with pytest.raises(UsageError, match="registered from it"):
            delete(store, plan)
        assert run_store.get(store, r1) is not None
        assert paths.run_log(r1).exists() and os.path.exists(
            paths.artifact_file(store_runs["shas"]["unique"])
        )
    finally:
        store.close()
