"""The long-running processes' logging: configured once, on the `workbench`
loggers only, so a trainer forked from the warm server finds `logging` as a
fresh interpreter would."""

from __future__ import annotations

import subprocess
import sys


def test_setup_sends_workbench_loggers_to_the_stream_once_and_leaves_root_alone():
    script = """
import io, logging
from workbench.runs import process_log
stream = io.StringIO()
root_handlers = list(logging.getLogger().handlers)
process_log.setup(stream=stream)
process_log.setup(stream=io.StringIO())  # a second call changes nothing
logging.getLogger("workbench.runs.supervisor").warning("cannot register the model: %s", "x")
logging.getLogger("workbench.runs.supervisor").debug("not shown")
logging.getLogger("elsewhere").warning("a user's logger")
assert logging.getLogger().handlers == root_handlers
assert len(logging.getLogger("workbench").handlers) == 1
print(stream.getvalue(), end="")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert "WARNING workbench.runs.supervisor: cannot register the model: x" in lines[0]
    # The user's logger went to logging's last resort (stderr), untouched by ours.
    assert result.stderr.strip() == "a user's logger"


def test_the_supervisor_logs_under_its_own_name_even_as_main():
    from workbench.runs import supervisor, warm

    assert supervisor.logger.name == "workbench.runs.supervisor"
    assert warm.logger.name == "workbench.runs.warm"
