"""Hyperparameter sweeps: an Optuna study whose trials are child runs of a sweep run.

`space` turns the `[sweep]` table (declared in `workbench.config.sweep`) into
Optuna distributions; `engine` gathers the public names of the modules that
run a sweep. Optuna is imported only when a study is opened.
"""
