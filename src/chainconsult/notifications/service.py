"""The one way anything in the marketplace notifies a person: an in-app row and an email."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import CTE, ColumnElement, FromClause, Select, Text, cast
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.errors import NotFound
from chainconsult.infra.jobs import defer_each, deferring_each
from chainconsult.infra.live import wake_after_commit
from chainconsult.infra.pagination import Page, by_creation
from chainconsult.notifications.jobs import send_notification_email
from chainconsult.notifications.repository import (
    INSERTED,
    NotificationRepository,
    inserted_from,
    inserted_parameters,
)
from chainconsult.notifications.schemas import (
    PAYLOAD_FIELDS,
    NotificationKind,
    NotificationResponse,
)

_NEWEST_FIRST = by_creation("notifications")


def _with_emails(rows: CTE) -> Select[list[int] | None]:
    """The notification rows of ``rows`` and their email jobs in one statement. The id is the
    job's only argument: procrastinate stores and logs arguments, and the job reads names and
    addresses itself when it runs. No job lock: one job per notification, and the delivery's
    idempotency key stops a re-run sending twice."""
    return deferring_each(send_notification_email, rows, {"notification_id": cast(rows.c.id, Text)})


_WITH_EMAILS = _with_emails(INSERTED)


def notifying_from(
    kind: NotificationKind,
    *,
    recipient: ColumnElement[uuid.UUID],
    payload: Mapping[str, ColumnElement[Any]],
    source: FromClause,
) -> Select[list[int] | None]:
    """``notify()`` for a statement that learns the recipient and the payload from its own
    rows: one notification per row of ``source`` (CTEs of the same statement, joined), with
    ``recipient`` and each payload field computed in SQL from that row, and its email job.
    Embed it as a scalar subquery; the statement binds ``notification_created_at``. For a
    write whose checks, row and notice are one statement (a proposal: its project's owner is
    known only once the project is locked). The payload must hold exactly the kind's fields,
    checked here, when the statement is built."""
    if set(payload) != PAYLOAD_FIELDS[kind]:
        raise ValueError(f"{kind} payload needs {sorted(PAYLOAD_FIELDS[kind])}")
    rows = inserted_from(
        f"{kind.value}_notified", source, recipient=recipient, kind=kind.value, payload=payload
    )
    return _with_emails(rows)


class NotificationService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = NotificationRepository(session)

    async def notify(
        self,
        *,
        recipients: Sequence[uuid.UUID],
        kind: NotificationKind,
        payload: dict[str, Any],
    ) -> list[uuid.UUID]:
        """Write one in-app notification per recipient, and queue its email, in the caller's
        transaction: both exist exactly when the event they announce does. Returns the new
        notification ids."""
        if set(payload) != PAYLOAD_FIELDS[kind]:
            # A programming error, not user input: the payload contract is per kind.
            raise ValueError(f"{kind} payload needs {sorted(PAYLOAD_FIELDS[kind])}")
        unique = list(dict.fromkeys(recipients))
        if not unique:
            return []
        ids, parameters = inserted_parameters(unique, kind.value, _jsonable(payload))
        await defer_each(self.session, _WITH_EMAILS, parameters)
        # A trigger copies each row into live_events; the event streams hear of it here.
        wake_after_commit(self.session, unique)
        return ids

    async def list_for(
        self, recipient_id: uuid.UUID, *, unread_only: bool, cursor: str | None, limit: int
    ) -> Page[NotificationResponse]:
        rows = await self.repository.page(
            recipient_id,
            unread_only=unread_only,
            after=_NEWEST_FIRST.after(cursor),
            limit=limit + 1,
        )
        return _NEWEST_FIRST.page(
            Page[NotificationResponse], rows, limit, NotificationResponse.model_validate
        )

    async def unread_count(self, recipient_id: uuid.UUID) -> int:
        return await self.repository.count_unread(recipient_id)

    async def mark_read(
        self, *, notification_id: uuid.UUID, recipient_id: uuid.UUID
    ) -> NotificationResponse:
        if not await self.repository.mark_read(notification_id, recipient_id):
            # Someone else's notification answers exactly like a missing one.
            raise NotFound("No such notification.")
        row = await self.repository.get(notification_id)
        assert row is not None
        return NotificationResponse.model_validate(row)


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, list | tuple):
            return [convert(item) for item in value]
        return value

    return {key: convert(value) for key, value in payload.items()}


async def count_unread(session: AsyncSession, account_id: uuid.UUID) -> int:
    """The page header's unread count (accounts/visit.py, handed over by app.py)."""
    return await NotificationService(session).unread_count(account_id)
