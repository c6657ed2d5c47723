"""The queries of conversations, in one place: threads, messages, read markers and files."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.conversations import (
    Conversation,
    ConversationFile,
    ConversationReader,
    Message,
)


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- threads ---------------------------------------------------------------------

    async def get(self, conversation_id: uuid.UUID) -> Conversation | None:
        return await self.session.get(Conversation, conversation_id)

    async def get_or_add(
        self, *, project_id: uuid.UUID, client_id: uuid.UUID, expert_id: uuid.UUID
    ) -> tuple[Conversation, bool]:
        """The pair's thread, created if there is none; and whether it was created here.
        ``ON CONFLICT`` makes two concurrent opens agree on one thread."""
        added = await self.session.execute(
            insert(Conversation)
            .values(
                id=uuid.uuid4(), project_id=project_id, client_id=client_id, expert_id=expert_id
            )
            .on_conflict_do_nothing(constraint="uq_conversations_project_expert")
            .returning(Conversation.id)
        )
        created = added.scalar_one_or_none() is not None
        found = await self.session.execute(
            select(Conversation)
            .where(Conversation.project_id == project_id, Conversation.expert_id == expert_id)
            .execution_options(populate_existing=True)
        )
        return found.scalar_one(), created

    def _unread(self, account_id: uuid.UUID) -> Any:
        """Messages of a thread (correlated) from others, not deleted, after the marker."""
        read_seq = (
            select(ConversationReader.read_seq)
            .where(
                ConversationReader.conversation_id == Conversation.id,
                ConversationReader.account_id == account_id,
            )
            .scalar_subquery()
        )
        return (
            select(func.count())
            .where(
                Message.conversation_id == Conversation.id,
                Message.seq > func.coalesce(read_seq, 0),
                Message.author_id.is_distinct_from(account_id),
                Message.deleted_at.is_(None),
            )
            .scalar_subquery()
        )

    async def page_of(
        self,
        account_id: uuid.UUID,
        *,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[tuple[Conversation, int]]:
        """The account's threads, most recently active first, with their unread counts."""
        query = select(Conversation, self._unread(account_id).label("unread")).where(
            or_(Conversation.client_id == account_id, Conversation.expert_id == account_id)
        )
        if after is not None:
            query = query.where(tuple_(Conversation.last_activity_at, Conversation.id) < after)
        query = query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        rows = (await self.session.execute(query.limit(limit))).all()
        return [(row[0], int(row[1])) for row in rows]

    async def unread_of(self, conversation_id: uuid.UUID, account_id: uuid.UUID) -> int:
        query = select(self._unread(account_id)).where(Conversation.id == conversation_id)
        return int((await self.session.execute(query)).scalar_one())

    # --- messages --------------------------------------------------------------------

    async def add_message(
        self, conversation: Conversation, author_id: uuid.UUID, body: str
    ) -> Message:
        message = Message(conversation_id=conversation.id, author_id=author_id, body=body)
        self.session.add(message)
        await self.session.flush()
        await self.session.refresh(message)
        await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(last_message_at=message.created_at, last_activity_at=message.created_at)
        )
        await self.mark_read(conversation.id, author_id, message.seq)
        return message

    async def get_message(self, message_id: uuid.UUID, *, lock: bool = False) -> Message | None:
        query = select(Message).where(Message.id == message_id)
        if lock:
            query = query.with_for_update()
        query = query.execution_options(populate_existing=True)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def messages(
        self, conversation_id: uuid.UUID, *, before_seq: int | None, limit: int
    ) -> list[tuple[Message, ConversationFile | None]]:
        """Newest first, each with its file."""
        query = (
            select(Message, ConversationFile)
            .outerjoin(ConversationFile, ConversationFile.message_id == Message.id)
            .where(Message.conversation_id == conversation_id)
        )
        if before_seq is not None:
            query = query.where(Message.seq < before_seq)
        query = query.order_by(Message.seq.desc()).limit(limit)
        return [(row[0], row[1]) for row in (await self.session.execute(query)).all()]

    async def file_of(self, message_id: uuid.UUID) -> ConversationFile | None:
        query = select(ConversationFile).where(ConversationFile.message_id == message_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    # --- read markers ----------------------------------------------------------------

    async def mark_read(self, conversation_id: uuid.UUID, account_id: uuid.UUID, seq: int) -> None:
        """Move the account's marker up to ``seq``; never back."""
        statement = insert(ConversationReader).values(
            conversation_id=conversation_id, account_id=account_id, read_seq=seq
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[ConversationReader.conversation_id, ConversationReader.account_id],
                set_={
                    "read_seq": func.greatest(
                        ConversationReader.read_seq, statement.excluded.read_seq
                    )
                },
            )
        )

    # --- files -----------------------------------------------------------------------

    async def add_file(self, file: ConversationFile) -> ConversationFile:
        self.session.add(file)
        await self.session.flush()
        return file

    async def get_file(self, file_id: uuid.UUID) -> tuple[ConversationFile, Message] | None:
        query = (
            select(ConversationFile, Message)
            .join(Message, Message.id == ConversationFile.message_id)
            .where(ConversationFile.id == file_id)
        )
        row = (await self.session.execute(query)).first()
        return (row[0], row[1]) if row is not None else None

    # --- digests ---------------------------------------------------------------------

    async def undigested(
        self, account_id: uuid.UUID
    ) -> Sequence[tuple[Conversation, int, int, dt.datetime]]:
        """Threads where the account has unread messages from others that no digest has
        mentioned: (thread, how many, the newest one's seq, the oldest one's time)."""
        reader = ConversationReader
        query = (
            select(
                Conversation,
                func.count(Message.id),
                func.max(Message.seq),
                func.min(Message.created_at),
            )
            .join(Message, Message.conversation_id == Conversation.id)
            .outerjoin(
                reader,
                and_(reader.conversation_id == Conversation.id, reader.account_id == account_id),
            )
            .where(
                or_(Conversation.client_id == account_id, Conversation.expert_id == account_id),
                Message.author_id.is_distinct_from(account_id),
                Message.deleted_at.is_(None),
                Message.seq > func.coalesce(reader.read_seq, literal(0)),
                Message.seq > func.coalesce(reader.emailed_seq, literal(0)),
            )
            .group_by(Conversation.id)
            .order_by(func.max(Message.seq).desc())
        )
        return [
            (row[0], int(row[1]), int(row[2]), row[3])
            for row in (await self.session.execute(query)).all()
        ]

    async def mark_emailed(
        self, conversation_id: uuid.UUID, account_id: uuid.UUID, seq: int
    ) -> None:
        statement = insert(ConversationReader).values(
            conversation_id=conversation_id, account_id=account_id, emailed_seq=seq
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[ConversationReader.conversation_id, ConversationReader.account_id],
                set_={
                    "emailed_seq": func.greatest(
                        ConversationReader.emailed_seq, statement.excluded.emailed_seq
                    )
                },
            )
        )
