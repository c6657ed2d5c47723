"""L1: the in-process tier. A bounded LRU with a deadline per entry (cachetools' TLRUCache,
sized in bytes of encoded value), plus tag generations for invalidation.

Invalidating a tag bumps its generation; an entry remembers the generations of its tags from
before its value was loaded and is dead once any of them moved. That makes invalidation O(1)
per tag (no index of keys per tag to keep in step with LRU evictions) and also rejects a value
whose load raced an invalidation.

A hot entry is reloaded a little before its deadline by one caller, while the others are
still answered from it until the new value replaces it: otherwise every entry of a burst of
loads runs out at about the same moment, and each one's callers all wait for its reload
(docs/decisions/0046-relevance-search-p99.md). A reload that fails answers its caller from
the entry too, and the next caller tries again."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from cachetools import TLRUCache

from chainconsult.infra.cache._tags import ALL_TAG

REFRESH_AFTER = 0.8
"""Share of an entry's lifetime after which the next caller reloads it (a 1 s entry: the
last 0.2 s)."""
# Per-entry bookkeeping (the key, the tuples, the dict slot) on top of the payload bytes.
_ENTRY_OVERHEAD_BYTES = 256
# Generations are kept only for tags that were invalidated; past this many, start afresh
# (dropping every entry) rather than grow without bound.
_MAX_TRACKED_TAGS = 100_000


@dataclass(slots=True)
class MemoryEntry:
    payload: bytes
    expires: float
    """time.monotonic() deadline."""
    tags: tuple[str, ...]
    generations: tuple[int, ...]
    refresh_at: float
    """time.monotonic() after which the next caller that may load reloads it."""
    refreshing: bool = False
    """A caller is reloading it: the others are answered from it meanwhile."""
    etag: str | None = None
    """The payload's HTTP validator, worked out by the first cached read answered from this
    entry and kept for the following ones (it goes when the entry goes)."""


def _deadline(_key: str, entry: MemoryEntry, _now: float) -> float:
    return entry.expires


def _size(entry: MemoryEntry) -> float:
    return len(entry.payload) + _ENTRY_OVERHEAD_BYTES


class MemoryTier:
    def __init__(self, max_bytes: int) -> None:
        self._entries: TLRUCache[str, MemoryEntry, float] = TLRUCache(
            max_bytes, _deadline, time.monotonic, _size
        )
        self._generations: dict[str, int] = {}
        # Bumped by clear(): a snapshot taken before a clear never matches after it, even
        # though the per-tag counters restart from zero.
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        return int(self._entries.currsize)

    def generations(self, tags: Sequence[str]) -> tuple[int, ...]:
        """A snapshot to pass to put() after loading: (epoch, generation of each tag)."""
        known = self._generations
        return (self._epoch, *(known.get(tag, 0) for tag in tags))

    def get(self, key: str, *, may_refresh: bool = True) -> MemoryEntry | None:
        """The live entry of ``key``; None when there is none, and, once it is due for a
        reload that nobody has started, None for one caller that ``may_refresh`` (it loads
        and puts the new value), which the others are answered from meanwhile. A caller that
        may not (the cached-read shortcut) gets None too, and leaves the reload to the route."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.generations(entry.tags) != entry.generations:
            self._entries.pop(key, None)
            return None
        if not entry.refreshing and time.monotonic() >= entry.refresh_at:
            entry.refreshing = may_refresh
            return None
        return entry

    def reload_failed(self, key: str) -> MemoryEntry | None:
        """After a failed load of ``key``: its entry while still live (before its deadline,
        no tag invalidated), which the caller is answered from as every other caller was
        meanwhile, with its reload due again for the next caller; None when there is none."""
        entry = self._entries.get(key)
        if entry is None or self.generations(entry.tags) != entry.generations:
            return None
        entry.refreshing = False
        return entry

    def put(
        self,
        key: str,
        payload: bytes,
        *,
        ttl: float,
        tags: tuple[str, ...],
        generations: tuple[int, ...],
    ) -> bool:
        """Store unless a tag was invalidated since ``generations`` was read."""
        if ttl <= 0 or self.generations(tags) != generations:
            return False
        now = time.monotonic()
        entry = MemoryEntry(payload, now + ttl, tags, generations, now + ttl * REFRESH_AFTER)
        try:
            self._entries[key] = entry
        except ValueError:
            # Larger than the whole tier: not worth evicting everything else for.
            return False
        return True

    def invalidate(self, tags: Sequence[str]) -> None:
        """Kill every entry carrying one of ``tags``; ``ALL_TAG`` among them: every entry."""
        if ALL_TAG in tags or len(self._generations) + len(tags) > _MAX_TRACKED_TAGS:
            self.clear()
        for tag in tags:
            self._generations[tag] = self._generations.get(tag, 0) + 1

    def clear(self) -> None:
        """Drop every entry. Generations restart too: no surviving entry refers to them."""
        self._entries.clear()
        self._generations.clear()
        self._epoch += 1
