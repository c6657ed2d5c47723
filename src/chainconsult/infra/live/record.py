"""Writing live events, and waking the event streams once they are committed."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.infra.db.session import after_commit
from chainconsult.infra.live.models import LiveEvent

if TYPE_CHECKING:
    from chainconsult.infra.live.bus import LiveBus

_BUS = "live_bus"


def attach_live_bus(sessionmaker: async_sessionmaker[AsyncSession], bus: LiveBus) -> None:
    """Every session this sessionmaker opens from now on wakes the streams through ``bus``."""
    info = dict(sessionmaker.kw.get("info") or {})
    info[_BUS] = bus
    sessionmaker.configure(info=info)


async def record_live(
    session: AsyncSession,
    account_ids: Iterable[uuid.UUID],
    kind: str,
    data: Mapping[str, Any],
) -> None:
    """One event of ``kind`` for each account, in the caller's transaction; the streams hear
    of it once that commits."""
    accounts = list(dict.fromkeys(account_ids))
    if not accounts:
        return
    await session.execute(
        insert(LiveEvent),
        [{"account_id": account, "kind": kind, "data": dict(data)} for account in accounts],
    )
    wake_after_commit(session, accounts)


def wake_after_commit(session: AsyncSession, account_ids: Iterable[uuid.UUID]) -> None:
    """Tell every server process, once this transaction commits, that these accounts have new
    live events. Sessions without a bus (a CLI command, a job) wake nobody: the streams' own
    periodic look at the table finds those events a little later."""
    _publish_after_commit(session, account_ids, ())


def logins_ended_after_commit(session: AsyncSession, account_ids: Iterable[uuid.UUID]) -> None:
    """Once this transaction commits, have every process look up the logins of these
    accounts' event streams at once, so a stream whose login it ended ends now rather than at
    its next heartbeat. Call it after the logins' cache invalidation is queued: the callbacks
    run in order, so the look-ups find the database's answer."""
    _publish_after_commit(session, (), account_ids)


def _publish_after_commit(
    session: AsyncSession, woken: Iterable[uuid.UUID], logins_ended: Iterable[uuid.UUID]
) -> None:
    bus = session.info.get(_BUS)
    if bus is None:
        return
    events, ended = sorted(set(woken)), sorted(set(logins_ended))

    async def publish() -> None:
        await bus.publish(events, ended)

    after_commit(session, publish)
