"""The package version, apart from everything else so that ``--version`` imports nothing heavy."""

__version__ = "0.1.0"
