"""The files a user edits, each read into a typed declaration: `project` for a
project's `workbench.toml`, `settings` for `$WORKBENCH_HOME/config.toml`."""
