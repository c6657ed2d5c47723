"""This process's open event streams, and what feeds them: one bus subscription, one query
per wake-up for every woken account with a stream here, and a periodic look at the table
that catches what no wake-up announced. An idle stream costs its request's task, a future and
a small watcher task (infra/live/stream.py); it holds no database connection. A stream lives
as long as its login: the same periodic pass, and a signal from whoever ends logins, look the
streams' tokens up again (docs/conversations.md)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chainconsult.infra.live.bus import LiveBus, build_live_bus
from chainconsult.infra.live.models import LiveEvent
from chainconsult.infra.live.record import attach_live_bus
from chainconsult.infra.live.slots import StreamSlots
from chainconsult.infra.live.stream import (
    MAX_PENDING,
    RECENT_SECONDS,
    EventStreamResponse,
    LiveStream,
)
from chainconsult.infra.settings.conversations import ConversationSettings
from chainconsult.infra.settings.platform import PlatformSettings

log = structlog.get_logger("chainconsult.live")

_UNSTARTED_SECONDS = 10.0
_MAX_EVENT_ID = 2**63 - 1
"""The largest id ``live_events.id`` (bigint) can hold; a Last-Event-ID above it is made up."""

LoginCheck = Callable[[str], Awaitable[float | None]]
"""When the login behind a token expires (``time.time()`` seconds), or None once it is
revoked, expired or its account is gone: the app hands in accounts/auth.py's lookup."""


def _ago(seconds: float) -> Any:
    # make_interval(years, months, weeks, days, hours, mins, secs)
    return func.now() - func.make_interval(0, 0, 0, 0, 0, 0, float(seconds))


