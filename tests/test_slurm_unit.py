"""The Slurm executor without a cluster: settings, the batch script and the
sbatch/ssh/squeue command lines built from them, Slurm's states as run
statuses, and one batched squeue for a store's jobs (a fake squeue on PATH)."""

from __future__ import annotations

import json
import os
import shlex
import stat
import textwrap
from pathlib import Path

import pytest

from workbench.config.executor import SlurmConfig
from workbench.config.project import load_config
from workbench.core.errors import ConfigError, UsageError, WorkbenchError
from workbench.runs import executors
from workbench.runs.executors import slurm
from workbench.runs.executors.job import SPEC_ENV
from workbench.store import jobs as job_store
from workbench.store import open_store
from workbench.store import runs as run_store
from workbench.store.runs import RunStatus


def project(root: Path, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (root / "train.py").write_text("print('hi')\n")
    (root / "workbench.toml").write_text(
        textwrap.dedent("""\
        [project]
        name = "clustered"
        [data]
        train = "data/train.csv"
        target = "y"
        [train]
        trainer = "script"
        script = "train.py"
        """)
        + textwrap.dedent(extra)
    )
    return root


FULL = """\
[runs]
executor = "slurm"
[slurm]
partition = "gpu"
time = "1-02:00:00"
cpus = 8
mem = "32G"
gpus = 2
account = "ml-team"
qos = "high"
sbatch = ["--constraint=a100", "--exclusive"]
setup = ["module load cuda/12.2", "source /shared/env.sh"]
workdir = "/shared/wb jobs"
host = "alice@login.cluster"
python = "/shared/venv/bin/python"
"""


def test_settings_are_read_and_checked(tmp_path):
    config = load_config(project(tmp_path / "p", FULL))
    assert config.executor == "slurm"
    s = config.slurm
    assert (s.partition, s.time, s.cpus, s.mem, s.gpus) == ("gpu", "1-02:00:00", 8, "32G", 2)
    assert s.sbatch == ("--constraint=a100", "--exclusive")
    assert s.host == "alice@login.cluster"
    # Without the tables: local, and empty Slurm settings.
    plain = load_config(project(tmp_path / "q"))
    assert plain.executor == "local" and plain.slurm == SlurmConfig()


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[slurm]\ntime = "two hours"\n', "slurm.time"),
        ('[slurm]\nmem = "lots"\n', "slurm.mem"),
        ("[slurm]\ncpus = 0\n", "slurm.cpus"),
        ('[slurm]\nsbatch = ["rm -rf /"]\n', "slurm.sbatch[0]"),
        ('[slurm]\nsetup = ["ok", "two\\nlines"]\n', "slurm.setup[1]"),
        ('[slurm]\ngpus = 1\ngres = "gpu:1"\n', "slurm.gres"),
        ('[slurm]\npartition = "a b"\n', "slurm.partition"),
        ('[slurm]\nhost = "-oProxyCommand=evil"\n', "slurm.host"),
        ('[slurm]\nnodes = 3\n', "slurm.nodes"),
        ('[runs]\nexecutor = "not a name"\n', "runs.executor"),
    ],
)
def test_a_bad_setting_names_its_key(tmp_path, extra, key):
    with pytest.raises(ConfigError) as err:
        load_config(project(tmp_path / "p", extra))
    assert key in str(err.value.message) or key in str(err.value)


def test_the_batch_script_carries_every_setting(tmp_path):
    settings = load_config(project(tmp_path / "p", FULL)).slurm
    spec = {"run_id": 7, "folder": "/shared/wb jobs/run-7", "params": {"lr": "it's"}}
    script = slurm.batch_script(
        settings, spec, name="wb-clustered-7", output="/shared/wb jobs/run-7.out", python="/v/py"
    )
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    sbatch = [line.removeprefix("#SBATCH ") for line in lines if line.startswith("#SBATCH ")]
    assert sbatch == [
        "--job-name=wb-clustered-7",
        "--output=/shared/wb jobs/run-7.out",
        "--open-mode=append",
        "--partition=gpu",
        "--time=1-02:00:00",
        "--cpus-per-task=8",
        "--mem=32G",
        "--gpus=2",
        "--account=ml-team",
        "--qos=high",
        "--constraint=a100",
        "--exclusive",
    ]
    # The setup lines come after the #SBATCH block (sbatch stops reading it at
    # the first command), before the job.
    assert lines.index("module load cuda/12.2") > max(
        i for i, line in enumerate(lines) if line.startswith("#SBATCH")
    )
    assert lines[-1] == "exec /v/py -m workbench.runs.executors.job"
    export = next(line for line in lines if line.startswith(f"export {SPEC_ENV}="))
    # The shell reads the spec back exactly, quotes and spaces included.
    assert json.loads(shlex.split(export.split("=", 1)[1])[0]) == spec


