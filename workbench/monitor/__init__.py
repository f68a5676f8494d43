"""Monitoring served models: the prediction log, labels that arrive later, and
the per-window report of traffic, latency, errors, input and prediction drift
and live performance (`workbench monitor`).

`log` writes and reads the per-day Parquet request log under the project
(`writer` is the process that writes it for `serve`, off the server's GIL),
`labels` keeps the labels joined to it by request id, `reference` summarises
what the model predicted on its hold-out, and `report` puts the windows
together. Drift reuses `workbench.data.drift` with the project's `[drift]`
settings, and live performance the noise band of
`workbench.models.degradation`.
"""
