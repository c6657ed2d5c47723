"""Conversations between a project's owner and an expert, their messages, read markers and
files. The live event log the event stream replays from is infra's (infra/live/models.py)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base, IdMixin


class Conversation(IdMixin, Base):
    """One thread per (project, expert) pair; the client is the project's owner, copied here
    so listing someone's threads needs no join."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("project_id", "expert_id", name="uq_conversations_project_expert"),
        Index("ix_conversations_client_activity", "client_id", "last_activity_at", "id"),
        Index("ix_conversations_expert_activity", "expert_id", "last_activity_at", "id"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    last_message_at: Mapped[dt.datetime | None]
    last_activity_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    """The last message's time, or the creation's: the list's sort key, never NULL."""


class Message(IdMixin, Base):
    __tablename__ = "conversation_messages"
    __table_args__ = (Index("ix_conversation_messages_thread", "conversation_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    """Order of arrival across every thread: read markers and cursors compare it."""
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    edited_at: Mapped[dt.datetime | None]
    deleted_at: Mapped[dt.datetime | None]


class ConversationReader(Base):
    """A participant's place in a thread: what they have read and what a digest has told
    them about."""

    __tablename__ = "conversation_readers"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    read_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    emailed_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class ConversationFile(IdMixin, Base):
    __tablename__ = "conversation_files"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversation_messages.id", ondelete="CASCADE"), unique=True
    )
    uploader_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
