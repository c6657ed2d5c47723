"""L2: the shared tier in Redis, and the pub/sub channel that keeps every process's L1 honest.

Tags are *tokens*, not key sets. Each tag has a random token in Redis; an entry records the
tokens of its tags as read before its value was loaded, and is valid only while they are all
unchanged. Invalidating a tag writes a new token. This closes the race that key-set tagging
(cashews, most libraries) has: a reader that loaded rows from before a write and stores them
after the write's invalidation would leave a stale value behind; here it stores it under the
old token, and nobody accepts it. A missing token (never set, expired, evicted) is replaced by
a fresh one before use, so an eviction can never resurrect an old entry.

An entry is one Redis string: a compact JSON header (tag tokens, wall-clock expiry), a newline,
then the encoded value."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.lock import Lock
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError

from chainconsult.infra.batching import RoundTripBatcher
from chainconsult.infra.cache._breaker import OUTAGE_ERRORS, backoff_until

log = structlog.get_logger(__name__)

TAG_TTL_S = 86_400
"""Tokens outlive any entry TTL we use; one that expires anyway just costs a miss."""
LOCK_TTL_S = 5.0
"""A lock holder that dies frees its key after this long."""
LOCK_WAIT_S = 2.0
"""How long another process waits for the lock holder's value before loading itself."""
_LOCK_POLL_S = (0.005, 0.01, 0.02, 0.04, 0.05)
# The listener pings an idle connection this often and gives it up when nothing (not even the
# PONG) came back within LISTENER_SILENCE_S: a hung Redis sends no RST to notice.
LISTENER_PING_S = 0.5
LISTENER_SILENCE_S = 1.0
LISTENER_LATE_S = 0.1
"""A wait that overran by more than this was the event loop's lateness, not Redis' silence."""


def new_token() -> bytes:
    return secrets.token_hex(8).encode()


