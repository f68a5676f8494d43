"""The `[runs]` and `[slurm]` tables of workbench.toml: which executor runs a
project's runs, and how Slurm jobs are asked for.

```toml
[runs]
executor = "slurm"              # "local" (default) or "slurm" (or a plugin's)
[slurm]
partition = "gpu"
time = "02:00:00"
cpus = 8
mem = "32G"
gpus = 1                        # or gres = "gpu:a100:1"
account = "ml"
qos = "normal"
sbatch = ["--constraint=a100"]  # extra #SBATCH lines
setup = ["module load cuda"]    # shell lines before the job starts
workdir = "/shared/wb-jobs"     # on the shared filesystem: journals, logs
host = "login.cluster"          # submit through `ssh` (optional)
python = "/shared/venv/bin/python"
```
Each value is checked here; nothing here runs a command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config.spec import Key, Table
from workbench.core.errors import ConfigError

BUILTIN_EXECUTORS = ("local", "slurm")
# A time limit as sbatch takes it: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
_TIME = r"(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2}|UNLIMITED)"
# Names sbatch takes (partition, account, qos): no spaces, no shell metacharacters.
_NAME = r"[A-Za-z0-9_.,:+@/-]{1,128}"
_MEM = r"\d+[KMGT]?"
_HOST = r"[A-Za-z0-9_.@-][A-Za-z0-9_.@:-]{0,252}"
_OPTION = r"--?[A-Za-z][A-Za-z0-9-]*(=[^\n\r\x00]*)?"

RUNS = Table(
    "runs",
    (
        Key(
            "executor",
            str,
            'where runs execute: "local" (a supervised process here) or "slurm"',
            default="local",
            pattern=r"[A-Za-z][A-Za-z0-9_-]{0,63}",
            pattern_text='"local", "slurm" or a plugin executor\'s name',
        ),
    ),
    "Where this project's runs execute.",
    optional=True,
)

SLURM = Table(
    "slurm",
    (
        Key("partition", str, "the partition (sbatch --partition)", pattern=_NAME,
            pattern_text="a partition name"),
        Key("time", str, 'the time limit (sbatch --time), e.g. "02:00:00" or "1-00:00:00"',
            pattern=_TIME, pattern_text='a Slurm time such as "90", "02:00:00" or "1-12:00:00"'),
        Key("cpus", int, "CPUs per task (sbatch --cpus-per-task)", low=1, high=100_000,
            range_text="a whole number from 1"),
        Key("mem", str, 'memory (sbatch --mem), e.g. "16G"', pattern=_MEM,
            pattern_text='a size such as "16G" or "500M"'),
        Key("gpus", int, "GPUs (sbatch --gpus)", low=0, high=1024,
            range_text="a whole number from 0"),
        Key("gres", str, 'generic resources (sbatch --gres), e.g. "gpu:a100:1"', pattern=_NAME,
            pattern_text='a gres such as "gpu:1"'),
        Key("account", str, "the account to charge (sbatch --account)", pattern=_NAME,
            pattern_text="an account name"),
        Key("qos", str, "the quality of service (sbatch --qos)", pattern=_NAME,
            pattern_text="a QOS name"),
        Key("sbatch", list, "extra #SBATCH options, e.g. [\"--constraint=a100\"]", items=str,
            items_text="strings"),
        Key("setup", list, 'shell lines run before the job, e.g. ["module load cuda"]',
            items=str, items_text="strings"),
        Key("workdir", str, "a folder on the shared filesystem for job journals and logs"),
        Key("host", str, "submit through `ssh HOST` (a login node); default: this machine",
            pattern=_HOST, pattern_text="a host name, user@host or an ssh config alias"),
        Key("python", str, "the Python that runs the job (default: this one)"),
    ),
    "How Slurm jobs are asked for (`[runs] executor = \"slurm\"`).",
    optional=True,
)


@dataclass(frozen=True)
class SlurmConfig:
    """A checked `[slurm]` table (None: not given)."""

    partition: str | None = None
    time: str | None = None
    cpus: int | None = None
    mem: str | None = None
    gpus: int | None = None
    gres: str | None = None
    account: str | None = None
    qos: str | None = None
    sbatch: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    workdir: str | None = None
    host: str | None = None
    python: str | None = None


def check_runs(file: Path, raw: dict[str, Any]) -> str:
    """`[runs] executor` (already type-checked by the table): its value."""
    return str(raw.get("executor", RUNS.defaults()["executor"]))


def check_slurm(file: Path, raw: dict[str, Any]) -> SlurmConfig:
    """`[slurm]`, beyond what the table checks: options that are options, lines
    that are one line each."""
    for index, option in enumerate(raw.get("sbatch", [])):
        if not re.fullmatch(_OPTION, option):
            raise ConfigError(
                file, f"slurm.sbatch[{index}]", f'expected an sbatch option such as "--constraint=a100", got {option!r}'
            )
    for index, line in enumerate(raw.get("setup", [])):
        if "\n" in line or "\r" in line or "\x00" in line:
            raise ConfigError(file, f"slurm.setup[{index}]", "expected one line per entry")
    if "gpus" in raw and "gres" in raw:
        raise ConfigError(file, "slurm.gres", "give gpus or gres, not both")
    for key in ("workdir", "python"):
        value = raw.get(key)
        if value is not None and (not value.strip() or "\n" in value or "\x00" in value):
            raise ConfigError(file, f"slurm.{key}", "expected a path")
    return SlurmConfig(
        partition=raw.get("partition"),
        time=raw.get("time"),
        cpus=raw.get("cpus"),
        mem=raw.get("mem"),
        gpus=raw.get("gpus"),
        gres=raw.get("gres"),
        account=raw.get("account"),
        qos=raw.get("qos"),
        sbatch=tuple(raw.get("sbatch", ())),
        setup=tuple(raw.get("setup", ())),
        workdir=raw.get("workdir"),
        host=raw.get("host"),
        python=raw.get("python"),
    )
