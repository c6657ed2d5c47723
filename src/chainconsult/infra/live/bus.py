"""The wake-up signal between server processes: "these accounts have new live events", or
"logins of these accounts ended" (their streams look their logins up at once). It carries
account ids only; the events themselves are read from the table, so a lost signal delays an
event or a stream's end (until the streams' periodic look) but never loses it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import structlog
from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.db.notify import notify
from chainconsult.infra.settings.platform import PlatformSettings

log = structlog.get_logger("chainconsult.live")

Woken = Callable[[list[uuid.UUID], list[uuid.UUID]], None]
"""Called with the accounts that have new events and those whose logins ended."""
CHANNEL = "chainconsult_live"
_ENDED = "ended:"
"""Marks an account whose logins ended; a process that does not know it skips the id."""
_RECONNECT_SECONDS = 1.0


def _payload(account_ids: Sequence[uuid.UUID], logins_ended: Sequence[uuid.UUID]) -> str:
    return ",".join([*map(str, account_ids), *(f"{_ENDED}{id_}" for id_ in logins_ended)])


def _parse(payload: str | bytes) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    text = payload.decode() if isinstance(payload, bytes) else payload
    events: list[uuid.UUID] = []
    ended: list[uuid.UUID] = []
    for part in text.split(","):
        found, id_ = (
            (ended, part.removeprefix(_ENDED)) if part.startswith(_ENDED) else (events, part)
        )
        with contextlib.suppress(ValueError):
            found.append(uuid.UUID(id_))
    return events, ended


class LiveBus(ABC):
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the subscription is up (tests wait for it)."""

    @abstractmethod
    async def publish(
        self, account_ids: Sequence[uuid.UUID], logins_ended: Sequence[uuid.UUID] = ()
    ) -> None:
        """Wake every process; a failure is logged, never raised (the event is stored, and
        the streams look at their logins every heartbeat anyway)."""

    @abstractmethod
    async def _listen(self, woken: Woken) -> None:
        """Call ``woken`` for each signal until cancelled; return or raise when the
        subscription breaks."""

    def start(self, woken: Woken) -> None:
        self._task = asyncio.create_task(self._keep_listening(woken), name="live-bus")

    async def _keep_listening(self, woken: Woken) -> None:
        while True:
            try:
                await self._listen(woken)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect shortly
                log.warning("live_bus_disconnected", error=str(exc))
            self.listening.clear()
            await asyncio.sleep(_RECONNECT_SECONDS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class RedisLiveBus(LiveBus):
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        super().__init__()
        # The process's shared client (Resources), closed by its owner. The subscription takes
        # a connection of the pool for itself, and its reads wait get_message's timeout, not
        # the pool's short socket timeout.
        self.redis = redis
        self.channel = f"{key_prefix}:live"

    async def publish(
        self, account_ids: Sequence[uuid.UUID], logins_ended: Sequence[uuid.UUID] = ()
    ) -> None:
        try:
            await self.redis.publish(self.channel, _payload(account_ids, logins_ended))
        except Exception as exc:  # Redis away: the periodic look catches up
            log.warning("live_publish_failed", error=str(exc))

    async def _listen(self, woken: Woken) -> None:
        pubsub: Any = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self.listening.set()
            while True:
                message = await pubsub.get_message(timeout=30)
                if message is not None and message.get("type") == "message":
                    woken(*_parse(message["data"]))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()


class PostgresLiveBus(LiveBus):
    """LISTEN on one connection of its own per process; NOTIFY on a short-lived one."""

    def __init__(self, libpq_url: str, engine: AsyncEngine) -> None:
        super().__init__()
        self.url = libpq_url
        self.engine = engine

    async def publish(
        self, account_ids: Sequence[uuid.UUID], logins_ended: Sequence[uuid.UUID] = ()
    ) -> None:
        try:
            await notify(self.engine, CHANNEL, _payload(account_ids, logins_ended))
        except SQLAlchemyError as exc:
            log.warning("live_publish_failed", error=str(exc))

    async def _listen(self, woken: Woken) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=5
        ) as connection:
            await connection.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            async for notice in connection.notifies():
                woken(*_parse(notice.payload))


def build_live_bus(settings: PlatformSettings, engine: AsyncEngine, redis: Redis | None) -> LiveBus:
    if redis is not None:
        return RedisLiveBus(redis, settings.redis.key_prefix)
    return PostgresLiveBus(settings.database.libpq_url(), engine)
