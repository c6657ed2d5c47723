"""The errors of the backup package: each message tells the operator what failed and what
to do, and the command line prints it as is."""

from __future__ import annotations


class BackupError(RuntimeError):
    """A backup, verification or restore cannot go on; the message says why."""


class DamagedBackup(BackupError):
    """The stored dump is not what its manifest describes (its SHA-256 differs)."""
