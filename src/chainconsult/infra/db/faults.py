"""Which database errors are transient, which may be retried, and what a user sees for each.

A transient fault (lost connection, server restarting, pool exhausted, statement timeout,
serialization failure or deadlock that was not retried) reaches the user as a 503 problem
with ``Retry-After``, never as a 500: the request was fine, the database was not."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from sqlalchemy import exc as sa_exc

SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
QUERY_CANCELED = "57014"
LOCK_NOT_AVAILABLE = "55P03"
# Server going away or refusing sessions: admin_shutdown (pg_terminate_backend, fast
# shutdown), crash_shutdown, cannot_connect_now (starting up or shutting down).
_SERVER_GONE = frozenset({"57P01", "57P02", "57P03"})


@dataclass(frozen=True, slots=True)
class DatabaseFault:
    slug: str
    title: str
    detail: str
    retry_after_seconds: int
    retryable: bool
    """The unit of work may be run again from the start (before its commit)."""


CONFLICT = DatabaseFault(
    "database-conflict",
    "Concurrent update",
    "The request collided with a concurrent change; it changed nothing. Retry it.",
    1,
    retryable=True,
)
CONNECTION_LOST = DatabaseFault(
    "database-unavailable",
    "Database unavailable",
    "The connection to the database was lost; the request changed nothing. Retry shortly.",
    2,
    retryable=True,
)
UNAVAILABLE = DatabaseFault(
    "database-unavailable",
    "Database unavailable",
    "The database cannot serve requests right now. Retry shortly.",
    5,
    retryable=False,
)
BUSY = DatabaseFault(
    "database-busy",
    "Database busy",
    "Every database connection is in use. Retry shortly.",
    2,
    retryable=False,
)
TIMEOUT = DatabaseFault(
    "database-timeout",
    "Database timeout",
    "A database statement ran past its time limit and was cancelled; nothing was changed.",
    2,
    retryable=False,
)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg error, also when SQLAlchemy wrapped it."""
    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    state = getattr(original, "sqlstate", None)
    return state if isinstance(state, str) else None


def constraint_name(exc: BaseException) -> str | None:
    """The constraint or unique index a psycopg error names (integrity violations), also when
    SQLAlchemy wrapped it."""
    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    diag = getattr(original, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name if isinstance(name, str) else None


def is_connection_loss(exc: BaseException) -> bool:
    """The connection is gone: whatever the transaction did was rolled back by the server,
    unless the loss happened during COMMIT (then nobody knows)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    state = sqlstate(exc)
    if state is not None:
        return state.startswith("08") or state in _SERVER_GONE
    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    # psycopg reports a dropped socket or a refused connection without a SQLSTATE.
    return isinstance(original, psycopg.OperationalError | psycopg.InterfaceError)


def classify(exc: BaseException) -> DatabaseFault | None:
    """The transient fault behind ``exc``, or None when it is not one (a constraint
    violation, a syntax error: bugs or rules the caller must handle)."""
    if isinstance(exc, sa_exc.TimeoutError):
        return BUSY
    state = sqlstate(exc)
    if state in {SERIALIZATION_FAILURE, DEADLOCK_DETECTED}:
        return CONFLICT
    if state in {QUERY_CANCELED, LOCK_NOT_AVAILABLE}:
        return TIMEOUT
    if is_connection_loss(exc):
        return CONNECTION_LOST
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | psycopg.OperationalError):
        return UNAVAILABLE
    return None


def is_retryable(exc: BaseException) -> bool:
    """May the whole unit of work run again? Only for faults raised *before* its commit; the
    transaction runner never asks about a failed COMMIT (see transaction.py)."""
    fault = classify(exc)
    return fault is not None and fault.retryable
