"""The built-in trainers, exporters and drift tests, registered through the same
hooks as any plugin (see `workbench/hookspecs.py`).

The plugin manager registers this module by its dotted name
(`workbench.plugins.BUILTIN_MODULE`), never by importing it: it lives in the
`models` layer, beside what it registers (trainers and drift tests from the
layer below, exporters from `models`), so no lower layer reaches up to it.
Imports happen inside the hooks, so registering this module costs nothing."""

from __future__ import annotations

from typing import Any

from workbench.hookspecs import hookimpl


@hookimpl
def workbench_trainers() -> dict[str, type]:
    from workbench.trainers.lightgbm_trainer import LightGBMTrainer
    from workbench.trainers.sklearn_trainer import SklearnTrainer

    # `trainer = "sklearn:<estimator>"` builds SklearnTrainer with the estimator's path.
    return {"lightgbm": LightGBMTrainer, "sklearn": SklearnTrainer}


@hookimpl
def workbench_exporters() -> dict[str, Any]:
    from workbench.models import export

    # export.FORMATS is the one list of the built-in names; each has a `write_<name>`.
    return {name: getattr(export, f"write_{name}") for name in export.FORMATS}


@hookimpl
def workbench_drift_tests() -> dict[str, Any]:
    from workbench.data.drift import builtin_tests

    return builtin_tests()
