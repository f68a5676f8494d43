"""`workbench archive`: a project's history moved between two stores A and B —
export, dry-run, import, import again (nothing changes), an incremental
`--since last` hand-over, and a model that predicts the same in both."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from _watch_fixtures import start_warm_runner, supervised_run
from wbtest import NETGUARD, REPO, regular_only
from wbtest import wb_inprocess as wbi

pytestmark = pytest.mark.slow  # trains three small models in all


def _train(home: Path, *overrides: str) -> None:
    """A supervised run of penguins in the store at `home` (started from this
    process: the run's supervisor and trainer are processes of their own)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        supervised_run("penguins", *overrides)


@pytest.fixture(scope="module")
def trained_a(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Path:
    """Store A: penguins with two runs, two model versions (champion, challenger)."""
    root = tmp_path_factory.mktemp("archive")
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", root / "penguins")
    # The run's cache, as the tests' own stores have: what the installed LightGBM
    # accepts is found out once, not by each run.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(root / "home"))
        mp.setenv("WORKBENCH_CACHE", str(shared_cache))
        mp.setenv("NO_COLOR", "1")
        mp.setenv(
            "PYTHONPATH", os.pathsep.join([str(NETGUARD), os.environ.get("PYTHONPATH", "")])
        )
        for var in ("WORKBENCH_RUN_ID", "WORKBENCH_PARAMS", "WORKBENCH_PROJECT_DIR"):
            mp.delenv(var, raising=False)
        wbi("project", "add", str(root / "penguins"), check=True)
        # Both trainers forked from one warm runner, which leaves soon after (its
        # socket in the store is not copied: `regular_only`).
        start_warm_runner(idle_s=5)
        _train(root / "home", "n_estimators=3")
        _train(root / "home", "n_estimators=8")
    return root


def _json(*args: str) -> dict:
    result = wbi(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True)


def _dump(home: Path) -> list[str]:
    conn = _db(home)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _runs(home: Path) -> dict[str, dict]:
    """Each run by uuid: its state, params, metric points (key, step, value), artifacts."""
    conn = _db(home)
    try:
        out = {}
        for rid, uuid, status, ended, exit_code in conn.execute(
            "SELECT id, uuid, status, ended_at, exit_code FROM runs"
        ):
            out[uuid] = {
                "state": (status, ended, exit_code),
                "params": conn.execute(
                    "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (rid,)
                ).fetchall(),
                "points": conn.execute(
                    "SELECT key, step, ts, value FROM metric_points WHERE run_id = ?"
                    " ORDER BY key, idx",
                    (rid,),
                ).fetchall(),
                "artifacts": conn.execute(
                    "SELECT name, sha256 FROM artifacts WHERE run_id = ? ORDER BY name", (rid,)
                ).fetchall(),
                "model": conn.execute(
                    "SELECT uuid, model_sha256 FROM model_versions WHERE run_id = ?", (rid,)
                ).fetchall(),
            }
        return out
    finally:
        conn.close()


def _predict(home: Path, monkeypatch) -> dict[int, list]:
    from workbench.models.registry import list_versions, load_model
    from workbench.store import open_store

    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    frame = pd.read_csv(REPO / "sample_projects" / "penguins-lightgbm" / "data" / "train.csv")
    store = open_store()
    try:
        return {
            v.version: list(load_model(v).predict(frame)[0])
            for v in list_versions(store, "penguins")
        }
    finally:
        store.close()


def test_hand_over_from_a_to_b_idempotent_and_incremental(trained_a, tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(trained_a / "home", a, ignore=regular_only)
    first, second = tmp_path / "first.wbx", tmp_path / "second.wbx"

    monkeypatch.setenv("WORKBENCH_HOME", str(a))
    made = _json("archive", "export", "penguins", "-o", str(first), "--to", "laptop")
    assert made["counts"]["runs"] == 2 and made["counts"]["model_versions"] == 2
    assert made["counts"]["metric_points"] > 0 and made["counts"]["blobs"] >= 3
    shown = _json("archive", "show", str(first))
    assert shown["signer"] == "this store" and shown["projects"] == ["penguins"]
    assert shown["counts"] == made["counts"]
    assert wbi("archive", "verify", str(first)).returncode == 0

    monkeypatch.setenv("WORKBENCH_HOME", str(b))
    project_b = tmp_path / "penguins-on-b"
    args = ("archive", "import", str(first), "--project-dir", str(project_b))
    dry = _json(*args, "--dry-run")
    assert dry["dry_run"] and dry["signer"] == "unknown signer"
    assert {k: c["new"] for k, c in dry["counts"].items() if c["new"]} == {
        "projects": 1,
        "runs": 2,
        "dataset_versions": 1,
        "model_versions": 2,
        "aliases": 2,
        "promotions": made["counts"]["promotions"],
    }
    assert all(c["identical"] == c["conflicting"] == 0 for c in dry["counts"].values())
    assert not (b / "workbench.db").exists() or _runs(b) == {}  # a dry run writes nothing

    done = _json(*args)
    assert done["counts"] == dry["counts"]
    assert done["metric_points_added"] == made["counts"]["metric_points"]
    assert done["alias_proposals"] == 2
    before = _dump(b)
    again = _json(*args)
    assert all(c["new"] == c["conflicting"] == 0 for c in again["counts"].values())
    assert again["counts"]["runs"]["identical"] == 2 and again["metric_points_added"] == 0
    assert _dump(b) == before  # importing the same archive twice changes nothing

    # A trains once more; only that run and its model version travel next.
    _train(a, "n_estimators=5")
    monkeypatch.setenv("WORKBENCH_HOME", str(a))
    delta = _json(
        "archive", "export", "penguins", "-o", str(second), "--since", "last", "--to", "laptop"
    )
    assert delta["counts"]["runs"] == 1 and delta["counts"]["model_versions"] == 1
    assert 0 < delta["counts"]["metric_points"] < made["counts"]["metric_points"]

    monkeypatch.setenv("WORKBENCH_HOME", str(b))
    third = _json("archive", "import", str(second))
    assert third["counts"]["runs"] == {"new": 1, "identical": 0, "conflicting": 0}
    assert third["counts"]["model_versions"]["new"] == 1

    runs_a, runs_b = _runs(a), _runs(b)
    assert len(runs_a) == 3 and runs_a == runs_b  # states, params, metrics, artifacts
    for run in runs_b.values():
        for _, sha in run["artifacts"]:
            assert (b / "artifacts" / sha[:2] / sha).is_file()
    conn = _db(b)
    try:
        assert conn.execute("SELECT COUNT(*) FROM model_aliases").fetchone()[0] == 0
        proposals = conn.execute(
            "SELECT p.alias, v.version FROM model_alias_proposals p"
            " JOIN model_versions v ON v.id = p.version_id ORDER BY p.alias"
        ).fetchall()
        path = conn.execute("SELECT path FROM projects").fetchone()[0]
    finally:
        conn.close()
    assert {alias for alias, _ in proposals} >= {"champion", "challenger"}
    assert path == str(project_b.resolve())
    assert _predict(a, monkeypatch) == _predict(b, monkeypatch)


def test_accept_aliases_and_conflicts(trained_a, tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(trained_a / "home", a, ignore=regular_only)
    archive = tmp_path / "all.wbx"
    monkeypatch.setenv("WORKBENCH_HOME", str(a))
    _json("archive", "export", "penguins", "-o", str(archive), "--include", "models")
    monkeypatch.setenv("WORKBENCH_HOME", str(b))
    done = _json("archive", "import", str(archive), "--accept-aliases")
    assert done["alias_proposals"] == 0 and done["counts"]["aliases"]["new"] == 2
    conn = _db(b)
    try:
        aliases = dict(
            conn.execute(
                "SELECT a.alias, v.version FROM model_aliases a"
                " JOIN model_versions v ON v.id = a.version_id"
            ).fetchall()
        )
    finally:
        conn.close()
    conn = _db(a)
    try:
        expected = dict(
            conn.execute(
                "SELECT a.alias, v.version FROM model_aliases a"
                " JOIN model_versions v ON v.id = a.version_id"
            ).fetchall()
        )
    finally:
        conn.close()
    assert aliases == expected

    # B's copy of a run changes: a conflict, kept by default, replaced on request.
    conn = sqlite3.connect(b / "workbench.db")
    with conn:
        conn.execute("UPDATE runs SET exit_code = 9 WHERE id = 1")
    conn.close()
    kept = _json("archive", "import", str(archive))
    assert kept["counts"]["runs"] == {"new": 0, "identical": 1, "conflicting": 1}
    assert sorted(r["state"][2] for r in _runs(b).values()) == [0, 9]
    _json("archive", "import", str(archive), "--on-conflict", "overwrite")
    assert _runs(b) == _runs(a)

    bad = wbi("archive", "export", "penguins", "-o", str(tmp_path / "x.wbx"), "--include", "logs")
    assert bad.returncode == 2 and "--include 'logs'" in bad.stderr
    missing = wbi("archive", "export", "nope", "-o", str(tmp_path / "y.wbx"))
    assert missing.returncode != 0 and "no project named 'nope'" in missing.stderr
    assert not (tmp_path / "y.wbx").exists()


def test_export_of_chosen_runs_and_dataset_files(trained_a, tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(trained_a / "home", a, ignore=regular_only)
    monkeypatch.setenv("WORKBENCH_HOME", str(a))
    one = tmp_path / "one.wbx"
    made = _json(
        "archive", "export", "penguins", "-o", str(one), "--runs", "2", "--include", "datasets"
    )
    assert made["counts"]["runs"] == 1 and made["counts"]["model_versions"] == 1
    assert made["counts"]["blobs"] == 1  # the training data only, by its SHA-256
    later = _json(
        "archive", "export", "penguins", "-o", str(tmp_path / "none.wbx"), "--since", "2999-01-01"
    )
    assert later["counts"]["runs"] == 0
    shown = wbi("archive", "show", str(one))
    assert shown.returncode == 0 and "signer     this store SHA256:" in shown.stdout
    assert "  runs               1" in shown.stdout
    verified = wbi("archive", "verify", str(one))
    assert verified.returncode == 0 and ": ok, " in verified.stdout
    monkeypatch.setenv("WORKBENCH_HOME", str(b))
    dry = wbi("archive", "import", str(one), "--dry-run")
    assert dry.returncode == 0 and "would import" in dry.stdout
    assert [line.split() for line in dry.stdout.splitlines() if "  runs " in line] == [
        ["runs", "1", "0", "0"]
    ]
    done = _json("archive", "import", str(one))
    assert done["counts"]["runs"]["new"] == 1 and done["blobs_added"] == 1
    conn = _db(b)
    try:
        [sha] = conn.execute("SELECT sha256 FROM dataset_versions").fetchone()
    finally:
        conn.close()
    assert (b / "artifacts" / sha[:2] / sha).is_file()


def test_the_migration_gives_existing_rows_a_global_identity(tmp_path, monkeypatch):
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    from workbench.store import migrations, open_store
    from workbench.store.schema import STEPS

    home = tmp_path / "home"
    home.mkdir()
    before = Migrations("workbench")
    for name in list(STEPS)[: list(STEPS).index("m008_global_ids")]:
        before(name=name)(migrations._step(STEPS[name]))
    database = Database(home / "workbench.db")
    before.apply(database)
    database.execute("INSERT INTO projects (name, path, created_at) VALUES ('p', '/p', 0)")
    for _ in range(3):
        database.execute(
            "INSERT INTO runs (project_id, status, trainer, created_at)"
            " VALUES (1, 'succeeded', 'script', 0)"
        )
    database.conn.commit()
    database.conn.close()
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    store = open_store()
    try:
        uuids = [r["uuid"] for r in store.rows("SELECT uuid FROM runs")]
        from workbench.store import runs as store_runs

        new = store_runs.create(store, 1, "script", event_message="run {id}")
        uuids.append(store.scalar("SELECT uuid FROM runs WHERE id = ?", (new,)))
    finally:
        store.close()
    assert len(set(uuids)) == 4 and all(len(u) == 32 for u in uuids)


def _stand_in_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal real wheel (METADATA, WHEEL, RECORD) standing in for `name`."""
    import base64
    import hashlib
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_")
    info = f"{stem}-{version}.dist-info"
    files = {
        f"{stem}_pkg/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(
        f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()}"
        f",{len(d)}\n"
        for p, d in files.items()
    )
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = folder / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
    return path


def _no_pip_sources(monkeypatch) -> None:
    """Neither pip's cache nor the wheel folders this machine's pip may know: only
    the folders given. (Finding wheels in pip's sources is test_bundle's; here
    asking pip for them would only cost two pip processes per export.)"""
    from workbench.models import wheels

    monkeypatch.setattr(wheels, "pip_cache_dir", lambda: None)
    monkeypatch.setattr(wheels, "pip_local_sources", lambda: ([], []))


def _notes(home: Path) -> dict[str, tuple]:
    conn = _db(home)
    try:
        return {
            uuid: (
                note,
                archived,
                tuple(
                    t
                    for (t,) in conn.execute(
                        "SELECT tag FROM run_tags WHERE run_id = ? ORDER BY tag", (rid,)
                    )
                ),
            )
            for rid, uuid, note, archived in conn.execute(
                "SELECT id, uuid, note, archived_at FROM runs"
            )
        }
    finally:
        conn.close()


def test_tags_notes_and_a_wheelhouse_travel(trained_a, tmp_path, monkeypatch):
    from workbench.models.wheels import pinned_requirements

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(trained_a / "home", a, ignore=regular_only)
    _no_pip_sources(monkeypatch)
    monkeypatch.setenv("WORKBENCH_HOME", str(a))
    for args in (("run", "tag", "1", "baseline", "small"), ("run", "note", "1", "first try")):
        assert wbi(*args).returncode == 0
    assert wbi("run", "archive", "2").returncode == 0

    # No wheel anywhere: refused, naming what is missing; no archive is left.
    empty = tmp_path / "empty"
    empty.mkdir()
    nope = tmp_path / "nope.wbx"
    failed = wbi(
        "archive", "export", "penguins", "-o", str(nope), "--include", "models,wheels",
        "--wheelhouse", str(empty),
    )  # fmt: skip
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    import lightgbm

    assert "no wheel for" in failed.stderr and f"lightgbm=={lightgbm.__version__}" in failed.stderr
    assert not nope.exists() and not list(tmp_path.glob(".nope.wbx.*"))

    alone = wbi("archive", "export", "penguins", "-o", str(nope), "--wheelhouse", str(empty))
    assert alone.returncode == 2 and "--wheelhouse is for --include wheels" in alone.stderr

    house = tmp_path / "house"
    pins = pinned_requirements("lightgbm")
    for pin in pins:
        _stand_in_wheel(house, pin.name, pin.version)
    first = tmp_path / "first.wbx"
    made = _json(
        "archive", "export", "penguins", "-o", str(first), "--include", "models,wheels",
        "--wheelhouse", str(house), "--to", "laptop",
    )  # fmt: skip
    assert made["counts"]["wheels"] == len(pins) == len(made["wheels"])
    shown = _json("archive", "show", str(first))
    assert sorted(shown["wheels"]) == sorted(p.name for p in house.iterdir())
    shown_text = wbi("archive", "show", str(first)).stdout
    assert f"wheels     {len(pins)} for serving its models:" in shown_text

    monkeypatch.setenv("WORKBENCH_HOME", str(b))
    wheels_dir = tmp_path / "b-wheels"
    args = ("archive", "import", str(first), "--wheels-dir", str(wheels_dir))
    dry = _json(*args, "--dry-run")
    assert dry["counts"]["tags"] == {"new": 2, "identical": 0, "conflicting": 0}
    assert dry["counts"]["notes"] == {"new": 2, "identical": 0, "conflicting": 0}
    assert dry["wheels_dir"] == str(wheels_dir.resolve()) and not wheels_dir.exists()
    done = _json(*args)
    assert done["wheels_added"] == len(pins)
    for wheel in house.iterdir():  # the same bytes, under their own names
        assert (wheels_dir / wheel.name).read_bytes() == wheel.read_bytes()
    stored = {p.name for p in (b / "artifacts").rglob("*") if p.is_file()}
    assert stored and not stored & {hashlib_of(w) for w in house.iterdir()}  # not store files
    assert _notes(b) == _notes(a)
    again = _json(*args)
    assert again["counts"]["tags"]["new"] == again["counts"]["notes"]["new"] == 0
    assert again["wheels_added"] == 0
    human = wbi(*args).stdout
    where = wheels_dir.resolve()
    assert f"left {len(pins)} wheels for serving its models in {where} (0 new)" in human
    assert f"--find-links {wheels_dir.resolve()}" in human

    # The imported wheelhouse serves: an offline bundle export in B takes its wheels.
    bundle = tmp_path / "bundle"
    exported = _json(
        "model", "export", "penguins", "-o", str(bundle), "--with-wheels",
        "--wheelhouse", str(wheels_dir),
    )  # fmt: skip
    assert {w["from"] for w in exported["wheels"]} == {str(wheels_dir)}

    # A tags and notes again, B notes the same run otherwise: tags merge, the
    # note is a conflict (kept here unless --on-conflict overwrite).
    monkeypatch.setenv("WORKBENCH_HOME", str(a))
    assert wbi("run", "tag", "1", "promising").returncode == 0
    assert wbi("run", "note", "1", "second thoughts").returncode == 0
    second = tmp_path / "second.wbx"
    delta = _json("archive", "export", "penguins", "-o", str(second), "--since", "last",
                  "--to", "laptop")  # fmt: skip
    assert delta["counts"]["runs"] == 1  # only the run whose tags and note changed
    monkeypatch.setenv("WORKBENCH_HOME", str(b))
    assert wbi("run", "note", "1", "noted on b").returncode == 0
    assert wbi("run", "tag", "1", "from-b").returncode == 0
    kept = _json("archive", "import", str(second))
    assert kept["counts"]["tags"] == {"new": 1, "identical": 2, "conflicting": 0}
    assert kept["counts"]["notes"] == {"new": 0, "identical": 0, "conflicting": 1}
    run_uuid = next(u for u, n in _notes(a).items() if n[0] == "second thoughts")
    assert _notes(b)[run_uuid] == ("noted on b", None, ("baseline", "from-b", "promising", "small"))
    _json("archive", "import", str(second), "--on-conflict", "overwrite")
    assert _notes(b)[run_uuid][0] == "second thoughts"


def hashlib_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_alias_proposals_are_listed_accepted_through_the_gate_and_rejected(
    trained_a, tmp_path, monkeypatch
):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(trained_a / "home", a, ignore=regular_only)
    archive = tmp_path / "all.wbx"
    monkeypatch.setenv("WORKBENCH_HOME", str(a))
    _json("archive", "export", "penguins", "-o", str(archive), "--include", "models")
    aliases_a = {v["version"]: v["aliases"] for v in _json("model", "list", "penguins")}
    champion = next(n for n, aliases in aliases_a.items() if "champion" in aliases)
    challenger = next(n for n, aliases in aliases_a.items() if "challenger" in aliases)
    monkeypatch.setenv("WORKBENCH_HOME", str(b))
    _json("archive", "import", str(archive))

    listed = wbi("model", "list", "penguins")
    assert listed.returncode == 0, listed.stderr
    assert "alias proposals" in listed.stdout
    assert f"workbench model accept penguins champion:{champion}" in listed.stdout
    documents = _json("model", "list", "penguins")
    assert all(v["aliases"] == [] for v in documents)
    by_version = {v["version"]: [p["id"] for p in v["proposals"]] for v in documents}
    assert by_version == {
        champion: [f"champion:{champion}"],
        challenger: [f"challenger:{challenger}"],
    }
    assert [p["id"] for p in _json("model", "proposals", "penguins")] == [
        f"challenger:{challenger}",
        f"champion:{champion}",
    ]

    bad = wbi("model", "accept", "penguins", "champion")
    assert bad.returncode == 2 and "expected ALIAS:VERSION" in bad.stderr
    missing = wbi("model", "accept", "penguins", "champion:99")
    assert missing.returncode != 0 and "no alias proposal champion:99" in missing.stderr
    dry = _json("model", "accept", "penguins", f"champion:{champion}", "--dry-run")
    assert dry["promoted"] and dry["dry_run"]
    assert len(_json("model", "proposals", "penguins")) == 2  # a dry run changes nothing
    decisions = _decisions(b, champion)
    accepted = _json("model", "accept", "penguins", f"champion:{champion}")
    assert accepted["promoted"] and accepted["proposal"] == f"champion:{champion}"
    after = {v["version"]: v["aliases"] for v in _json("model", "list", "penguins")}
    assert "champion" in after[champion]
    rejected = wbi("model", "reject", "penguins", f"challenger:{challenger}")
    assert rejected.returncode == 0, rejected.stderr
    assert _json("model", "proposals", "penguins") == []
    assert "alias proposals" not in wbi("model", "list", "penguins").stdout
    assert _decisions(b, champion) == decisions + 1  # recorded, as `model promote` does


def _decisions(home: Path, version: int) -> int:
    conn = _db(home)
    try:
        return conn.execute(
            "SELECT COUNT(*) FROM promotions p JOIN model_versions v ON v.id = p.challenger_id"
            " WHERE v.version = ? AND p.promoted = 1 AND p.alias = 'champion'",
            (version,),
        ).fetchone()[0]
    finally:
        conn.close()
