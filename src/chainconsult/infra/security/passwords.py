"""argon2id password hashing, run on low-priority worker threads so a login never stalls the
event loop, at most one hash per core at a time in each process."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from typing import TypeVar
from weakref import WeakKeyDictionary

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chainconsult.infra.settings.security import PasswordHashSettings

# argon2-cffi's defaults follow RFC 9106's second recommended option (64 MiB, t=3, p=4);
# use_parameters() replaces them with the configured ones when a process starts.
_hasher = PasswordHasher()


def use_parameters(settings: PasswordHashSettings) -> None:
    """Hash, and judge stored hashes for re-hashing, at the cost PASSWORD_HASH_* set."""
    global _hasher
    _hasher = PasswordHasher(
        time_cost=settings.time_cost,
        memory_cost=settings.memory_kib,
        parallelism=settings.parallelism,
    )
    _dummy_hash.cache_clear()


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


HASH_NICENESS = 10
"""Added to the niceness of the hashing threads (and of the threads argon2 starts for its
lanes), on Linux: a login burst then takes the CPU the event loop leaves over instead of a
share of it, so other requests keep their latency (an event loop's p99 lag beside two hashing
threads, measured on a busy 2-core machine: 92-96 ms at +0, 28-40 ms at +10)."""


def _lower_priority() -> None:
    # Linux keeps a nice value per thread, so nice() changes only the calling thread; elsewhere
    # it would slow the whole process.
    if sys.platform == "linux":
        os.nice(HASH_NICENESS)


@cache
def _hashing_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        HASH_CONCURRENCY, thread_name_prefix="argon2", initializer=_lower_priority
    )


# A forked server worker starts its own threads: the parent's do not exist in the child.
os.register_at_fork(after_in_child=_hashing_threads.cache_clear)

T = TypeVar("T")


async def _on_hashing_thread(work: Callable[[], T], wait_seconds: float | None) -> T:
    loop = asyncio.get_running_loop()
    limiter = hashing_limiter()
    slot = object()
    try:
        limiter.acquire_on_behalf_of_nowait(slot)
    except anyio.WouldBlock:
        with anyio.move_on_after(math.inf if wait_seconds is None else wait_seconds) as waiting:
            await limiter.acquire_on_behalf_of(slot)
        if waiting.cancelled_caught:
            raise HashingBusy() from None
    try:
        running = _hashing_threads().submit(work)
    except BaseException:
        limiter.release_on_behalf_of(slot)
        raise
    # The slot is freed when the hash ends, not when its caller stops waiting (a cancelled
    # request): never more hashes at once than slots.
    running.add_done_callback(lambda _: _free_slot(loop, limiter, slot))
    return await asyncio.wrap_future(running)


def _free_slot(
    loop: asyncio.AbstractEventLoop, limiter: anyio.CapacityLimiter, slot: object
) -> None:
    # Called on the hashing thread; a loop closed meanwhile took its limiter with it.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(limiter.release_on_behalf_of, slot)


@cache
def _dummy_hash() -> str:
    # Verified against when the account does not exist, so an unknown email costs the same
    # time as a wrong password and the answer does not reveal which one it was.
    return _hasher.hash("not a real password; timing equaliser")


class PasswordHashing:
    """Hash and verify off the event loop; ``verify`` also answers whether to re-hash."""

    async def hash(self, password: str) -> str:
        return await _on_hashing_thread(partial(_hasher.hash, password), None)

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
