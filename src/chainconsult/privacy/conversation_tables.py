"""What export and erasure do with conversations (registered in privacy/tables.py, ahead of
the projects, whose titles the live events may copy). Here, with the other tables' entries,
so that privacy reads the domains and no domain imports privacy."""

from __future__ import annotations

import uuid

from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.conversations.jobs import SWEEP_OPTIONS, remove_deleted_files
from chainconsult.infra.jobs import defer
from chainconsult.models.conversations import Message
from chainconsult.privacy.registry import PersonalTable, delete_rows, set_null


async def _erase_messages(session: AsyncSession, account_id: uuid.UUID) -> None:
    """The other participant keeps the thread; the erased person's messages read "message
    deleted", and their files go with the next sweep."""
    erased = await session.execute(
        update(Message)
        .where(Message.author_id == account_id)
        .values(body="", deleted_at=func.coalesce(Message.deleted_at, func.now()), author_id=None)
    )
    if erased.rowcount:  # type: ignore[attr-defined]
        await defer(session, remove_deleted_files, SWEEP_OPTIONS)


async def _keep(session: AsyncSession, account_id: uuid.UUID) -> None:
    """A thread stays for the other participant; it holds ids only."""


# Live events quoting the person: theirs, their messages and read markers in others'
# streams, and notifications about their projects (titles are their words).
_LIVE_EVENTS_ABOUT = (
    "t.data->>'author_id' = CAST(:id AS text) OR t.data->>'reader_id' = CAST(:id AS text) "
    "OR t.data->'payload'->>'project_id' IN "
    "(SELECT CAST(p.id AS text) FROM projects p WHERE p.client_id = :id)"
)


async def _erase_live_events(session: AsyncSession, account_id: uuid.UUID) -> None:
    await session.execute(
        text(f"DELETE FROM live_events t WHERE t.account_id = :id OR {_LIVE_EVENTS_ABOUT}"),  # noqa: S608
        {"id": account_id},
    )


CONVERSATION_TABLES = [
    PersonalTable("live_events", ("account_id",), _erase_live_events),
    PersonalTable("conversation_messages", ("author_id",), _erase_messages),
    PersonalTable(
        "conversation_files", ("uploader_id",), set_null("conversation_files", "uploader_id")
    ),
    PersonalTable(
        "conversation_readers",
        ("account_id",),
        delete_rows("conversation_readers", "account_id"),
    ),
    PersonalTable("conversations", ("client_id", "expert_id"), _keep),
]
