"""Whether the current transaction has written anything. A connection lost during COMMIT
leaves a write's outcome unknown, but a transaction that only read has no outcome to know:
its caller can simply be told to retry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

_WROTE = "chainconsult_wrote"
_READ_KEYWORDS = ("SELECT", "WITH", "SHOW", "SET", "EXPLAIN", "VALUES")


class TrackedSession(Session):
    """The sync session behind every AsyncSession of build_sessionmaker()."""


def _is_read(state: ORMExecuteState) -> bool:
    statement: Any = state.statement
    if isinstance(statement, TextClause):
        # WITH ... could hide a data-modifying CTE; counting it as a read would only ever
        # turn an "outcome unknown" into "retry", and the app writes through the ORM.
        return statement.text.lstrip().upper().startswith(_READ_KEYWORDS)
    return bool(state.is_select)


@event.listens_for(TrackedSession, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    if not _is_read(state):
        state.session.info[_WROTE] = True


@event.listens_for(TrackedSession, "after_flush")
def _note_flush(session: Session, flush_context: UOWTransaction) -> None:
    session.info[_WROTE] = True


@event.listens_for(TrackedSession, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction, not a savepoint
        session.info.pop(_WROTE, None)


def mark_written(session: AsyncSession) -> None:
    """Code that writes through the raw driver connection (procrastinate's defer) says so
    here: those statements bypass the session's events."""
    session.sync_session.info[_WROTE] = True


def transaction_wrote(session: AsyncSession) -> bool:
    """True once the current transaction flushed ORM changes or ran a non-SELECT statement
    (unsure counts as written)."""
    if session.sync_session.info.get(_WROTE, False):
        return True
    return bool(session.new or session.dirty or session.deleted)
