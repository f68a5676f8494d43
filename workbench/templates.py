"""Project templates live in `workbench.projects.templates`; this module keeps
the old import path (`from workbench.templates import ...`) working."""

from workbench.projects.templates import (
    MIN_ROWS,
    TEMPLATES,
    Inferred,
    Plan,
    create,
    init_project,
    plan_project,
    undo,
)

__all__ = [
    "MIN_ROWS",
    "TEMPLATES",
    "Inferred",
    "Plan",
    "create",
    "init_project",
    "plan_project",
    "undo",
]
