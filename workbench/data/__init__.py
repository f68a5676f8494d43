"""Data: dataset versions and their lineage to runs."""
