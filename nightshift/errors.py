"""Errors a user can act on. Each message names the file, the row or column, and the rule."""


class NightshiftError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class ContractError(NightshiftError):
    """A landing file breaks the data contract as a whole (missing column, wrong type, empty)."""

    def __init__(self, source_file: str, rule: str, message: str) -> None:
        self.source_file = source_file
        self.rule = rule
        super().__init__(f"{source_file}: {message} (rule: {rule})")


class ConfigError(NightshiftError):
    """A setting or parameter that cannot work; raised before any data is touched."""
