"""Conversation jobs: the digest email of unread messages (one waiting job per recipient,
whatever the number of messages), and the removal of deleted messages' stored files."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import structlog
from procrastinate import JobContext
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import Settings
from chainconsult.conversations.repository import ConversationRepository
from chainconsult.infra.jobs import DeferOptions, Queue, defer, task
from chainconsult.infra.jobs import resources as job_resources
from chainconsult.infra.storage import open_object_store
from chainconsult.mail.service import EMAIL_RETRY, EmailOutbox
from chainconsult.models.accounts import Account
from chainconsult.models.base import utcnow
from chainconsult.models.conversations import ConversationFile, Message
from chainconsult.models.projects import Project

log = structlog.get_logger("chainconsult.conversations")

DIGEST_KIND = "message_digest"


def digest_options(account_id: uuid.UUID, delay_seconds: float) -> DeferOptions:
    """The digest job of one recipient: while one waits, a new message queues nothing more."""
    return DeferOptions(queueing_lock=f"message-digest:{account_id}", delay_seconds=delay_seconds)


@task(name="conversations.send_message_digest", queue=Queue.default, retry=EMAIL_RETRY)
async def send_message_digest(context: JobContext, *, account_id: str) -> str:
    """One email about the recipient's unread messages once the oldest has waited
    MESSAGE_DIGEST_DELAY_SECONDS; nothing for threads read in the meantime."""
    found = job_resources(context)
    digest = MessageDigest(found.settings, found.sessionmaker)
    return await digest.send(uuid.UUID(account_id), now=utcnow())


@dataclass(frozen=True, slots=True)
class _Composed:
    key: str
    to: str
    name: str
    threads: list[dict[str, Any]]
    marks: list[tuple[uuid.UUID, int]]
    quoting: set[uuid.UUID]


class MessageDigest:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.delay = dt.timedelta(seconds=settings.conversations.digest_delay_seconds)

    async def send(self, account_id: uuid.UUID, *, now: dt.datetime) -> str:
        """``now`` is the job's clock (tests pass their own)."""
        async with self.sessionmaker() as session, session.begin():
            composed = await self._compose(session, account_id, now)
        if isinstance(composed, str):
            return composed
        outcome = await EmailOutbox(settings=self.settings, sessionmaker=self.sessionmaker).deliver(
            key=composed.key,
            kind=DIGEST_KIND,
            account_id=account_id,
            to=composed.to,
            display_name=composed.name,
            context={"threads": composed.threads},
            quoting=composed.quoting,
            unsubscribe=True,
        )
        # Marked after the send: a failed send is retried with the same threads (and the
        # same idempotency key, so a send whose outcome was lost is not repeated).
        async with self.sessionmaker() as session, session.begin():
            repository = ConversationRepository(session)
            for conversation_id, seq in composed.marks:
                await repository.mark_emailed(conversation_id, account_id, seq)
        return outcome.value

    async def _compose(
        self, session: AsyncSession, account_id: uuid.UUID, now: dt.datetime
    ) -> _Composed | str:
        account = await session.get(Account, account_id)
        if account is None or not account.is_active:
            return "skipped: recipient inactive"
        threads = await ConversationRepository(session).undigested(account_id)
        if not threads:
            return "skipped: nothing unread"
        oldest = min(first for _, _, _, first in threads)
        if now - oldest < self.delay:
            # Read and answered since: come back when the oldest unread one is due.
            wait = (oldest + self.delay - now).total_seconds()
            await defer(
                session,
                send_message_digest,
                digest_options(account_id, wait),
                account_id=str(account_id),
            )
            return "skipped: not due yet"
        titles = dict(
            (
                await session.execute(
                    select(Project.id, Project.title).where(
                        Project.id.in_([thread.project_id for thread, *_ in threads])
                    )
                )
            ).all()
        )
        return _Composed(
            key=f"message-digest:{account_id}:{max(seq for _, _, seq, _ in threads)}",
            to=account.email,
            name=account.display_name,
            threads=[
                {
                    "conversation_id": str(thread.id),
                    "project_title": titles.get(thread.project_id, ""),
                    "unread": count,
                }
                for thread, count, _, _ in threads
            ],
            marks=[(thread.id, seq) for thread, _, seq, _ in threads],
            # Project titles are their clients' words.
            quoting={thread.client_id for thread, *_ in threads} - {account_id},
        )


SWEEP_OPTIONS = DeferOptions(queueing_lock="conversations.remove-deleted-files")


@task(name="conversations.remove_deleted_files", queue=Queue.low)
async def remove_deleted_files(context: JobContext) -> int:
    """Remove the stored files of deleted messages, then their rows; returns how many. No
    argument: one waiting sweep covers every deletion before it runs."""
    found = job_resources(context)
    return await sweep_deleted_files(found.settings, found.sessionmaker)


async def sweep_deleted_files(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> int:
    store = open_object_store(settings)
    async with _transaction(sessionmaker) as session:
        rows = (
            await session.execute(
                select(ConversationFile.id, ConversationFile.storage_key)
                .join(Message, Message.id == ConversationFile.message_id)
                .where(Message.deleted_at.is_not(None))
            )
        ).all()
    for _, key in rows:
        # The object first: a crash between the two leaves a row the next sweep retries.
        await anyio.to_thread.run_sync(store.delete, key)
    if rows:
        async with _transaction(sessionmaker) as session:
            await session.execute(
                delete(ConversationFile).where(ConversationFile.id.in_([row[0] for row in rows]))
            )
    log.info("deleted_files_removed", count=len(rows))
    return len(rows)


@asynccontextmanager
async def _transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session, session.begin():
        yield session
