"""Sliding-window counting on Redis, shared by every process and host, with a per-process
memory fallback while Redis is unreachable and a background probe that switches back.

`limits` provides the storages, the sliding window counter and its Lua scripts; it has no
fallback between storages (Flask-Limiter's ``in_memory_fallback`` lives in the Flask
extension, not in `limits`), so the switch and the probe are written here. On Redis, the
penalty lookup and every quota's acquire-and-read are one script made of `limits`' own
scripts (``DECIDE_LUA``), where its one-call-per-operation API takes three commands per quota
(docs/decisions/0012-one-rate-limit-script-per-decision.md); and the decisions asked for while
one call is at Redis go together as the next call of that script (batching.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from chainconsult.infra.batching import RoundTripBatcher
from chainconsult.infra.ratelimit.decide_script import (
    DECIDE_LUA,
    ScriptRequest,
    execute_packed,
    script_text,
    state_from_window,
)
from chainconsult.infra.ratelimit.policies import Quota, QuotaState, whole_seconds
from chainconsult.infra.redis_client import connection_options
from chainconsult.infra.tracing import client_span

log = structlog.get_logger(__name__)

# Limited requests are remembered this long to decide whether a caller is a repeat offender.
STRIKE_MEMORY_SECONDS = 3600
# Doublings of the penalty stop here; the setting caps the length anyway.
_MAX_DOUBLINGS = 16
_REDIS_FAILURES = (StorageError, RedisError, OSError, asyncio.TimeoutError)
_KNOWN_KEYS = 65_536
MAX_DECISIONS_PER_CALL = 256
"""A larger batch (thousands of connections at once) goes as several script calls, so that no
one call holds Redis for long (a decision runs in about 7 µs there)."""


@dataclass(frozen=True, slots=True)
class Check:
    """Take ``cost`` units of ``quota`` from the bucket named ``key``."""

    quota: Quota
    key: str
    cost: int


@dataclass(slots=True)
class Decision:
    allowed: bool
    states: list[QuotaState] = field(default_factory=list)
    limited_by: Quota | None = None
    retry_after: int = 0
    penalized: bool = False
    """Refused because the caller is serving a penalty, not by a quota."""


def _used_up(states: list[QuotaState], seconds: int, index: int | None) -> list[QuotaState]:
    """``states`` with the quota at ``index`` (every quota when None) at nothing left for
    ``seconds``: what the RateLimit header says of a refusal, in agreement with Retry-After."""
    return [
        QuotaState(state.quota, 0, seconds) if index is None or position == index else state
        for position, state in enumerate(states)
    ]


def _serving_penalty(states: list[QuotaState], seconds: int) -> Decision:
    """Refused because the caller is serving a penalty for ``seconds`` more. Nothing passes
    until it ends, so every quota reads as used up until then, whatever its window has
    refilled meanwhile."""
    return Decision(
        allowed=False,
        states=_used_up(states, seconds, None),
        limited_by=states[-1].quota,
        retry_after=seconds,
        penalized=True,
    )


def _refused(states: list[QuotaState], index: int, penalty: int) -> Decision:
    """Refused by the quota at ``index``: used up until its window moves on. When this
    refusal started a ``penalty``, nothing passes until both have ended: every quota reads as
    used up until then, as during the rest of the penalty."""
    natural = max(1, states[index].reset_seconds)
    retry_after = max(natural, penalty)
    return Decision(
        allowed=False,
        states=_used_up(states, retry_after, None if penalty > 0 else index),
        limited_by=states[index].quota,
        retry_after=retry_after,
    )


def _limits_uri(redis_url: str) -> str:
    scheme, sep, rest = redis_url.partition("://")
    if scheme == "unix":
        return f"async+redis+unix://{rest}"
    return f"async+{scheme}{sep}{rest}"


class SharedRateLimiter:
    """Decides requests against quotas. Redis while it answers; on the first failure every
    process falls back to its own memory (a limit then holds per process, never zero and
    never unlimited) and probes Redis every ``probe_interval`` seconds until it is back."""

    def __init__(
        self,
        *,
        redis_url: str | None,
        key_prefix: str,
        socket_timeout: float = 0.25,
        probe_interval: float = 2.0,
        penalty_max_seconds: int = 900,
        connection_pool: ConnectionPool | None = None,
    ) -> None:
        """``connection_pool``: the process's shared pool (its timeouts and retry are the
        pool's, and closing it is its owner's); without it, a client of its own."""
        self._memory = MemoryStorage()
        self._memory_strategy = SlidingWindowCounterRateLimiter(self._memory)
        self._redis: RedisStorage | None = None
        self._batcher: RoundTripBatcher[ScriptRequest, list[Any]] | None = None
        if redis_url is not None:
            # The shared pool carries the process's connection options; a client of its
            # own gets the same ones (infra/redis_client.py).
            options: dict[str, Any] = (
                {"connection_pool": connection_pool}
                if connection_pool is not None
                else connection_options(socket_timeout)
            )
            self._redis = RedisStorage(
                _limits_uri(redis_url),
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=f"{key_prefix}:ratelimit",
                **options,
            )
            self._batcher = RoundTripBatcher(self._send_decisions)
        self._redis_up = self._redis is not None
        self._probe_interval = probe_interval
        self._penalty_max = penalty_max_seconds
        self._probe: asyncio.Task[None] | None = None
        self._script: Any = None
        self._keys: dict[tuple[Quota, str], tuple[str, str]] = {}

    def _decide_script(self, bridge: Any) -> Any:
        """The decision script, registered on first use (the bridge's client exists by then)."""
        if self._script is None:
            self._script = bridge.get_connection().register_script(
                DECIDE_LUA.format(
                    acquire=script_text(bridge.lua_acquire_sliding_window),
                    window=script_text(bridge.lua_sliding_window),
                )
            )
        return self._script

    @property
    def backend(self) -> str:
        """``redis`` while limits are shared, ``memory`` while they are per process."""
        return "redis" if self._redis_up else "memory"

    async def decide(self, subject: str, checks: Sequence[Check]) -> Decision:
        """Take each check's cost from its quota; refused if any quota (the first one, in
        ``checks`` order, is named) is used up or ``subject`` (an account or an IP: whom a
        repeat offence is held against) is serving a penalty."""
        if self._redis_up and self._redis is not None:
            try:
                return await self._decide_on_redis(self._redis, subject, checks)
            except _REDIS_FAILURES as exc:
                self._fall_back(exc)
        return await self._decide_in_memory(subject, checks)

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        if self._batcher is not None:
            await self._batcher.aclose()
        if self._redis is not None:
            bridge: Any = self._redis.bridge
            with contextlib.suppress(Exception):
                await bridge.storage.aclose()
        await self._memory.reset()
        timer = self._memory.timer
        if timer is not None and not timer.done():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    def _fall_back(self, exc: BaseException) -> None:
        if not self._redis_up:
            return
        self._redis_up = False
        log.warning("ratelimit_redis_unavailable", error=repr(exc), fallback="memory")
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_until_back(), name="ratelimit-probe")

    async def _probe_until_back(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(self._probe_interval)
            try:
                # check() answers False on any Redis error; only a hang needs catching.
                healthy = await asyncio.wait_for(self._redis.check(), self._probe_interval)
            except TimeoutError:
                healthy = False
            if healthy:
                self._redis_up = True
                log.info("ratelimit_redis_restored", backend="redis")
                return

    async def _decide_in_memory(self, subject: str, checks: Sequence[Check]) -> Decision:
        """Through `limits`' public API, one quota at a time, stopping at the first refusal
        (memory answers without suspending, so there is nothing to batch)."""
        storage, strategy = self._memory, self._memory_strategy
        penalty_key = f"penalty/{subject}"
        penalty_until = await storage.get_expiry(penalty_key)
        windows = [await strategy.get_window_stats(check.quota.item, check.key) for check in checks]
        now = time.time()
        states = [
            QuotaState(
                check.quota,
                remaining=int(stats.remaining),
                # An empty window starts with this request and ends a full window later.
                reset_seconds=whole_seconds(stats.reset_time - now)
                if stats.reset_time > now
                else check.quota.window,
            )
            for check, stats in zip(checks, windows, strict=True)
        ]
        # An absent key's expiry reads as the moment it was asked, which is before ``now``.
        if penalty_until > now:
            return _serving_penalty(states, whole_seconds(penalty_until - now))
        for index, check in enumerate(checks):
            if not await strategy.hit(check.quota.item, check.key, cost=check.cost):
                penalty = await self._punish(storage, subject, penalty_key, check.quota)
                return _refused(states, index, penalty)
            state = states[index]
            states[index] = QuotaState(
                check.quota, state.remaining - check.cost, state.reset_seconds
            )
        return Decision(allowed=True, states=states)

    async def _decide_on_redis(
        self, storage: RedisStorage, subject: str, checks: Sequence[Check]
    ) -> Decision:
        """The same decision as ``_decide_in_memory`` in one script (see ``DECIDE_LUA``): the
        penalty's TTL, then for each quota `limits`' acquire followed by its window read, sent
        together with the decisions of the other requests waiting to go. The price of not
        waiting between them: a request refused by one quota (or a penalty) still takes from
        the others it passed, which only shortens an offender's quota."""
        bridge: Any = storage.bridge
        penalty_key = f"penalty/{subject}"
        keys = [bridge.prefixed_key(penalty_key)]
        arguments: list[Any] = []
        for check in checks:
            keys += self._window_keys(storage, check.quota, check.key)
            arguments += (check.quota.quota, check.quota.window, check.cost)
        assert self._batcher is not None
        result = await self._batcher.submit(ScriptRequest(keys, arguments))
        penalty_ttl = int(result[0])
        states: list[QuotaState] = []
        refused: int | None = None
        for index, check in enumerate(checks):
            acquired, *window = result[1 + 5 * index : 6 + 5 * index]
            states.append(state_from_window(check.quota, window))
            if not acquired and refused is None:
                refused = index
        if penalty_ttl > 0:
            return _serving_penalty(states, penalty_ttl)
        if refused is None:
            return Decision(allowed=True, states=states)
        penalty = await self._punish(storage, subject, penalty_key, checks[refused].quota)
        return _refused(states, refused, penalty)

    def _window_keys(self, storage: RedisStorage, quota: Quota, key: str) -> tuple[str, str]:
        """The Redis keys of ``quota``'s previous and current window for ``key``, exactly as
        `limits` names them; remembered, because they never change and building them was a
        tenth of a decision's work. Bounded: forgotten all at once when full (callers come
        back and are named again)."""
        known = self._keys.get((quota, key))
        if known is None:
            bridge: Any = storage.bridge
            item_key = quota.item.key_for(key)
            known = (
                bridge.prefixed_key(storage._previous_window_key(item_key)),
                bridge.prefixed_key(storage._current_window_key(item_key)),
            )
            if len(self._keys) >= _KNOWN_KEYS:
                self._keys.clear()
            self._keys[(quota, key)] = known
        return known

    async def _send_decisions(self, batch: list[ScriptRequest]) -> list[list[Any]]:
        """One call of the decision script for up to MAX_DECISIONS_PER_CALL decisions; their
        replies in order. A Redis that forgot the script (a restart, SCRIPT FLUSH: nothing
        ran) is given it again, once. Decisions queued behind a batch that found Redis gone
        are not sent after it: they fail at once and are decided in memory."""
        assert self._redis is not None
        if not self._redis_up:
            raise RedisConnectionError("Redis was found unavailable; deciding in memory")
        bridge: Any = self._redis.bridge
        client = bridge.get_connection()
        script = self._decide_script(bridge)
        replies: list[list[Any]] = []
        # Its own span: the packed call bypasses redis-py's (instrumented) execute_command.
        # The batch runs in the context of the request that opened it.
        with client_span("EVALSHA", {"db.system": "redis", "db.operation": "EVALSHA"}):
            await self._send_chunks(client, script, batch, replies)
        return replies

    async def _send_chunks(
        self, client: Any, script: Any, batch: list[ScriptRequest], replies: list[list[Any]]
    ) -> None:
        for start in range(0, len(batch), MAX_DECISIONS_PER_CALL):
            chunk = batch[start : start + MAX_DECISIONS_PER_CALL]
            keys: list[str] = []
            arguments: list[Any] = [len(chunk)]
            for request in chunk:
                keys += request.keys
                arguments += (len(request.arguments) // 3, *request.arguments)
            command = ("EVALSHA", script.sha, len(keys), *keys, *arguments)
            try:
                replies += await execute_packed(client, command)
            except NoScriptError:
                await client.script_load(script.script)
                replies += await execute_packed(client, command)

    async def _punish(
        self,
        storage: MemoryStorage | RedisStorage,
        subject: str,
        penalty_key: str,
        quota: Quota,
    ) -> int:
        """Count a strike; from the second within STRIKE_MEMORY_SECONDS on, refuse everything
        from this caller for a penalty that doubles with each strike."""
        if self._penalty_max <= 0:
            return 0
        strikes = await storage.incr(f"strikes/{subject}", STRIKE_MEMORY_SECONDS)
        if strikes < 2:
            return 0
        penalty = min(self._penalty_max, quota.window * 2 ** min(strikes - 2, _MAX_DOUBLINGS))
        # A served penalty may linger under its TTL's rounding; start the new one afresh.
        await storage.clear(penalty_key)
        await storage.incr(penalty_key, penalty)
        return int(penalty)


# One script per decision instead of a TTL and two scripts per quota: a third of the commands
# to pack, send, run and parse, on the hot path of every request
# (docs/decisions/0012-one-rate-limit-script-per-decision.md). The counting is still `limits`'
# own: its sliding-window acquire and window scripts are pasted in unchanged as local
# functions (a chunk's ``KEYS`` and ``ARGV`` become their parameters), so keys, expiries and
# arithmetic stay exactly what `limits` writes and reads everywhere else.
