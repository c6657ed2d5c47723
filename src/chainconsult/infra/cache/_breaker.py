"""A circuit breaker in front of Redis.

Hand-written because the breaker libraries (pybreaker, circuitbreaker, aiobreaker) let a
request through as the half-open trial, and that request then waits out the socket timeout of
a Redis that is still down. Here no request ever probes: one failure opens the circuit, every
caller skips Redis at once, and a background task pings with exponential backoff and jitter
(stamina) until Redis answers, then closes it."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable

import stamina
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
        self._probe = asyncio.create_task(self._probe_until_back(), name="redis-breaker-probe")
        await self._notify()

    async def _probe_until_back(self) -> None:
        async for attempt in stamina.retry_context(
            on=OUTAGE_ERRORS,
            attempts=None,
            timeout=None,
            wait_initial=PROBE_WAIT_INITIAL_S,
            wait_max=PROBE_WAIT_MAX_S,
        ):
            with attempt:
                await asyncio.wait_for(self._client.ping(), self._probe_timeout_s)
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
