"""Objects as files below a root directory: what the uploads' file store and the backups'
file store share."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


class KeyOutsideRoot(ValueError):
    """A key that would resolve outside the store's directory (``../``, an absolute path)."""


def path_inside(root: Path, key: str) -> Path:
    """Where ``key`` lives below ``root``; KeyOutsideRoot when it would leave it."""
    path = (root / key).resolve()
    if not path.is_relative_to(root.resolve()):
        raise KeyOutsideRoot(f"{key!r} is outside the store")
    return path


@contextlib.contextmanager
def written_aside(target: Path) -> Iterator[Path]:
    """A path to write ``target``'s content to, renamed over ``target`` when the block ends
    and removed when it fails: a half-written file never carries the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
