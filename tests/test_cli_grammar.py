"""The command line reads noun verb throughout; the old spellings of the commands
that had mode flags still work for one release, hidden from `--help`, each saying
on one line of stderr what the new spelling is, then doing exactly what it does
(same stdout, same exit code)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from wbtest import wb

from workbench.cli import cli

NOTE = "is deprecated and goes in the next release; use `workbench "


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_alias(new: tuple[str, ...], old: tuple[str, ...], spelled: str) -> Result:
    """`old` does what `new` does, and says `spelled` is the new spelling."""
    now, then = invoke(*new), invoke(*old)
    assert "Traceback" not in now.output + then.output
    assert then.exit_code == now.exit_code, (now.stderr, then.stderr)
    assert then.stdout == now.stdout
    assert NOTE not in now.stderr  # the new spelling says nothing of the kind
    notes = [line for line in then.stderr.splitlines() if NOTE in line]
    assert len(notes) == 1, then.stderr
    assert notes[0].endswith(f"use `workbench {spelled}`"), notes[0]
    assert then.stderr.replace(notes[0] + "\n", "", 1) == now.stderr
    return now


@pytest.fixture
def project(tmp_path: Path, wb_home: Path) -> str:
    """A registered project with one finished sweep of two trials (a real Optuna
    study in the store's sweep folder, real rows in the store)."""
    import optuna

    from workbench.sweeps.engine import open_study

    done = invoke("project", "init", str(tmp_path / "gram"), "--template", "script")
    assert done.exit_code == 0, done.stderr
    db = sqlite3.connect(wb_home / "workbench.db")
    with db:
        now = time.time()
        sweep_id = db.execute(
            "INSERT INTO runs (project_id, status, trainer, created_at, started_at, ended_at)"
            " VALUES (1, 'succeeded', 'sweep', ?, ?, ?)",
            (now, now, now),
        ).lastrowid
        spec = {
            "_trials": 2,
            "_parallel": 1,
            "_objective": "score",
            "_direction": "maximize",
            "_space": {"alpha": {"type": "float", "low": 0.0, "high": 1.0}},
        }
        db.executemany(
            "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
            [(sweep_id, k, json.dumps(v)) for k, v in spec.items()],
        )
        for number in (0, 1):
            child = db.execute(
                "INSERT INTO runs (project_id, parent_id, status, trainer, created_at)"
                " VALUES (1, ?, 'succeeded', 'script', ?)",
                (sweep_id, now),
            ).lastrowid
            db.execute(
                "INSERT INTO params (run_id, key, value) VALUES (?, '_trial', ?)",
                (child, json.dumps(number)),
            )
    db.close()
    study = open_study(sweep_id, "maximize")
    for alpha, score in ((0.25, 0.5), (0.75, 0.875)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"alpha": alpha},
                distributions={"alpha": optuna.distributions.FloatDistribution(0.0, 1.0)},
                value=score,
            )
        )
    return "gram"


# -- sweep ---------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_sweep_list_and_its_old_spelling(project: str, as_json: bool):
    flag = ("--json",) if as_json else ()
    now = assert_alias(
        ("sweep", "list", project, *flag), ("sweep", project, "--list", *flag), "sweep list gram"
    )
    assert now.exit_code == 0
    if as_json:
        [listed] = json.loads(now.stdout)
        assert (listed["id"], listed["status"], listed["trials"]) == (1, "succeeded", 2)
        assert listed["runs"] == {"succeeded": 2}
    else:
        assert "SWEEP" in now.stdout and "succeeded 2" in now.stdout


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_sweep_show_and_its_old_spelling(project: str, as_json: bool):
    flag = ("--json",) if as_json else ()
    now = assert_alias(
        ("sweep", "show", "1", *flag), ("sweep", project, "--show", "1", *flag), "sweep show 1"
    )
    assert now.exit_code == 0
    if as_json:
        shown = json.loads(now.stdout)
        assert shown["best"]["number"] == 1 and shown["best"]["value"] == 0.875
        assert [t["run_id"] for t in shown["trials"]] == [2, 3]
    else:
        assert "trial 1 (run 3)" in now.stdout


def test_sweep_start_and_resume_and_their_old_spellings_refuse_alike(project: str):
    start = assert_alias(
        ("sweep", "start", "ghost", "--trials", "2"),
        ("sweep", "ghost", "--trials", "2"),
        "sweep start ghost",
    )
    assert start.exit_code == 2 and "no project named 'ghost'" in start.stderr
    resume = assert_alias(
        ("sweep", "resume", project, "7"),
        ("sweep", project, "--resume", "7"),
        "sweep resume gram 7",
    )
    assert resume.exit_code != 0 and "7" in resume.stderr
    latest = assert_alias(
        ("sweep", "resume", project), ("sweep", project, "--resume"), "sweep resume gram"
    )
    assert latest.exit_code != 0 and latest.stderr.startswith("error:")  # nothing unfinished
    bad = assert_alias(
        ("sweep", "show", "first"), ("sweep", project, "--show", "first"), "sweep show first"
    )
    assert bad.exit_code == 2 and "sweep ids are run ids" in bad.stderr


# -- watch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
@pytest.mark.parametrize("verb", ["status", "stop"])
def test_watch_status_and_stop_and_their_old_spellings(verb: str, as_json: bool):
    flag = ("--json",) if as_json else ()
    now = assert_alias(("watch", verb, *flag), ("watch", f"--{verb}", *flag), f"watch {verb}")
    assert now.exit_code == 0
    if as_json:
        key = "running" if verb == "status" else "was_running"
        assert json.loads(now.stdout)[key] is False
    else:
        assert "no watcher" in now.stdout


