"""The installed Workbench version, for manifests, plugin listings and `doctor`."""

__version__ = "0.1.0"
