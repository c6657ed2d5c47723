"""The tag every entry carries, and the invalidations kept while they cannot be sent."""

from __future__ import annotations

from collections.abc import Sequence

ALL_TAG = "*"
"""Carried by every entry: invalidating it drops the whole cache."""
MAX_PENDING_TAGS = 10_000
"""Invalidations kept while the channel is away; past this, everything is invalidated."""


class PendingTags:
    """Tags whose invalidation did not reach the other processes yet, to be sent again."""

    def __init__(self) -> None:
        self._tags: set[str] = set()

    def __len__(self) -> int:
        return len(self._tags)

    def add(self, tags: Sequence[str]) -> None:
        if len(self._tags) + len(tags) > MAX_PENDING_TAGS:
            self._tags = {ALL_TAG}
        elif ALL_TAG not in self._tags:
            self._tags.update(tags)

    def take(self) -> list[str]:
        tags, self._tags = sorted(self._tags), set()
        return tags
