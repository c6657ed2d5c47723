"""A pooled connection is checked before use without a round trip to the server.

When PostgreSQL ends a session (``pg_terminate_backend``, a restart, an idle-session timeout)
it sends the client a FATAL error and closes the socket; a pooled connection that the server
dropped therefore has something to read on its socket while it sits idle, where a live one
has nothing (libpq reads every answer up to ReadyForQuery, and the app's connections never
LISTEN). Polling the socket (no wait) tells the two apart: a dropped connection is replaced
at checkout, as SQLAlchemy's ``pool_pre_ping`` would, but a live one costs no ``SELECT 1``.

The ping was one of five round trips of a proposal and about 5 % of its CPU
(docs/decisions/0011-socket-check-at-pool-checkout.md); under load each round trip is also
a turn of the event loop the request waits for.

What neither this nor a ping can see in advance: a peer that vanished without closing the
connection (a host lost, a network cut) makes a ping hang as long as the query would, and a
session killed between the check and the query fails that query, which ``unit_of_work`` runs
again (a lost connection before the commit). A connection is checked only once it has served
a request: a fresh TLS connection may still have handshake records (session tickets) to read.
"""

from __future__ import annotations

import select
from typing import Any

from psycopg import pq
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

_USED = "chainconsult_used"
"""Set in a pool entry's ``info`` once its connection went back to the pool; SQLAlchemy
clears ``info`` when it replaces the connection."""


def dropped(driver_connection: Any) -> bool:
    """Whether the server has ended this idle psycopg connection (or is ending it)."""
    pgconn = driver_connection.pgconn
    if driver_connection.closed or pgconn.status != pq.ConnStatus.OK:
        return True
    if pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return True  # a pooled connection is idle; anything else is not fit for reuse
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN)
    # Readable: the FATAL message, the end of the stream, or an error (POLLERR, POLLHUP).
    return bool(poller.poll(0))


def install_liveness_check(engine: AsyncEngine) -> None:
    """Replace ``pool_pre_ping``: a pooled connection the server dropped is replaced at
    checkout, and every connection opened before it with it (``InvalidatePoolError``: a
    server restart or a mass termination ended them all), as a failed ping does."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _returned(dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None:
            entry.info[_USED] = True

    @event.listens_for(pool, "checkout")
    def _check(
        dbapi_connection: Any, entry: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        if entry.info.get(_USED) and dropped(dbapi_connection.driver_connection):
            raise sa_exc.InvalidatePoolError("the server closed this pooled connection")