def test_an_array_job_asks_for_its_range_and_throttle():
    options = slurm.sbatch_options(SlurmConfig(), name="sweep", output="o", array="0-9%2")
    assert "--array=0-9%2" in options


def test_local_submission_is_a_plain_sbatch_reading_stdin():
    assert slurm.sbatch_command(None) == ["sbatch", "--parsable"]
    assert slurm.remote(["scancel", "12"], None) == ["scancel", "12"]


def test_submission_through_ssh_never_prompts_and_reuses_one_connection():
    argv = slurm.sbatch_command("alice@login", "/shared/wb jobs/run-1")
    assert argv[0] == "ssh"
    options = dict(
        argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o"
    )
    assert options["BatchMode"] == "yes"
    assert options["ControlMaster"] == "auto"
    assert options["ControlPersist"] == "10m"
    assert "%C" in options["ControlPath"]
    host_at = argv.index("alice@login")
    assert argv[host_at + 1] == "--"
    # One remote command line: the job folder made first (quoted), then sbatch.
    assert argv[host_at + 2] == "mkdir -p '/shared/wb jobs/run-1' && sbatch --parsable"
    assert len(argv) == host_at + 3


def test_remote_commands_are_quoted_for_the_remote_shell():
    argv = slurm.remote(["squeue", "-o", "%i|%T"], "login")
    assert argv[-1] == "squeue -o '%i|%T'"
    with pytest.raises(UsageError):
        slurm.remote(["squeue"], "-oProxyCommand=x")


def test_one_squeue_asks_for_every_job():
    argv = slurm.squeue_command([str(i) for i in range(1, 201)])
    assert argv[:5] == ["squeue", "-h", "-r", "-t", "all"]  # -r: an array's tasks one a line
    assert argv[argv.index("-j") + 1] == ",".join(str(i) for i in range(1, 201))


@pytest.mark.parametrize(
    ("indices", "parallel", "expected"),
    [
        (range(10), 2, "0-9%2"),
        (range(100), 8, "0-99%8"),
        ([7, 3], 2, "3,7"),  # no more tasks than the limit: no limit written
        ([3, 7, 8, 9, 12], 2, "3,7-9,12%2"),
        ([0], None, "0"),
    ],
)
def test_array_range_compresses_task_indices(indices, parallel, expected):
    assert slurm.array_range(list(indices), parallel) == expected


def test_array_range_refuses_no_indices_and_negative_ones():
    for bad in ([], [-1, 2]):
        with pytest.raises(ValueError):
            slurm.array_range(bad, 2)


@pytest.mark.parametrize(
    ("job_id", "index"), [("123_4", 4), ("123", None), (None, None), ("123_[4-9%2]", None)]
)
def test_array_task_reads_the_index_of_an_array_task_s_job_id(job_id, index):
    assert slurm.array_task(job_id) == index


def test_an_array_s_batch_script_asks_for_the_array():
    settings = SlurmConfig(time="5")
    script = slurm.batch_script(
        settings, {"array": {}}, name="wb", output="/w/%A_%a.out", python="py", array="0-9%2"
    )
    assert "#SBATCH --array=0-9%2\n" in script
    assert "#SBATCH --output=/w/%A_%a.out\n" in script


def test_an_array_task_picks_its_run_s_orders_by_its_index():
    from workbench.runs.executors.trial import task_spec

    spec = {
        "array": {"0": {"run_id": 5, "folder": "/w/a", "params": {"k": 1}},
                  "3": {"run_id": 9, "folder": "/w/b", "params": {}}},
        "sweep": {"study": "/w/s"},
        "trainer": "script",
    }  # fmt: skip
    run, index = task_spec(spec, "3")
    assert index == 3
    assert run == {"run_id": 9, "folder": "/w/b", "params": {}, "trainer": "script"}
    with pytest.raises(LookupError):
        task_spec(spec, "4")


