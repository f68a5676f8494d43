"""Supervised training runs: launching, sampling, stopping and reading them."""
