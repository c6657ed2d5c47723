"""argon2id password hashing, run on a worker thread so a login never stalls the event loop,
at most one hash per core at a time in each process."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from functools import cache
from typing import TypeVar
from weakref import WeakKeyDictionary

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults follow RFC 9106's second recommended option (64 MiB, t=3, p=4).
_hasher = PasswordHasher()

HASH_CONCURRENCY = max(1, min(len(os.sched_getaffinity(0)), 8))
"""Hashes running at once per process: the CPUs this process may run on, at most 8 (a CPU quota
can be lower than the affinity; 8 x 64 MiB bounds the memory there). Each takes 64 MiB and
keeps a core busy, so more at once buys no throughput: without a cap a login burst ran up to 40
on the thread pool (a worker measured at 800 MB of RSS, and every login slower than its turn
in a queue would have been)."""
_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = WeakKeyDictionary()


def hashing_limiter() -> anyio.CapacityLimiter:
    """The cap of the running event loop (a limiter belongs to one loop)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(HASH_CONCURRENCY)
    return limiter


class HashingBusy(Exception):
    """No hashing slot came free within the caller's wait: the caller sheds its request."""


T = TypeVar("T")


async def _on_hashing_thread(work: Callable[[], T], wait_seconds: float | None) -> T:
    limiter = hashing_limiter()
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        with anyio.move_on_after(math.inf if wait_seconds is None else wait_seconds) as waiting:
            await limiter.acquire()
        if waiting.cancelled_caught:
            raise HashingBusy() from None
    try:
        # The slot is already held: the thread needs only anyio's default thread limiter.
        return await anyio.to_thread.run_sync(work)
    finally:
        limiter.release()


@cache
def _dummy_hash() -> str:
    # Verified against when the account does not exist, so an unknown email costs the same
    # time as a wrong password and the answer does not reveal which one it was.
    return _hasher.hash("not a real password; timing equaliser")


class PasswordHashing:
    """Hash and verify off the event loop; ``verify`` also answers whether to re-hash."""

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(_hasher.hash, password, limiter=hashing_limiter())

    async def verify(
        self, stored_hash: str | None, password: str, *, wait_seconds: float | None = None
    ) -> bool:
        """Whether ``password`` matches; with ``wait_seconds``, HashingBusy when no hashing
        slot comes free within that time (a burst's excess is shed, not queued)."""

        def check() -> bool:
            try:
                matched = _hasher.verify(stored_hash or _dummy_hash(), password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
            return matched and stored_hash is not None

        return await _on_hashing_thread(check, wait_seconds)

    def needs_rehash(self, stored_hash: str) -> bool:
        return _hasher.check_needs_rehash(stored_hash)


passwords = PasswordHashing()
