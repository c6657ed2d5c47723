"""Export and erasure over the personal-data registry."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.repository import AccountRepository
from chainconsult.accounts.service import Principal, forget_cached_account
from chainconsult.accounts.sessions import SessionService
from chainconsult.audit.trail import NO_ORIGIN, AuditTrail
from chainconsult.experts.service import directory_changed
from chainconsult.models.base import utcnow
from chainconsult.privacy import tables as _marketplace_tables  # noqa: F401 - registers them
from chainconsult.privacy.registry import personal_data
from chainconsult.privacy.schemas import ExportResponse
from chainconsult.projects.service import open_projects_changed


class PrivacyService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def export(self, principal: Principal) -> ExportResponse:
        rows = await personal_data.export(self.session, principal.account_id)
        return ExportResponse(
            account_id=principal.account_id,
            exported_at=utcnow(),
            tables=rows,
        )

    async def erase(self, principal: Principal) -> None:
        """Erase in this request's transaction: all or nothing. The caller has re-checked the
        password (``check_own_password``)."""
        # First, before any row about the account is touched: an email job claiming a
        # delivery to this account holds a share lock on the row, so either it finishes
        # first and its delivery row is erased with the rest, or it waits and sees the
        # account erased (chainconsult.mail.service).
        await AccountRepository(self.session).lock(principal.account_id)
        # Its logins end as any ended login does, on every process (the rows go below).
        await SessionService(self.session).end_all(principal.account_id)
        await personal_data.erase(self.session, principal.account_id)
        # What the cache holds about them goes too: their login and account, their profile
        # in the directory, their open projects.
        forget_cached_account(self.session, principal.account_id)
        directory_changed(self.session, principal.account_id)
        open_projects_changed(self.session)
        # The trail records that an erasure happened, and nothing about whom beyond the now
        # anonymous id: no IP, no user agent.
        await AuditTrail(self.session).record(
            actor_id=principal.account_id,
            action="account.erased",
            resource_type="account",
            resource_id=principal.account_id,
            origin=NO_ORIGIN,
        )
