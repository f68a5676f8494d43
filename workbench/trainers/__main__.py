"""Entry point of a built-in trainer process, started by the run's supervisor as
`python -m workbench.trainers` (or forked by the warm runner, which calls `train`).

This is a program, not a library module: it binds the trainer code
(`workbench.trainers.process`) to the tracking API, the same one a user's
training script uses. The API sits in a layer above the trainers, so it is
imported by its dotted name, as the plugin manager loads the built-in plugin.
"""

from __future__ import annotations

import importlib
import sys

from workbench.core.errors import WorkbenchError
from workbench.trainers import process

TRACKING_API = "workbench.tracking"


def train() -> None:
    """Train the project's built-in trainer in the run named by the environment."""
    process.train(importlib.import_module(TRACKING_API))  # type: ignore[arg-type]


if __name__ == "__main__":
    try:
        train()
    except WorkbenchError as exc:
        print(f"workbench: {exc.message}", file=sys.stderr)
        sys.exit(2)
