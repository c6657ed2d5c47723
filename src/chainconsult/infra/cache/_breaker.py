"""A circuit breaker in front of Redis.

Hand-written because the breaker libraries (pybreaker, circuitbreaker, aiobreaker) let a
request through as the half-open trial, and that request then waits out the socket timeout of
a Redis that is still down. Here no request ever probes: one failure opens the circuit, every
caller skips Redis at once, and a background task pings with exponential backoff and jitter
until Redis answers, then closes it."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
from collections.abc import Awaitable, Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger(__name__)

# What a dead, restarting or unreachable Redis raises; anything else is a bug or a refusal
# (e.g. out of memory) that fails one call without opening the circuit.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    TimeoutError,
)
PROBE_WAIT_INITIAL_S = 0.05
PROBE_WAIT_MAX_S = 2.0


async def backoff_until(
    attempt: Callable[[], Awaitable[None]],
    *,
    initial_s: float = PROBE_WAIT_INITIAL_S,
    max_s: float = PROBE_WAIT_MAX_S,
) -> None:
    """Run ``attempt`` until it stops raising an outage error: exponential backoff with full
    jitter, no limit. Our own loop rather than stamina's retry_context because this runs for
    as long as an outage lasts: stamina logs every retry (a line every two seconds per loop
    per process, for hours) and counts them in its own metrics; we log the outage once, when
    the circuit opens, and once when it closes."""
    wait = initial_s
    while True:
        try:
            await attempt()
            return
        except OUTAGE_ERRORS:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A shutdown's cancel that met the failure in the same instant was turned
                # into this error on the way up (asyncio.wait_for and others do): honour it.
                raise asyncio.CancelledError from None
            await asyncio.sleep(random.uniform(wait / 2, wait))  # noqa: S311 - jitter, not crypto
            wait = min(wait * 2, max_s)


class CircuitState(enum.StrEnum):
    closed = "closed"
    """Redis answers; calls go to it."""
    open = "open"
    """Redis failed; calls skip it while a background probe waits for it to come back."""


StateListener = Callable[[CircuitState], Awaitable[None]]


class RedisBreaker:
    def __init__(self, client: Redis, *, probe_timeout_s: float) -> None:
        self._client = client
        self._probe_timeout_s = probe_timeout_s
        self._state = CircuitState.closed
        self._probe: asyncio.Task[None] | None = None
        self._listeners: list[StateListener] = []
        self.opened_count = 0

    @property
    def state(self) -> CircuitState:
        return self._state

    @property
    def allows(self) -> bool:
        return self._state is CircuitState.closed

    def on_change(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    async def record_failure(self, exc: BaseException) -> None:
        if self._state is CircuitState.open:
            return
        self._state = CircuitState.open
        self.opened_count += 1
        log.warning("redis_circuit_open", error=type(exc).__name__, detail=str(exc)[:200])
        # Pooled connections to a Redis that died would each fail once more after it comes
        # back, reopening the circuit every time: drop them all now.
        with contextlib.suppress(Exception):
            await self._client.connection_pool.disconnect()
        self._probe = asyncio.create_task(self._probe_until_back(), name="redis-breaker-probe")
        await self._notify()

    async def _probe_until_back(self) -> None:
        async def ping() -> None:
            async with asyncio.timeout(self._probe_timeout_s):
                await self._client.ping()

        await backoff_until(ping)
        self._state = CircuitState.closed
        log.warning("redis_circuit_closed")
        await self._notify()

    async def _notify(self) -> None:
        for listener in self._listeners:
            try:
                await listener(self._state)
            except Exception:
                log.exception("redis_circuit_listener_failed")

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
