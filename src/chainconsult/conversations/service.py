"""Conversations: one thread per (project, expert) pair, between the project's owner and
that expert, once the expert has proposed on the project or been invited to it (or was
hired). Only the two participants read and write; an admin may read any thread (for a
dispute), and each such read is audited. Anyone else hears 404, as for a missing thread."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.service import Principal
from chainconsult.accounts.verification import require_verified_email
from chainconsult.audit.trail import AuditTrail, RequestOrigin
from chainconsult.config import ConversationSettings
from chainconsult.conversations.jobs import (
    SWEEP_OPTIONS,
    digest_options,
    remove_deleted_files,
    send_message_digest,
)
from chainconsult.conversations.repository import ConversationRepository
from chainconsult.conversations.schemas import (
    DELETED_BODY,
    ConversationResponse,
    FileResponse,
    MessageResponse,
)
from chainconsult.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error
from chainconsult.infra.jobs import defer
from chainconsult.infra.live import record_live
from chainconsult.infra.pagination import Page, decode_cursor, encode_cursor
from chainconsult.models.base import utcnow
from chainconsult.models.conversations import Conversation, ConversationFile, Message
from chainconsult.projects.service import ProjectService
from chainconsult.proposals.repository import ProposalRepository

EDIT_WINDOW = dt.timedelta(minutes=10)
"""How long after posting its author may still change a message."""
_THREADS_CURSOR = "conversations"
_MESSAGES_CURSOR = "messages"
_NO_THREAD = "No such conversation."


async def ensure_may_message(session: AsyncSession, principal: Principal) -> None:
    """The one place that decides whether an account may write messages at all, beyond
    being a participant: its email must be verified (403 `email-unverified`, where
    REQUIRE_VERIFIED_EMAIL holds)."""
    require_verified_email(principal)


def message_response(message: Message, file: ConversationFile | None) -> MessageResponse:
    deleted = message.deleted_at is not None
    return MessageResponse(
        id=message.id,
        conversation_id=message.conversation_id,
        author_id=message.author_id,
        body=DELETED_BODY if deleted else message.body,
        created_at=message.created_at,
        edited_at=message.edited_at,
        deleted=deleted,
        file=file_response(file) if file is not None and not deleted else None,
    )


def file_response(file: ConversationFile) -> FileResponse:
    return FileResponse(
        id=file.id,
        name=file.name,
        size=file.size,
        content_type=file.content_type,
        sha256=file.sha256,
    )


def participants(conversation: Conversation) -> tuple[uuid.UUID, uuid.UUID]:
    return conversation.client_id, conversation.expert_id


class ConversationService:
    def __init__(self, session: AsyncSession, settings: ConversationSettings | None = None) -> None:
        self.session = session
        self.settings = settings or ConversationSettings()
        self.repository = ConversationRepository(session)

    # --- who may see what ------------------------------------------------------------

    async def open(
        self, *, principal: Principal, project_id: uuid.UUID, expert_id: uuid.UUID | None
    ) -> tuple[Conversation, bool]:
        """The thread between the project's owner and the expert, created on first open by
        either of them. The owner names the expert; an expert opens their own."""
        projects = ProjectService(self.session)
        project = await projects.visible(project_id, principal)
        if principal.account_id == project.client_id:
            if expert_id is None:
                raise InvalidInput(
                    "Name the expert to talk with.",
                    errors=[field_error("expert_id", "required for the project's owner")],
                )
            expert = expert_id
        elif expert_id in (None, principal.account_id):
            expert = principal.account_id
        else:
            raise NotFound("No such project.")
        if expert == project.client_id:
            raise InvalidInput(
                "A conversation needs two people.",
                errors=[field_error("expert_id", "is the project's owner")],
            )
        # The projects' and proposals' own records decide: hired, invited, or has proposed.
        standing = (
            project.expert_id == expert
            or await projects.repository.is_invited(project.id, expert)
            or await ProposalRepository(self.session).has_proposed(project.id, expert)
        )
        if not standing:
            if expert == principal.account_id:
                raise Forbidden(
                    "Propose on the project, or be invited to it, to message its owner."
                )
            raise Conflict(
                "This expert has neither proposed on the project nor been invited to it."
            )
        await ensure_may_message(self.session, principal)
        return await self.repository.get_or_add(
            project_id=project.id, client_id=project.client_id, expert_id=expert
        )

    async def readable(
        self, conversation_id: uuid.UUID, principal: Principal, origin: RequestOrigin
    ) -> Conversation:
        conversation = await self.repository.get(conversation_id)
        if conversation is None:
            raise NotFound(_NO_THREAD)
        if principal.account_id in participants(conversation):
            return conversation
        if principal.is_admin:
            await AuditTrail(self.session).record(
                actor_id=principal.account_id,
                action="conversation.read_by_admin",
                resource_type="conversation",
                resource_id=conversation.id,
                origin=origin,
            )
            return conversation
        raise NotFound(_NO_THREAD)

    async def writable(self, conversation_id: uuid.UUID, principal: Principal) -> Conversation:
        """A thread the caller takes part in (admins read, never write)."""
        conversation = await self.repository.get(conversation_id)
        if conversation is None or principal.account_id not in participants(conversation):
            raise NotFound(_NO_THREAD)
        await ensure_may_message(self.session, principal)
        return conversation

    # --- reading ---------------------------------------------------------------------

    async def response(
        self, conversation: Conversation, principal: Principal
    ) -> ConversationResponse:
        unread = await self.repository.unread_of(conversation.id, principal.account_id)
        return _conversation_response(conversation, unread)

    async def listing(
        self, principal: Principal, *, cursor: str | None, limit: int
    ) -> Page[ConversationResponse]:
        after = None
        if cursor is not None:
            at, thread = decode_cursor(
                cursor, _THREADS_CURSOR, dt.datetime.fromisoformat, uuid.UUID
            )
            after = (at, thread)
        rows = await self.repository.page_of(principal.account_id, after=after, limit=limit + 1)
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1][0]
            next_cursor = encode_cursor(_THREADS_CURSOR, last.last_activity_at.isoformat(), last.id)
        return Page[ConversationResponse](
            data=[_conversation_response(row, unread) for row, unread in rows[:limit]],
            next_cursor=next_cursor,
        )

    async def messages(
        self, conversation: Conversation, *, cursor: str | None, limit: int
    ) -> Page[MessageResponse]:
        """Newest first."""
        before = None
        if cursor is not None:
            (before,) = decode_cursor(cursor, _MESSAGES_CURSOR, int)
        rows = await self.repository.messages(conversation.id, before_seq=before, limit=limit + 1)
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(_MESSAGES_CURSOR, rows[limit - 1][0].seq)
        return Page[MessageResponse](
            data=[message_response(message, file) for message, file in rows[:limit]],
            next_cursor=next_cursor,
        )

    # --- writing ---------------------------------------------------------------------

    async def post(self, conversation: Conversation, principal: Principal, body: str) -> Message:
        message = await self.repository.add_message(conversation, principal.account_id, body)
        await self.announce(conversation, message, None)
        return message

    async def announce(
        self, conversation: Conversation, message: Message, file: ConversationFile | None
    ) -> None:
        """A new message: to both participants' event streams, and a digest email queued
        for the other (one waiting job per person, however many messages)."""
        await self._live(conversation, message, file)
        recipient = next(p for p in participants(conversation) if p != message.author_id)
        options = digest_options(recipient, self.settings.digest_delay_seconds)
        await defer(self.session, send_message_digest, options, account_id=str(recipient))

    async def edit(self, message_id: uuid.UUID, principal: Principal, body: str) -> Message:
        message, conversation = await self._own_message(message_id, principal)
        if utcnow() - message.created_at > EDIT_WINDOW:
            raise Conflict("A message can be edited only in the first 10 minutes.")
        message.body = body
        message.edited_at = utcnow()
        await self.session.flush()
        await self._live(conversation, message, await self.repository.file_of(message.id))
        return message

    async def delete(self, message_id: uuid.UUID, principal: Principal) -> Message:
        """Soft: the row stays (the thread keeps its shape), its text and file go."""
        message, conversation = await self._own_message(message_id, principal)
        message.body = ""
        message.deleted_at = utcnow()
        await self.session.flush()
        file = await self.repository.file_of(message.id)
        if file is not None:
            await defer(self.session, remove_deleted_files, SWEEP_OPTIONS)
        await self._live(conversation, message, None)
        return message

    async def mark_read(
        self, conversation: Conversation, principal: Principal, up_to: uuid.UUID
    ) -> None:
        message = await self.repository.get_message(up_to)
        if message is None or message.conversation_id != conversation.id:
            raise InvalidInput(
                "That message is not in this conversation.",
                errors=[field_error("up_to_message_id", "not a message of this conversation")],
            )
        await self.repository.mark_read(conversation.id, principal.account_id, message.seq)
        await record_live(
            self.session,
            participants(conversation),
            "read",
            {
                "conversation_id": str(conversation.id),
                "reader_id": str(principal.account_id),
                "up_to_message_id": str(message.id),
            },
        )

    async def _own_message(
        self, message_id: uuid.UUID, principal: Principal
    ) -> tuple[Message, Conversation]:
        message = await self.repository.get_message(message_id, lock=True)
        conversation = (
            await self.repository.get(message.conversation_id) if message is not None else None
        )
        if (
            message is None
            or conversation is None
            or principal.account_id not in participants(conversation)
        ):
            raise NotFound("No such message.")
        if message.author_id != principal.account_id:
            raise Forbidden("Only its author can change a message.")
        if message.deleted_at is not None:
            raise Conflict("The message is deleted.")
        await ensure_may_message(self.session, principal)
        return message, conversation

    async def _live(
        self, conversation: Conversation, message: Message, file: ConversationFile | None
    ) -> None:
        data: dict[str, Any] = message_response(message, file).model_dump(mode="json")
        await record_live(self.session, participants(conversation), "message", data)


def _conversation_response(conversation: Conversation, unread: int) -> ConversationResponse:
    return ConversationResponse(
        id=conversation.id,
        project_id=conversation.project_id,
        expert_id=conversation.expert_id,
        client_id=conversation.client_id,
        last_message_at=conversation.last_message_at,
        unread=unread,
    )
