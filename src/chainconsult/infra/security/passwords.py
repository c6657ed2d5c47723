"""argon2id password hashing, run on a worker thread so a login never stalls the event loop,
at most one hash per core at a time in each process."""

from __future__ import annotations

import asyncio
import os
from functools import cache
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


@cache
def _dummy_hash() -> str:
    # Verified against when the account does not exist, so an unknown email costs the same
    # time as a wrong password and the answer does not reveal which one it was.
    return _hasher.hash("not a real password; timing equaliser")


class PasswordHashing:
    """Hash and verify off the event loop; ``verify`` also answers whether to re-hash."""

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(_hasher.hash, password, limiter=hashing_limiter())

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                matched = _hasher.verify(stored_hash or _dummy_hash(), password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
            return matched and stored_hash is not None

        return await anyio.to_thread.run_sync(check, limiter=hashing_limiter())

    def needs_rehash(self, stored_hash: str) -> bool:
        return _hasher.check_needs_rehash(stored_hash)


passwords = PasswordHashing()
