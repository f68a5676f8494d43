"""Every `WORKBENCH_*` environment variable the workbench reads or sets, by name.

One constant per variable, with what it means; code reads `os.environ[env.HOME]`
rather than spelling the name. (The bundle runtime, copied into exported bundles
and run without Workbench installed, keeps its own copies of the size-limit
names; `tests/test_env.py` checks they match.)
"""

from __future__ import annotations

# -- the user's ------------------------------------------------------------------
HOME = "WORKBENCH_HOME"  # the store's folder (default: the platform's user data dir)
CACHE = "WORKBENCH_CACHE"  # derived data kept between commands (default: $WORKBENCH_HOME/cache)
READ_ONLY = "WORKBENCH_READ_ONLY"  # set (non-empty): open the store read-only
WARM = "WORKBENCH_WARM"  # "0": start every trainer fresh, never from the warm runner
WARM_IDLE = "WORKBENCH_WARM_IDLE"  # seconds the idle warm runner waits before it exits
MAX_BUNDLE_MB = "WORKBENCH_MAX_BUNDLE_MB"  # largest bundle (all files) a load accepts, MB
MAX_FILE_MB = "WORKBENCH_MAX_FILE_MB"  # largest single file in a bundle a load accepts, MB
MAX_ZIP_RATIO = "WORKBENCH_MAX_ZIP_RATIO"  # highest compression ratio of a zipped member
MAX_REQUEST_MB = "WORKBENCH_MAX_REQUEST_MB"  # `serve`: largest request body, MB
MAX_IN_FLIGHT = "WORKBENCH_MAX_IN_FLIGHT"  # `serve`: requests predicted at once
SSH_CONFIG = "WORKBENCH_SSH_CONFIG"  # an ssh config file for `[slurm] host` (ssh -F)

# -- set by the supervisor for the training process it starts --------------------
RUN_ID = "WORKBENCH_RUN_ID"  # the run the process writes to
PROJECT_DIR = "WORKBENCH_PROJECT_DIR"  # the run's project folder
PARAMS = "WORKBENCH_PARAMS"  # the run's params, a JSON object
SUPERVISOR_PID = "WORKBENCH_SUPERVISOR_PID"  # the supervisor's pid (the trainer dies with it)

# -- set for a Slurm job (runs.executors) ----------------------------------------
JOB_SPEC = "WORKBENCH_JOB_SPEC"  # the job's orders (JSON), written into its batch script
JOURNAL = "WORKBENCH_JOURNAL"  # set for a job's trainer: the journal it writes instead of the store

# -- set for a notifier's shell command (the notify-shell plugin) -----------------
EVENT_KIND = "WORKBENCH_EVENT_KIND"  # the event's kind, e.g. "model.promoted"
EVENT_PROJECT = "WORKBENCH_EVENT_PROJECT"  # the event's project name

ALL: dict[str, str] = {
    name: value
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, str) and value.startswith("WORKBENCH_")
}
"""Every variable: constant name -> variable name."""
