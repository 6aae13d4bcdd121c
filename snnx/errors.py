"""User-facing errors.

Anything a user can cause by bad input (a config value, a missing file, a
corrupt checkpoint) raises :class:`SnnxError`. The CLI prints its message as
one paragraph and exits with status 2, without a traceback.
"""

from __future__ import annotations


class SnnxError(Exception):
    """An error caused by the user's input, with a message that names the fix.

    ``key`` is the config key (``act.L``, ``dataset``…) or file at fault, if
    any; ``fix`` says what to do instead. The message reads
    ``<key>: <problem> <fix>``.
    """

    exit_code = 2

    def __init__(self, problem: str, *, key: str | None = None, fix: str | None = None):
        self.key = key
        self.problem = problem
        self.fix = fix
        parts = [f"{key}: " if key else "", problem]
        if fix:
            parts.append(" " + fix)
        super().__init__("".join(parts))


class ConfigError(SnnxError):
    """A config value that cannot work (wrong type, out of range, incompatible)."""


class DataError(SnnxError):
    """A dataset that is missing or unreadable."""


class DiskError(SnnxError):
    """A file that could not be written: a full disk, no permission, a read-only file system."""


class CheckpointError(SnnxError):
    """A checkpoint that is missing, truncated, or not a snnx checkpoint."""


class ChecksumError(CheckpointError):
    """A file whose bytes no longer match the checksum snnx recorded when it wrote it."""