def test_the_objective_is_the_last_finite_value_in_the_run_s_journal(tmp_path):
    from workbench.runs.executors.trial import last_value

    journal = tmp_path / "journal.jsonl"
    journal.write_text(
        '{"t":"res","ts":1}\n'
        '{"t":"m","k":"score","s":[0,1],"ts":[1,2],"v":[0.5,0.7]}\n'
        'not json "t":"m"\n'
        '{"t":"m","k":"loss","s":[0],"ts":[1],"v":[9]}\n'
        '{"t":"m","k":"score","s":[2],"ts":[3],"v":[null]}\n'
    )
    assert last_value(journal, "score") == 0.7
    assert last_value(journal, "missing") is None
    assert last_value(tmp_path / "nowhere", "score") is None


@pytest.mark.parametrize(
    ("out", "job_id"), [("1234\n", "1234"), ("99;cluster-a\n", "99"), ("note\n77\n", "77")]
)
def test_sbatch_parsable_output(out, job_id):
    assert slurm.parse_sbatch(out) == job_id


@pytest.mark.parametrize("out", ["", "Submitted batch job\n", "12a\n"])
def test_sbatch_output_without_a_job_id_is_an_error(out):
    with pytest.raises(WorkbenchError):
        slurm.parse_sbatch(out)


def test_squeue_and_sacct_lines_are_parsed():
    states = slurm.parse_squeue("5|PENDING|Resources|\n6|RUNNING|None|node07\nbroken\n")
    assert states["5"] == slurm.SlurmState("5", "PENDING", "Resources", None)
    assert states["6"].node == "node07"
    assert "broken" not in states
    done = slurm.parse_sacct("7|TIMEOUT|None|node01|0:15\n8|COMPLETED||node02|0:0\n")
    assert done["7"].state == "TIMEOUT" and done["7"].exit_code == 0
    assert done["8"].node == "node02"


@pytest.mark.parametrize(
    ("state", "reason", "status", "message"),
    [
        ("PENDING", "Resources", RunStatus.QUEUED, "Slurm: pending (Resources)"),
        ("PENDING", "Priority", RunStatus.QUEUED, "Slurm: pending (Priority)"),
        ("PENDING", "None", RunStatus.QUEUED, "Slurm: pending"),
        ("CONFIGURING", None, RunStatus.QUEUED, "Slurm: configuring"),
        ("RUNNING", "None", RunStatus.RUNNING, None),
        ("COMPLETING", None, RunStatus.RUNNING, None),
        ("COMPLETED", "None", RunStatus.SUCCEEDED, None),
        ("FAILED", "NonZeroExitCode", RunStatus.FAILED, "the job failed (NonZeroExitCode)"),
        ("TIMEOUT", "TimeLimit", RunStatus.FAILED, "the job reached its time limit (TimeLimit)"),
        ("OUT_OF_MEMORY", None, RunStatus.FAILED, "the job ran out of memory"),
        ("NODE_FAIL", None, RunStatus.LOST, "its node failed"),
        ("PREEMPTED", None, RunStatus.LOST, "the job was preempted"),
        ("CANCELLED", None, RunStatus.STOPPED, "the job was cancelled"),
        ("CANCELLED by 1000", None, RunStatus.STOPPED, "the job was cancelled by 1000"),
        ("CANCELLED+", None, RunStatus.STOPPED, "the job was cancelled"),
        ("SOMETHING_NEW", None, RunStatus.LOST, "Slurm state SOMETHING_NEW"),
    ],
)
def test_slurm_states_map_to_run_statuses(state, reason, status, message):
    assert slurm.map_state(state, reason) == (status, message)


def test_an_unknown_executor_is_refused_with_the_known_ones(tmp_path):
    with pytest.raises(UsageError) as err:
        executors.executor("kubernetes")
    assert "local" in err.value.message and "slurm" in err.value.message


# --- one batched poll, against a fake squeue ------------------------------------------


