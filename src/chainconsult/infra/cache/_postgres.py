"""Cross-process L1 invalidation over PostgreSQL LISTEN/NOTIFY, the channel when Redis is not
configured (docs/decisions/0048-postgres-invalidation-channel.md). Same shape as the live bus
(infra/live/bus.py): LISTEN on one psycopg connection of its own per process, NOTIFY on a
short-lived engine connection.

The coherence rule. The cache trusts L1 for an entry's full TTL only while ``coherent``: the
listener is subscribed and this process's last NOTIFY got through. Otherwise entries live at
most a second (``INCOHERENT_L1_TTL_S``), so in every state another process's write reaches
this one within a second:
- Subscribed: every NOTIFY committed after our LISTEN is delivered to us, in order.
- Not subscribed (starting, connection lost, ping unanswered for ``LISTENER_SILENCE_S``): the
  cache clears L1 on the loss (a missed message leaves nothing behind) and holds new entries
  to a second until LISTEN is back.
- A failed NOTIFY (no pool connection, the database away from this process) is logged, never
  raised. Its tags are kept and sent again by the listener on its own connection at its next
  round (every ``LISTENER_PING_S``), so the others drop them within a second whenever this
  process can still reach the database at all; if nobody can, their listeners have dropped
  too and cleared L1. Until a NOTIFY gets through, this process holds its own L1 to a second
  as well: its channel is in doubt. The one gap left is a process cut off from the database
  between its commit and its NOTIFY; the others then drop the value when the retry gets
  through, at the latest at the entry's TTL (the decision record weighs the alternatives)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson
import psycopg
import structlog
from psycopg import sql
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.cache._breaker import backoff_until
from chainconsult.infra.cache._redis import (
    LISTENER_LATE_S,
    LISTENER_PING_S,
    LISTENER_SILENCE_S,
    MessageHandler,
    StatusHandler,
    decode_message,
)
from chainconsult.infra.cache._tags import ALL_TAG, PendingTags
from chainconsult.infra.db.notify import notify

log = structlog.get_logger(__name__)

NOTIFY_MAX_BYTES = 7999
"""PostgreSQL refuses a NOTIFY payload of 8000 bytes or more."""
_CHANNEL_MAX_BYTES = 63
"""Longer identifiers are truncated by LISTEN but refused by pg_notify()."""


def notify_payload(tags: Sequence[str], *, origin: str) -> str:
    """The message for ``tags``; for too many to fit, the one that drops everything."""
    payload = orjson.dumps({"o": origin, "t": list(tags)})
    if len(payload) > NOTIFY_MAX_BYTES:
        payload = orjson.dumps({"o": origin, "t": [ALL_TAG]})
    return payload.decode()


class PostgresInvalidation:
    """Listens on the channel and hands each message to ``on_message``; reconnects with
    backoff; reports (un)subscription through ``on_status``, as the Redis listener does."""

    def __init__(
        self,
        libpq_url: str,
        engine: AsyncEngine,
        *,
        key_prefix: str,
        origin: str,
        on_message: MessageHandler,
        on_status: StatusHandler,
    ) -> None:
        self._url = libpq_url
        self._engine = engine
        self.channel = f"{key_prefix}:cache-invalidate".encode()[:_CHANNEL_MAX_BYTES].decode(
            errors="ignore"
        )
        self._on_message = on_message
        self._on_status = on_status
        self._task: asyncio.Task[None] | None = None
        self._unsent = PendingTags()
        self._origin = origin
        self.subscribed = False
        self.backend_pid: int | None = None
        """The listening connection's server process (tests end it to cut the channel)."""

    @property
    def coherent(self) -> bool:
        return self.subscribed and not self._unsent

    @property
    def unsent(self) -> int:
        """Tags whose NOTIFY failed, waiting to be sent again."""
        return len(self._unsent)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="cache-invalidation-pg")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def publish(self, tags: Sequence[str]) -> None:
        """NOTIFY every listening process (our own listener skips our origin), with any tags
        an earlier NOTIFY failed to send. Never raises."""
        tags = [*self._unsent.take(), *tags]
        payload = notify_payload(tags, origin=self._origin)
        try:
            await notify(self._engine, self.channel, payload)
        except (SQLAlchemyError, OSError) as exc:
            self._unsent.add(tags)
            log.warning("cache_invalidate_failed", channel="postgres", error=type(exc).__name__)
        except BaseException:
            # Cancelled (the client went away) perhaps before it was sent: send it again.
            self._unsent.add(tags)
            raise

    async def _run_forever(self) -> None:
        while True:
            await backoff_until(self._listen)

    async def _listen(self) -> None:
        """Returns when a subscription that worked is lost; raises when subscribing fails."""
        try:
            connection = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=5
            )
        except psycopg.Error as exc:
            raise ConnectionError(str(exc)) from exc
        try:
            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self.backend_pid = connection.info.backend_pid
            await self._set_status(True)
            await self._send_unsent(connection)
            await self._pump(connection)
        except (psycopg.Error, OSError) as exc:
            if not self.subscribed:  # LISTEN itself failed: retry with backoff
                raise ConnectionError(str(exc)) from exc
            log.warning("cache_invalidation_channel_lost", error=type(exc).__name__)
        finally:
            await self._set_status(False)
            await connection.close()

    async def _pump(self, connection: psycopg.AsyncConnection) -> None:
        while True:
            async for notice in connection.notifies(timeout=LISTENER_PING_S):
                decoded = decode_message(notice.payload)
                if decoded is not None:
                    self._on_message(*decoded)
            # Notifications arriving meanwhile wait in psycopg's backlog for the next round.
            await self._ping(connection)
            await self._send_unsent(connection)

    async def _send_unsent(self, connection: psycopg.AsyncConnection) -> None:
        if not self._unsent:
            return
        tags = self._unsent.take()
        try:
            await connection.execute(
                "SELECT pg_notify(%s, %s)",
                (self.channel, notify_payload(tags, origin=self._origin)),
            )
        except BaseException:
            self._unsent.add(tags)
            raise

    async def _ping(self, connection: psycopg.AsyncConnection) -> None:
        """A hung server sends no RST: give the connection up when a query gets no answer
        within ``LISTENER_SILENCE_S``, unless the wait overran because the event loop was
        late (the answer may sit unread in the socket: see the Redis listener)."""
        ping = asyncio.ensure_future(connection.execute("SELECT 1"))
        try:
            asked = time.monotonic()
            done, _ = await asyncio.wait({ping}, timeout=LISTENER_SILENCE_S)
            if not done and time.monotonic() - asked - LISTENER_SILENCE_S > LISTENER_LATE_S:
                done, _ = await asyncio.wait({ping}, timeout=LISTENER_LATE_S)
            if not done:
                raise TimeoutError("invalidation channel silent after a ping")
            ping.result()
        finally:
            ping.cancel()  # a no-op once it is done

    async def _set_status(self, subscribed: bool) -> None:
        if subscribed != self.subscribed:
            self.subscribed = subscribed
            await self._on_status(subscribed)