def test_watch_start_refuses_json_in_the_foreground():
    result = invoke("watch", "start", "--json")
    assert result.exit_code == 2 and "--json goes with --detach" in result.stderr
    old = invoke("watch", "--json")  # the old message, as before
    assert old.exit_code == 2 and "--json goes with --status, --stop or --detach" in old.stderr


def test_watch_start_detached_status_stop_in_real_processes(tmp_path: Path):
    """The daemon is the point here: started, asked and stopped through the new verbs."""
    folder = tmp_path / "watched"
    assert wb("project", "init", str(folder), "--template", "script").returncode == 0
    started = wb("watch", "start", "--detach", "--json", "--debounce", "0.2", timeout=60)
    try:
        assert started.returncode == 0, started.stderr
        assert NOTE not in started.stderr
        doc = json.loads(started.stdout)
        assert doc["running"] is True
        status = json.loads(wb("watch", "status", "--json", check=True).stdout)
        assert status["running"] is True and status["pid"] == doc["pid"]
        old = wb("watch", "--status", "--json", check=True)
        assert json.loads(old.stdout)["pid"] == doc["pid"]
        assert "use `workbench watch status`" in old.stderr
    finally:
        stopped = wb("watch", "stop", "--json", timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["was_running"] is True
    assert json.loads(wb("watch", "status", "--json", check=True).stdout)["running"] is False


# -- pipeline ------------------------------------------------------------------------------


def test_pipeline_run_and_list_and_their_old_spellings(project: str, tmp_path: Path):
    nothing = assert_alias(
        ("pipeline", "run", project, "--json"),
        ("pipeline", project, "--json"),
        "pipeline run gram",
    )
    assert json.loads(nothing.stdout)["outcome"] == "nothing to do" and nothing.exit_code == 0
    empty = assert_alias(
        ("pipeline", "list", project, "--json"),
        ("pipeline", project, "--history", "--json"),
        "pipeline list gram",
    )
    assert json.loads(empty.stdout) == []

    for name in ("bad1.csv", "bad2.csv"):  # two contents: each is a new batch
        (tmp_path / name).write_bytes(b"\x00\x01\x02 not a table: " + name.encode() + b"\n")
    new = invoke("pipeline", "run", project, str(tmp_path / "bad1.csv"), "--json")
    old = invoke("pipeline", project, str(tmp_path / "bad2.csv"), "--json")
    assert new.exit_code == old.exit_code == 1, (new.stderr, old.stderr)
    assert json.loads(new.stdout)["outcome"] == json.loads(old.stdout)["outcome"] == "rejected"
    assert "use `workbench pipeline run gram FILE...`" in old.stderr

    for flag in (("--json",), ()):
        listed = assert_alias(
            ("pipeline", "list", project, *flag),
            ("pipeline", project, "--history", *flag),
            "pipeline list gram",
        )
        if flag:
            assert [p["outcome"] for p in json.loads(listed.stdout)] == ["rejected"] * 2
        else:
            assert listed.stdout.count("rejected") == 2


# -- plugins -------------------------------------------------------------------------------


def test_plugins_list_takes_the_project_as_an_argument(project: str):
    now = assert_alias(
        ("plugins", "list", project, "--json"),
        ("plugins", "list", "--project", project, "--json"),
        "plugins list gram",
    )
    assert now.exit_code == 0
    assert any(p["source"] == "builtin" for p in json.loads(now.stdout))
    both = invoke("plugins", "list", project, "--project", "other")
    assert both.exit_code == 2 and "name the project once" in both.stderr


# -- the grammar as a whole ----------------------------------------------------------------


def _tree(group: click.Group, path: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _tree(command, (*path, name))


TREE = dict(_tree(cli))
MODE_FLAGS = {"--list", "--show", "--status", "--stop", "--history", "--resume", "--project"}


def test_every_listing_takes_json():
    listings = [p for p in TREE if p[-1] in ("list", "show", "status", "metrics", "schema")]
    assert len(listings) >= 12
    for path in listings:
        names = {o for p in TREE[path].params for o in getattr(p, "opts", [])}
        assert "--json" in names, " ".join(path)


def test_no_visible_mode_flag_stands_in_for_a_verb():
    for path, command in TREE.items():
        visible = {o for p in command.params if not getattr(p, "hidden", False) for o in p.opts}
        assert not visible & MODE_FLAGS, (" ".join(path), visible & MODE_FLAGS)


@pytest.mark.parametrize(
    "group,verbs,hidden",
    [
        ("sweep", ["list", "resume", "show", "start"], ["--list", "--show", "--resume"]),
        ("watch", ["start", "status", "stop"], ["--status", "--stop"]),
        ("pipeline", ["list", "run"], ["--history", "--again"]),
    ],
)
def test_old_spellings_are_hidden_from_help(group: str, verbs: list[str], hidden: list[str]):
    shown = invoke(group, "--help")
    assert shown.exit_code == 0
    listed = shown.stdout.split("Commands:")[1].split()
    assert [word for word in listed if word in verbs] == verbs
    for word in hidden:
        assert word not in shown.stdout
    assert "--project" not in invoke("plugins", "list", "--help").stdout
    for verb in verbs:
        assert invoke(group, verb, "--help").exit_code == 0


def test_a_noun_without_its_verb_names_the_verbs_in_one_line():
    for group, verbs in (("sweep", "list, resume, show, start"), ("pipeline", "list, run")):
        result = wb(group)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"error: `workbench {group}` needs a command: {verbs}"
            f" (see `workbench {group} --help`)"
        ]
        assert result.stdout == ""