def fake_slurm(folder: Path, squeue_out: str) -> Path:
    """squeue and sacct that log their arguments and print canned lines."""
    folder.mkdir()
    log = folder / "calls.log"
    for name, out in (("squeue", squeue_out), ("sacct", "")):
        tool = folder / name
        tool.write_text(
            "#!/bin/sh\n"
            f'echo "{name} $*" >> {shlex.quote(str(log))}\n'
            f"cat <<'EOF'\n{out}EOF\n"
        )
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return log


def test_two_hundred_jobs_cost_one_squeue_call(tmp_path, monkeypatch):
    from workbench.projects import add_project

    store = open_store()
    row = add_project(store, project(tmp_path / "p"))
    states = {0: "PENDING|Resources|", 1: "RUNNING|None|node03", 2: "COMPLETED|None|node03",
              3: "TIMEOUT|TimeLimit|node04", 4: "CANCELLED|None|node05"}  # fmt: skip
    lines = []
    ids = []
    for i in range(200):
        rid = run_store.insert_queued(store, row["id"], "script", {}, project_name="clustered")
        job_store.mark_submitted(store, rid, executor="slurm", job_id=str(1000 + i))
        ids.append(rid)
        lines.append(f"{1000 + i}|{states[i % 5]}\n")
    # Job 1199 is unknown to squeue: sacct is asked for it alone, and knows nothing.
    lines.pop()
    log = fake_slurm(tmp_path / "bin", "".join(lines))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")

    executors.poll(store, force=True)

    calls = log.read_text().splitlines()
    squeues = [c for c in calls if c.startswith("squeue")]
    assert len(squeues) == 1
    assert ",".join(str(1000 + i) for i in range(200)) in squeues[0]
    assert [c for c in calls if c.startswith("sacct")] == [
        c for c in calls if c.startswith("sacct") and c.split("-j ")[1].startswith("1199 ")
    ]
    got = {rid: run_store.get(store, rid) for rid in ids}
    assert got[ids[0]].status is RunStatus.QUEUED
    assert got[ids[0]].message == "Slurm: pending (Resources)"
    assert job_store.job_of(store, ids[0]).slurm_reason == "Resources"
    assert got[ids[1]].status is RunStatus.RUNNING
    assert job_store.job_of(store, ids[1]).node == "node03"
    assert got[ids[2]].status is RunStatus.SUCCEEDED
    assert got[ids[3]].status is RunStatus.FAILED
    assert got[ids[3]].message == "the job reached its time limit (TimeLimit)"
    assert got[ids[4]].status is RunStatus.STOPPED
    assert got[ids[199]].status is RunStatus.LOST
    assert "no longer knows job 1199" in got[ids[199]].message
    # A running Slurm job is never taken for a lost local run, nor started here.
    from workbench.runs.reconcile import reconcile

    reconcile(store)
    assert run_store.get(store, ids[1]).status is RunStatus.RUNNING
    assert run_store.get(store, ids[0]).status is RunStatus.QUEUED
    assert run_store.get(store, ids[0]).supervisor_pid is None
    # Rate-limited: a second poll right away asks Slurm nothing.
    executors.poll(store)
    assert len([c for c in log.read_text().splitlines() if c.startswith("squeue")]) == 1
    store.close()


def test_a_refused_submission_fails_the_run_with_sbatch_s_reason(tmp_path, monkeypatch):
    from workbench.projects import add_project
    from workbench.runs.launch import start_run

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\ncat >/dev/null\necho 'sbatch: error: invalid partition' >&2\nexit 1\n")
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    store = open_store()
    add_project(store, project(tmp_path / "p", '[runs]\nexecutor = "slurm"\n'))
    with pytest.raises(WorkbenchError) as err:
        start_run(store, "clustered", {})
    assert "invalid partition" in err.value.message
    run = run_store.listing(store)[0]
    assert run.status is RunStatus.FAILED and "invalid partition" in (run.message or "")
    store.close()


