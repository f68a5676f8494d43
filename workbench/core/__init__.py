"""Leaf helpers every layer may use: errors, paths, environment names, metric rules,
formatting, GPU sampling, file helpers. Nothing here imports another workbench package."""
