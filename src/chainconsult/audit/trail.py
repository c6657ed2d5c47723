"""Recording the audit log. Every domain writes entries through ``AuditTrail.record`` in the
request's own transaction, so an action and its audit entry commit (or vanish) together; only
a failed login, whose request rolls back, is written in a transaction of its own
(accounts/login_audit.py). Below every domain: it imports none."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.request_state import client_ip
from chainconsult.models.audit import AuditEntry


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """Where a request came from, as the audit log keeps it."""

    ip: str | None
    user_agent: str | None


def request_origin(request: Request) -> RequestOrigin:
    ip = client_ip(request)
    agent = request.headers.get("user-agent")
    return RequestOrigin(ip=ip[:45] if ip else None, user_agent=agent[:512] if agent else None)


async def _origin(request: Request) -> RequestOrigin:
    # An async dependency: FastAPI runs a plain ``def`` dependency on its thread pool, a
    # thread hand-off per request for what is a dict lookup
    # (docs/decisions/0009-no-idle-work-per-request.md).
    return request_origin(request)


Origin = Annotated[RequestOrigin, Depends(_origin)]
NO_ORIGIN = RequestOrigin(ip=None, user_agent=None)


class AuditTrail:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        actor_id: uuid.UUID | None,
        action: str,
        resource_type: str,
        resource_id: uuid.UUID | str | None,
        origin: RequestOrigin,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Add one entry; ``details`` must hold no personal data (ids and states only)."""
        entry = AuditEntry(
            actor_id=actor_id,
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id) if resource_id is not None else None,
            ip=origin.ip,
            user_agent=origin.user_agent,
            details=details or {},
        )
        self.session.add(entry)
        await self.session.flush()
        return entry