def test_a_stopped_array_sweep_cancels_its_queued_tasks_in_one_array(tmp_path, monkeypatch):
    """Against fake Slurm commands: ONE sbatch with `--array=0-2%2`, each run's
    job id its task ("77_0"...), and a stop scancels the tasks still queued."""
    from workbench.projects import add_project
    from workbench.sweeps.engine import start_sweep

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = bin_dir / "calls.log"
    for name, body in (
        ("sbatch", f"cat > {bin_dir / 'script.sh'}\necho 77"),
        ("squeue", "printf '77_0|PENDING|JobArrayTaskLimit|\\n77_1|PENDING|Priority|\\n'"
                   "\nprintf '77_2|PENDING|JobArrayTaskLimit|\\n'"),
        ("scancel", "true"),
        ("sacct", "true"),
    ):  # fmt: skip
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n{body}\n')
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    store = open_store()
    add_project(
        store,
        project(
            tmp_path / "p",
            '[runs]\nexecutor = "slurm"\n[sweep]\n'
            'space = { x = { type = "float", low = 0.0, high = 1.0 } }\n',
        ),
    )
    toml = tmp_path / "p" / "workbench.toml"
    toml.write_text(toml.read_text().replace("[train]\n", '[train]\nmetric = "score"\n'))
    sweep = start_sweep(store, "clustered", trials=3, parallel=2)
    polls = []

    def stop_after_a_poll(running):
        polls.append(1)
        running.stop_requested = True  # as Ctrl-C or `run stop` on the sweep does

    sweep.run(on_progress=stop_after_a_poll)
    calls = log.read_text().splitlines()
    assert [c for c in calls if c.startswith("sbatch")] == ["sbatch --parsable"]
    script = (bin_dir / "script.sh").read_text()
    assert "#SBATCH --array=0-2%2\n" in script
    children = job_store.children(store, sweep.run_id)
    assert [c.job_id for c in children] == ["77_0", "77_1", "77_2"]
    assert all(c.slurm_state == "PENDING" for c in children)
    assert children[1].slurm_reason == "Priority"
    assert sorted(c for c in calls if c.startswith("scancel")) == [
        "scancel 77_0", "scancel 77_1", "scancel 77_2",
    ]  # fmt: skip
    row = run_store.get(store, sweep.run_id)
    assert row.status is RunStatus.STOPPED
    assert "3 queued tasks cancelled" in row.message
    assert f"workbench sweep resume clustered {sweep.run_id}" in row.message
    # The study lives beside the tasks' folders, where the nodes ask it.
    from workbench.sweeps.journal import study_file

    assert study_file(sweep.run_id).parent == Path(children[0].journal_path).parent.parent / (
        study_file(sweep.run_id).parent.name
    )
    assert study_file(sweep.run_id).exists()
    # Every task's orders in the one script; each task asks that study for its trial.
    line = next(ln for ln in script.splitlines() if ln.startswith(f"export {SPEC_ENV}="))
    spec = json.loads(shlex.split(line.split("=", 1)[1])[0])
    assert {i: o["run_id"] for i, o in spec["array"].items()} == {
        str(n): c.run_id for n, c in enumerate(children)
    }
    assert spec["sweep"]["study"] == str(study_file(sweep.run_id))
    assert spec["sweep"]["objective"] == "score" and "x" in spec["sweep"]["distributions"]
    store.close()


def test_the_run_screen_shows_the_job_its_node_and_slurm_s_state(tmp_path):
    from workbench.projects import add_project
    from workbench.tui import reads
    from workbench.tui.screens.run import _side_panel

    store = open_store()
    row = add_project(store, project(tmp_path / "p"))
    rid = run_store.insert_queued(store, row["id"], "script", {}, project_name="clustered")
    job_store.mark_submitted(
        store, rid, executor="slurm", job_id="1234", node="gpu[01-02][b]",
        slurm_state="PENDING", slurm_reason="Resources",
    )  # fmt: skip
    local = run_store.insert_queued(store, row["id"], "script", {}, project_name="clustered")
    store.close()
    panel = _side_panel(reads.run_detail(rid, []))
    assert "slurm job 1234" in panel
    # Slurm's text shows as written, never read as markup.
    from rich.text import Text

    assert "node gpu[01-02][b]" in Text.from_markup(panel).plain
    assert "state PENDING (Resources)" in panel
    assert reads.run_detail(local, []).job is None
    assert "[b]Job[/b]" not in _side_panel(reads.run_detail(local, []))
