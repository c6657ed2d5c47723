"""The erased person's words in other people's rows.

Notifications carry project titles, never names, and email subjects quote a project's title
and, for an invitation, the client's name. After a client's erasure the title of a project
that was deleted (nobody was hired) must leave the bidders' and invitees' notifications and
the records of the emails they were sent, and the client's name must leave every recorded
subject. A kept project's title stays where it was sent: the project itself stays, visible
as before (chainconsult.privacy.tables)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.text import one_line
from chainconsult.models.accounts import Account

REDACTED_SUBJECT = "(subject removed: it quoted an erased account)"

_NOTIFICATIONS_ABOUT_DELETED = text(
    "UPDATE notifications SET payload = jsonb_set(payload, '{project_title}', to_jsonb("
    "CAST(:title AS text))) "
    "WHERE payload ? 'project_title' AND payload->>'project_id' = ANY(CAST(:deleted AS text[]))"
)
# The delivery of a notification has the key notification:<id>.
_DELIVERIES_QUOTING = text(
    "UPDATE email_deliveries d SET subject = :subject FROM notifications n "
    "WHERE d.idempotency_key = 'notification:' || n.id "
    "AND (n.payload->>'project_id' = ANY(CAST(:deleted AS text[])) "
    "OR (n.kind = 'project_invitation' AND n.payload->>'project_id' = ANY(CAST(:owned AS text[]))))"
)
# A record can outlive its notification (JOB_RETENTION_DAYS above NOTIFICATION_RETENTION_DAYS):
# then only its text tells what it quoted.
_ORPHANS_QUOTING = text(
    "UPDATE email_deliveries d SET subject = :subject "
    "WHERE d.idempotency_key LIKE 'notification:%' AND NOT EXISTS "
    "(SELECT 1 FROM notifications n WHERE d.idempotency_key = 'notification:' || n.id) "
    "AND (EXISTS (SELECT 1 FROM unnest(CAST(:titles AS text[])) t WHERE strpos(d.subject, t) > 0) "
    "OR (d.kind = 'project_invitation' AND strpos(d.subject, :name) > 0))"
)


async def unquote_client(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    projects: Sequence[uuid.UUID],
    deleted: Mapping[uuid.UUID, str],
    placeholder: str,
) -> None:
    """Before the account is anonymised: ``projects`` are all of the client's, ``deleted``
    the titles of those about to be deleted, whose copies become ``placeholder``."""
    name = (
        await session.execute(select(Account.display_name).where(Account.id == account_id))
    ).scalar_one()
    owned = [str(project_id) for project_id in projects]
    gone = [str(project_id) for project_id in deleted]
    if gone:
        await session.execute(_NOTIFICATIONS_ABOUT_DELETED, {"deleted": gone, "title": placeholder})
    if owned:
        await session.execute(
            _DELIVERIES_QUOTING, {"deleted": gone, "owned": owned, "subject": REDACTED_SUBJECT}
        )
    # As the subjects hold them: on one line. An empty needle would match every subject.
    titles = [line for line in map(one_line, deleted.values()) if line]
    if titles or one_line(name):
        await session.execute(
            _ORPHANS_QUOTING,
            {"titles": titles, "name": one_line(name) or None, "subject": REDACTED_SUBJECT},
        )
