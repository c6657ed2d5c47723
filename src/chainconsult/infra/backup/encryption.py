"""Backups encrypted to an age recipient (BACKUP_ENCRYPTION_RECIPIENT), through pyrage (the
Rust age implementation). Only the public key lives on the servers that make backups; the
identity (private key) is needed to restore and is handed to `restore` or `backup verify`
with ``--identity FILE``, an age identity file (``age-keygen`` output) or an SSH private key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainconsult.infra.backup.errors import BackupError


def parse_recipient(value: str) -> Any:
    """A pyrage recipient from an ``age1...`` or ``ssh-ed25519 ...``/``ssh-rsa ...`` key."""
    import pyrage

    text = value.strip()
    try:
        if text.startswith("ssh-"):
            return pyrage.ssh.Recipient.from_str(text)
        return pyrage.x25519.Recipient.from_str(text)
    except pyrage.RecipientError as exc:
        raise ValueError(f"not an age recipient (age1...) or SSH public key: {exc}") from None


def load_identities(path: Path) -> list[Any]:
    """The identities of an age identity file (one AGE-SECRET-KEY-1... per line, # comments),
    or of an unencrypted SSH private key."""
    import pyrage

    try:
        text = path.read_text()
    except OSError as exc:
        raise BackupError(f"cannot read the identity file {path}: {exc.strerror}") from None
    try:
        if "AGE-SECRET-KEY-" in text:
            lines = (line.strip() for line in text.splitlines())
            return [
                pyrage.x25519.Identity.from_str(line)
                for line in lines
                if line and not line.startswith("#")
            ]
        return [pyrage.ssh.Identity.from_buffer(text.encode())]
    except pyrage.IdentityError as exc:
        raise BackupError(f"{path} holds no usable age or SSH identity: {exc}") from None


def encrypt_file(source: Path, target: Path, recipient: str) -> None:
    import pyrage

    try:
        pyrage.encrypt_file(str(source), str(target), [parse_recipient(recipient)])
    except (ValueError, pyrage.EncryptError) as exc:
        raise BackupError(f"encryption failed: {exc}") from None


def decrypt_file(source: Path, target: Path, identity_file: Path | None) -> None:
    import pyrage

    if identity_file is None:
        raise BackupError(
            "the backup is encrypted: pass the age identity (private key) file with --identity"
        )
    try:
        pyrage.decrypt_file(str(source), str(target), load_identities(identity_file))
    except pyrage.DecryptError as exc:
        raise BackupError(
            f"cannot decrypt the backup with {identity_file} ({exc}): it is not the identity "
            "of the recipient the backup was encrypted to"
        ) from None