@dataclass(frozen=True, slots=True)
class StoredEntry:
    payload: bytes
    tokens: tuple[bytes, ...]
    expires_at: float
    """Unix time."""

    def encode(self) -> bytes:
        header = orjson.dumps(
            {"t": [token.decode() for token in self.tokens], "e": self.expires_at}
        )
        return header + b"\n" + self.payload

    @classmethod
    def decode(cls, raw: bytes) -> StoredEntry | None:
        header, sep, payload = raw.partition(b"\n")
        if not sep:
            return None
        try:
            meta = orjson.loads(header)
            tokens = tuple(str(token).encode() for token in meta["t"])
            expires_at = float(meta["e"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        return cls(payload, tokens, expires_at)


@dataclass(frozen=True, slots=True)
class Lookup:
    entry: StoredEntry | None
    """The stored entry when it is valid for the current tokens."""
    tokens: tuple[bytes, ...]
    """Current tokens of the tags: store a freshly loaded value under these."""


class RedisTier:
    def __init__(self, client: Redis, *, prefix: str, usable: Callable[[], bool]) -> None:
        """``usable``: whether Redis may be asked now (the circuit breaker's verdict)."""
        self.client = client
        self._prefix = prefix
        self._usable = usable
        self.channel = f"{prefix}:cache-invalidate"
        # The lookups of concurrent requests go as one MGET, one batch out at a time
        # (docs/decisions/0049-cache-lookups-in-batches.md).
        self._lookups: RoundTripBatcher[list[str], list[bytes | None]] = RoundTripBatcher(
            self._read_keys
        )

    def entry_key(self, key: str) -> str:
        return f"{self._prefix}:cache:{key}"

    def tag_key(self, tag: str) -> str:
        return f"{self._prefix}:cache-tag:{tag}"

    async def lookup(self, key: str, tags: Sequence[str]) -> Lookup:
        tag_keys = [self.tag_key(tag) for tag in tags]
        raw, *found = await self._lookups.submit([self.entry_key(key), *tag_keys])
        tokens: list[bytes | None] = found
        if any(token is None for token in tokens):
            tokens = await self._materialize(tag_keys, tokens)
        current = tuple(token for token in tokens if token is not None)
        entry = StoredEntry.decode(raw) if raw is not None else None
        if entry is not None and entry.tokens != current:
            entry = None
        return Lookup(entry, current)

    async def _read_keys(self, batch: list[list[str]]) -> list[list[bytes | None]]:
        """The values of each lookup's keys, all read by one MGET."""
        if not self._usable():
            # Queued behind a batch that found Redis gone: fail at once, not after a timeout
            # of its own (the cache then loads from the database).
            raise RedisConnectionError("Redis was found unavailable")
        # decode_responses is off for this client: every value comes back as bytes.
        values = typing.cast(
            list[bytes | None], await self.client.mget([key for keys in batch for key in keys])
        )
        answers: list[list[bytes | None]] = []
        start = 0
        for keys in batch:
            answers.append(values[start : start + len(keys)])
            start += len(keys)
        return answers

    async def close(self) -> None:
        """Let the lookups that are out finish (their requests are waiting for them)."""
        await self._lookups.aclose()

    async def _materialize(
        self, tag_keys: list[str], tokens: list[bytes | None]
    ) -> list[bytes | None]:
        # SET NX, then read back: concurrent readers all end up with the winner's token.
        pipe = self.client.pipeline(transaction=False)
        for tag_key, token in zip(tag_keys, tokens, strict=True):
            if token is None:
                pipe.set(tag_key, new_token(), nx=True, ex=TAG_TTL_S)
        pipe.mget(tag_keys)
        *_, current = await pipe.execute()
        result: list[bytes | None] = current
        return result

    async def store(self, key: str, payload: bytes, tokens: tuple[bytes, ...], ttl: float) -> None:
        entry = StoredEntry(payload, tokens, time.time() + ttl)
        await self.client.set(self.entry_key(key), entry.encode(), px=max(1, int(ttl * 1000)))

    async def invalidate(self, tags: Sequence[str], *, origin: str) -> None:
        """New tokens for ``tags``, then one message telling every process to drop its L1
        copies. The tokens alone already make L2 correct; the message is for L1."""
        pipe = self.client.pipeline(transaction=False)
        for tag in tags:
            pipe.set(self.tag_key(tag), new_token(), ex=TAG_TTL_S)
        pipe.publish(self.channel, orjson.dumps({"o": origin, "t": list(tags)}))
        await pipe.execute()

    def lock(self, key: str) -> Lock:
        return self.client.lock(
            f"{self._prefix}:cache-lock:{key}", timeout=LOCK_TTL_S, blocking=False
        )

    async def wait_for_holder(self, key: str, tags: Sequence[str], lock: Lock) -> Lookup | None:
        """Poll while another process loads ``key``; its valid entry, or None when the lock
        went away (or the wait ran out) without one."""
        deadline = time.monotonic() + LOCK_WAIT_S
        step = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(_LOCK_POLL_S[min(step, len(_LOCK_POLL_S) - 1)])
            step += 1
            found = await self.lookup(key, tags)
            if found.entry is not None:
                return found
            if not await lock.locked():
                return None
        return None

    @staticmethod
    async def release(lock: Lock) -> None:
        # Expired while we loaded: somebody else may hold it now; leave theirs be.
        with contextlib.suppress(LockError):
            await lock.release()


MessageHandler = Callable[[str, list[str]], None]
StatusHandler = Callable[[bool], Awaitable[None]]


def decode_message(data: object) -> tuple[str, list[str]] | None:
    """(origin, tags) of an invalidation message, of either channel; None when malformed."""
    try:
        body = orjson.loads(data) if isinstance(data, bytes | str) else {}
        return str(body["o"]), [str(tag) for tag in body["t"]]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        log.warning("cache_invalidation_message_malformed")
        return None


class InvalidationListener:
    """Subscribes to the invalidation channel and hands each message to ``on_message``;
    reconnects with backoff; reports (un)subscription through ``on_status`` so the cache can
    stop trusting L1 beyond a second while messages may be missed."""

    def __init__(
        self, tier: RedisTier, *, on_message: MessageHandler, on_status: StatusHandler
    ) -> None:
        self._tier = tier
        self._on_message = on_message
        self._on_status = on_status
        self._task: asyncio.Task[None] | None = None
        self.subscribed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="cache-invalidation-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run_forever(self) -> None:
        # A fresh backoff schedule after every connection that worked: the first reconnect
        # is immediate, and only repeated failures wait longer (up to 2 s).
        while True:
            await backoff_until(self._listen)

    async def _listen(self) -> None:
        """Returns when a subscription that worked is lost; raises when subscribing fails."""
        pubsub: PubSub = self._tier.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._tier.channel)
            await self._set_status(True)
            try:
                await self._pump(pubsub)
            except OUTAGE_ERRORS as exc:
                log.warning("cache_invalidation_channel_lost", error=type(exc).__name__)
        finally:
            await self._set_status(False)
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _pump(self, pubsub: PubSub) -> None:
        last_heard = time.monotonic()
        pinged = False
        wait = LISTENER_PING_S / 2
        while True:
            asked = time.monotonic()
            message = await pubsub.get_message(timeout=wait)
            now = time.monotonic()
            # Time this task spent waiting for the event loop (an overloaded process), beyond
            # the wait it asked for, says nothing about Redis: the PONG may sit unread in the
            # socket. Counting it as silence dropped a healthy channel and emptied L1 exactly
            # when the node was busiest.
            late = now - asked - wait
            if late > LISTENER_LATE_S:
                last_heard += late
            if message is not None:
                last_heard, pinged = now, False
                if message.get("type") == "message":
                    decoded = decode_message(message.get("data"))
                    if decoded is not None:
                        self._on_message(*decoded)
                continue
            if now - last_heard > LISTENER_SILENCE_S:
                raise TimeoutError("invalidation channel silent after a ping")
            if not pinged and now - last_heard > LISTENER_PING_S:
                await pubsub.ping()
                pinged = True

    async def _set_status(self, subscribed: bool) -> None:
        if subscribed != self.subscribed:
            self.subscribed = subscribed
            await self._on_status(subscribed)
