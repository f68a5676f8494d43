"""What a sweep's trials are judged by: the project's primary metric (as
cross-validated when `[train] cv` is set), its direction, and the series
reported to the pruner."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.config.project import ProjectConfig
from workbench.core.metric_rules import lower_is_better


@dataclass
class Objective:
    """What the trials are judged by: a metric key of each trial run."""

    key: str  # e.g. "f1", or "cv_f1_mean" when the project cross-validates
    metric: str  # the primary metric the key is made from
    direction: str  # "maximize" or "minimize"

    @property
    def pruning_key(self) -> str | None:
        """The series reported to the pruner: the folds' scores when cross-validating,
        else (None) the trainer's first learning curve (`valid_*` or `val_*`)."""
        return f"cv_fold_{self.metric}" if self.key.startswith("cv_") else None


def objective_for(config: ProjectConfig) -> Objective:
    """The project's primary metric, as cross-validated when `[train] cv` is set."""
    task = config.task
    if task is None and config.metric is None and config.trainer != "script":
        from workbench.trainers.tabular import infer_task, read_table

        task = infer_task(read_table(config.train_file)[config.target].dropna())
    metric = config.primary_metric(task)
    key = f"cv_{metric}_mean" if config.cv else metric
    return Objective(key, metric, "minimize" if lower_is_better(metric) else "maximize")
