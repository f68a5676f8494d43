"""Hyperparameter sweeps: an Optuna study whose trials are child runs of a sweep run.

`space` (the `[sweep]` section of workbench.toml) is light and imported by
the config; `engine` (which imports Optuna) only when a sweep runs.
"""
