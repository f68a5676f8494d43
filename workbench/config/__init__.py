"""The files a user edits, each declared once and checked by one checker.

`spec` holds the declaration types (`Table`, `Key`) and the checker; `reading`
reads a TOML file as untrusted input. `project` declares a project's
`workbench.toml` (with `sweep` for its `[sweep]` table and `task` for the task
inferred from the target), `settings` declares `$WORKBENCH_HOME/config.toml`;
`workbench.data.schema` declares `schema.toml` with the same types. `names` is
how the names plugins add reach the checks without config importing plugins.

Config imports nothing from workbench but `workbench.core`.
"""
