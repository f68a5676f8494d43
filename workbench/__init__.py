"""Workbench: an offline-first terminal MLOps workbench.

Importing the package gives the tracking API for training code:

    import workbench as wb
    wb.log_params({"lr": 0.1})
    wb.log_metric("loss", 0.31, step=7)

The API is loaded on first use, so `import workbench` costs next to nothing.
Plugins write `from workbench import hookimpl` (the marker of
`workbench.hookspecs`, loaded alone).

This module is for code outside the package. No module of the package imports
it: it would be a chain to `workbench.tracking`, the layer above the trainers,
models and store (see ARCHITECTURE.md); they import `workbench.core.version`
or `workbench.hookspecs` directly.
"""

from typing import Any

from workbench.core.version import __version__

__all__ = [
    "active_run",
    "flush",
    "holdout_split",
    "hookimpl",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_params",
    "params",
    "project_config",
    "project_dir",
    "start_run",
    "train_file",
]


def __getattr__(name: str) -> Any:
    if name == "hookimpl":  # for plugins: `from workbench import hookimpl`
        from workbench.hookspecs import hookimpl

        return hookimpl
    if name in __all__:
        from workbench import tracking

        value = globals()[name] = getattr(tracking, name)  # later reads skip this hook
        return value
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
