"""nightshift: a local-first nightly ML pipeline for online shops."""

__version__ = "0.1.0"