class LiveHub:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: LiveBus,
        slots: StreamSlots,
        settings: ConversationSettings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.slots = slots
        self.settings = settings
        self.streams: dict[uuid.UUID, set[LiveStream]] = {}
        self._dirty: set[uuid.UUID] = set()
        self._logins_ended: set[uuid.UUID] = set()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._previous_handlers: dict[int, Any] = {}
        self.check_login: LoginCheck | None = None
        """Set by the app once it runs (app.py); until then only expiry ends a stream."""

    def start(self) -> None:
        self.bus.start(self._woken)
        self._tasks = [
            asyncio.create_task(self._deliveries(), name="live-deliveries"),
            asyncio.create_task(self._ticks(), name="live-ticks"),
        ]
        self._end_streams_on_shutdown()

    def _end_streams_on_shutdown(self) -> None:
        """The server lets in-flight requests finish before the lifespan's shutdown, and a
        stream never finishes by itself: on SIGTERM/SIGINT end them all at once (clients
        reconnect elsewhere with Last-Event-ID), then let the server's own handler run. The
        loop's handlers (granian's, uvicorn's) still fire: they are woken through the
        signal wake-up fd, whatever Python handler is set."""
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                # A handler outliving its app (apps stopped out of order in one process)
                # finds its loop closed: it only passes the signal on.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self.end_all)
                if callable(previous):
                    previous(signum, frame)

            try:
                signal.signal(number, handler)
            except ValueError:  # not the main thread (an embedded test server): no signals
                return
            self._previous_handlers[number] = previous

    def end_all(self) -> None:
        """End every open stream; new ones are still served (until the server stops)."""
        for streams in self.streams.values():
            for stream in streams:
                stream.close()

    async def stop(self) -> None:
        for number, previous in self._previous_handlers.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(number, previous)
        self._previous_handlers.clear()
        self.end_all()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.bus.stop()

    # --- streams ---------------------------------------------------------------------

    async def open(
        self,
        account_id: uuid.UUID,
        last_event_id: int | None,
        *,
        credential: str,
        expires_at: float,
    ) -> LiveStream | None:
        """A new stream for the account, with the events after ``last_event_id`` (from the
        last SSE_REPLAY_SECONDS) queued; None when the account holds its maximum already.
        It lives as long as the login behind ``credential``: at most until ``expires_at``
        (``time.time()`` seconds), and no longer than a heartbeat after its revocation."""
        stream_id = uuid.uuid4()
        if not await self.slots.acquire(
            account_id, stream_id, len(self.streams.get(account_id, ()))
        ):
            return None
        try:
            floor, replay = await self._resume(account_id, last_event_id)
        except BaseException:
            await self.slots.release(account_id, stream_id)
            raise
        stream = LiveStream(
            account_id=account_id,
            floor=int(floor),
            id=stream_id,
            credential=credential,
            expires_at=expires_at,
        )
        for row in replay:
            stream.offer(row[0], row[1], row[2])
        self.streams.setdefault(account_id, set()).add(stream)
        return stream

    async def _resume(
        self, account_id: uuid.UUID, last_event_id: int | None
    ) -> tuple[int, Sequence[Any]]:
        """Where a new stream starts (it sends only later events) and what it replays."""
        async with self.sessionmaker() as session:
            latest = (
                await session.execute(
                    select(func.coalesce(func.max(LiveEvent.id), 0)).where(
                        LiveEvent.account_id == account_id
                    )
                )
            ).scalar_one()
            if last_event_id is None:
                return int(latest), ()
            # Beyond bigint the query would fail; no event has such an id (made up, below).
            last_event_id = min(last_event_id, _MAX_EVENT_ID)
            replay = (
                await session.execute(
                    select(LiveEvent.id, LiveEvent.kind, LiveEvent.data)
                    .where(
                        LiveEvent.account_id == account_id,
                        LiveEvent.id > last_event_id,
                        LiveEvent.created_at > _ago(self.settings.sse_replay_seconds),
                    )
                    .order_by(LiveEvent.id)
                    .limit(MAX_PENDING - 1)
                )
            ).all()
        # An id beyond the newest event (made up, or from before a restore) would hide every
        # event to come: resume from the newest instead.
        return min(last_event_id, int(latest)), replay

    async def close(self, stream: LiveStream) -> None:
        streams = self.streams.get(stream.account_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self.streams[stream.account_id]
        await self.slots.release(stream.account_id, stream.id)

    def response(self, stream: LiveStream, headers: Mapping[str, str]) -> EventStreamResponse:
        """The stream's response; it frees the stream's slot when it ends. The hub's tick
        queues the heartbeats, so an idle stream waits on its own future alone (no timer)."""
        return EventStreamResponse(stream, self.close, headers)

    # --- feeding them ----------------------------------------------------------------

    def _woken(self, account_ids: list[uuid.UUID], logins_ended: list[uuid.UUID]) -> None:
        here = [account for account in account_ids if account in self.streams]
        ended = [account for account in logins_ended if account in self.streams]
        if here or ended:
            self._dirty.update(here)
            self._logins_ended.update(ended)
            self._wakeup.set()

    async def _deliveries(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            accounts, self._dirty = self._dirty, set()
            ended, self._logins_ended = self._logins_ended, set()
            try:
                if ended:
                    await self._end_lapsed_logins(ended)
                await self._deliver(accounts)
            except Exception as exc:  # the next wake-up or tick retries
                log.warning("live_delivery_failed", error=str(exc))

    async def _deliver(self, accounts: set[uuid.UUID]) -> None:
        if not accounts:
            return
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(LiveEvent.account_id, LiveEvent.id, LiveEvent.kind, LiveEvent.data)
                    .where(
                        LiveEvent.account_id.in_(list(accounts)),
                        LiveEvent.created_at > _ago(RECENT_SECONDS),
                    )
                    .order_by(LiveEvent.id)
                )
            ).all()
        for account_id, event_id, kind, data in rows:
            for stream in list(self.streams.get(account_id, ())):
                stream.offer(event_id, kind, data)

    async def _ticks(self) -> None:
        """Every heartbeat: a heartbeat to each idle stream, end those whose login lapsed,
        catch up on events nobody announced, keep this process's stream slots alive, drop
        streams whose response never started; now and then, prune the table."""
        last_prune = 0.0
        while True:
            await asyncio.sleep(self.settings.sse_heartbeat_seconds)
            now = time.monotonic()
            try:
                for streams in list(self.streams.values()):
                    for stream in list(streams):
                        stream.forget_old(now)
                        stream.beat()
                        if not stream.started and now - stream.opened > _UNSTARTED_SECONDS:
                            await self.close(stream)
                await self._end_lapsed_logins()
                await self._deliver(set(self.streams))
                await self.slots.refresh(
                    [(s.account_id, s.id) for streams in self.streams.values() for s in streams]
                )
                if now - last_prune > 60:
                    last_prune = now
                    await self._prune()
            except Exception as exc:  # the next tick tries again
                log.warning("live_tick_failed", error=str(exc))

    async def _end_lapsed_logins(self, accounts: Iterable[uuid.UUID] | None = None) -> None:
        """End each stream (of ``accounts``, else all) whose login has expired, or was
        revoked (logout, a password reset, ended sessions, erasure) in any process: every
        heartbeat, and when a process says it ended logins of an account, each token is
        looked up once, the way every request's is (its cache entry is dropped for every
        process before the revoking request answers: decision 0030)."""
        now = time.time()
        by_credential: dict[str, list[LiveStream]] = {}
        held = (
            self.streams.values()
            if accounts is None
            else [self.streams.get(account, set()) for account in accounts]
        )
        for streams in held:
            for stream in streams:
                if now >= stream.expires_at:
                    stream.close()
                else:
                    by_credential.setdefault(stream.credential, []).append(stream)
        if self.check_login is None:
            return
        for credential, holding in by_credential.items():
            try:
                expires_at = await self.check_login(credential)
            except Exception as exc:  # database and cache away: expiry still ends them
                log.warning("live_login_check_failed", error=str(exc))
                return
            for stream in holding:
                if expires_at is None:
                    stream.close()
                else:
                    stream.expires_at = expires_at

    async def _prune(self) -> None:
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                delete(LiveEvent).where(
                    LiveEvent.created_at < _ago(self.settings.sse_replay_seconds)
                )
            )


def build_live_hub(
    settings: PlatformSettings,
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    redis: Redis | None,
) -> LiveHub:
    """The process's hub, its bus, and the sessionmaker's sessions set to wake it; ``redis``
    is the process's shared client."""
    bus = build_live_bus(settings, engine, redis)
    attach_live_bus(sessionmaker, bus)
    live = settings.conversations
    slots = StreamSlots(
        live.sse_max_connections_per_user,
        redis=redis,
        key_prefix=settings.redis.key_prefix,
        ttl_seconds=3 * live.sse_heartbeat_seconds,
    )
    return LiveHub(sessionmaker, bus, slots, live)
