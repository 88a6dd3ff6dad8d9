"""Errors a user is meant to read.

Every error raised on purpose by genbench derives from :class:`GenbenchError`; the CLI prints
such an error as one paragraph and exits non-zero, without a traceback, because its message
already says what went wrong, where, and what to do about it.
"""


class GenbenchError(Exception):
    """An error whose message is complete advice for the user."""


class DatasetError(GenbenchError):
    """A dataset is missing, truncated, altered or unreadable."""


class ConfigError(GenbenchError, ValueError):
    """A configuration field holds a value that is not allowed; the message names the field."""
