"""Expert vetting: submit (and resubmit after a rejection), review, approve or reject.
Approval creates or refreshes the public profile and makes the account an expert."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.service import Principal, forget_cached_account
from chainconsult.accounts.verification import require_verified_email
from chainconsult.accounts.wallets import WalletService
from chainconsult.applications.repository import PENDING, ApplicationRepository
from chainconsult.applications.schemas import (
    ApplicationRequest,
    ApplicationResponse,
    DecisionRequest,
)
from chainconsult.audit.trail import AuditTrail, RequestOrigin
from chainconsult.errors import Conflict, InvalidInput, NotFound, field_error
from chainconsult.experts.service import directory_changed
from chainconsult.experts.wallets import payout_wallet_verified, wallet_problem
from chainconsult.infra.monitoring.business import count_after_commit
from chainconsult.infra.pagination import Page, by_creation
from chainconsult.models.accounts import Role
from chainconsult.models.base import utcnow
from chainconsult.models.experts import ApplicationStatus, ExpertApplication
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService

_QUEUE = by_creation("applications")


class ApplicationService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = ApplicationRepository(session)

    async def submit(self, *, principal: Principal, body: ApplicationRequest) -> ExpertApplication:
        require_verified_email(principal)
        if body.wallet_address is not None and body.wallet_chain is not None:
            problem = wallet_problem(body.wallet_chain, body.wallet_address)
            if problem is not None:
                raise InvalidInput(
                    f"The payout wallet is not a valid {body.wallet_chain} address.",
                    errors=[field_error("wallet_address", problem)],
                )
        account = await self.repository.lock_account(principal.account_id)
        if account is None:
            raise NotFound("No such account.")
        # An approved expert may apply again to change their profile: the live profile stays
        # as it is until an admin approves the new revision.
        if await self.repository.pending_for(account.id) is not None:
            raise Conflict("You already have an application waiting for a decision.")
        application = ExpertApplication(
            account_id=account.id,
            revision=await self.repository.latest_revision(account.id) + 1,
            status=ApplicationStatus.submitted,
            headline=body.headline,
            bio=body.bio,
            skills=[skill.value for skill in body.skills],
            chains=[chain.value for chain in body.chains],
            hourly_rate_amount=body.hourly_rate.amount,
            hourly_rate_currency=body.hourly_rate.currency.value,
            years_experience=body.years_experience,
            portfolio_links=[str(link) for link in body.portfolio_links],
            wallet_address=body.wallet_address,
            wallet_chain=body.wallet_chain.value if body.wallet_chain else None,
        )
        try:
            await self.repository.add(application)
        except IntegrityError as exc:
            # The partial unique index is the last word if the lock was somehow bypassed.
            raise Conflict("You already have an application waiting for a decision.") from exc
        count_after_commit(self.session, "expert_application_submitted")
        return application

    async def mine(self, account_id: uuid.UUID) -> Page[ApplicationResponse]:
        rows = await self.repository.of_account(account_id)
        return Page[ApplicationResponse](data=await self.responses(rows), next_cursor=None)

    async def responses(self, rows: Sequence[ExpertApplication]) -> list[ApplicationResponse]:
        """Applications as answered, each saying whether its payout wallet is verified."""
        linked = await WalletService(self.session).linked_by_account([r.account_id for r in rows])
        return [
            ApplicationResponse.model_validate(row).model_copy(
                update={
                    "wallet_verified": payout_wallet_verified(
                        row.wallet_address, row.wallet_chain, linked.get(row.account_id, [])
                    )
                }
            )
            for row in rows
        ]

    async def queue(
        self, *, status: ApplicationStatus | None, cursor: str | None, limit: int
    ) -> Page[ApplicationResponse]:
        rows = await self.repository.queue(
            status=status, after=_QUEUE.after(cursor), limit=limit + 1
        )
        shown = dict(
            zip([row.id for row in rows[:limit]], await self.responses(rows[:limit]), strict=True)
        )
        return _QUEUE.page(Page[ApplicationResponse], rows, limit, lambda row: shown[row.id])

    async def start_review(
        self, *, application_id: uuid.UUID, admin: Principal, origin: RequestOrigin
    ) -> ExpertApplication:
        application = await self._locked(application_id)
        if application.status != ApplicationStatus.submitted:
            raise Conflict(f"The application is {application.status}, not submitted.")
        application.status = ApplicationStatus.under_review
        await AuditTrail(self.session).record(
            actor_id=admin.account_id,
            action="expert_application.review_started",
            resource_type="expert_application",
            resource_id=application.id,
            origin=origin,
        )
        await self.session.flush()
        return application

    async def decide(
        self,
        *,
        application_id: uuid.UUID,
        admin: Principal,
        body: DecisionRequest,
        origin: RequestOrigin,
    ) -> ExpertApplication:
        application = await self._locked(application_id)
        if application.status not in PENDING:
            raise Conflict(f"The application was already decided ({application.status}).")
        approved = body.decision == "approve"
        now = utcnow()
        application.status = ApplicationStatus.approved if approved else ApplicationStatus.rejected
        application.decision_note = body.note
        application.decided_by_id = admin.account_id
        application.decided_at = now
        if approved:
            await self._publish_profile(application, now)
        await AuditTrail(self.session).record(
            actor_id=admin.account_id,
            action=f"expert_application.{application.status}",
            resource_type="expert_application",
            resource_id=application.id,
            origin=origin,
            details={"account_id": str(application.account_id), "revision": application.revision},
        )
        await NotificationService(self.session).notify(
            recipients=[application.account_id],
            kind=NotificationKind.application_decided,
            payload={
                "application_id": application.id,
                "decision": application.status,
                "note": body.note,
            },
        )
        await self.session.flush()
        if approved:
            count_after_commit(self.session, "expert_approved")
        return application

    async def _locked(self, application_id: uuid.UUID) -> ExpertApplication:
        application = await self.repository.lock(application_id)
        if application is None:
            raise NotFound("No such application.")
        return application

    async def _publish_profile(self, application: ExpertApplication, now: dt.datetime) -> None:
        account = await self.repository.lock_account(application.account_id)
        assert account is not None  # the application's foreign key guarantees it
        if account.role != Role.admin:
            account.role = Role.expert
        await self.repository.upsert_profile(
            {
                "id": account.id,
                "display_name": account.display_name,
                "headline": application.headline,
                "bio": application.bio,
                "skills": application.skills,
                "chains": application.chains,
                "hourly_rate_amount": application.hourly_rate_amount,
                "hourly_rate_currency": application.hourly_rate_currency,
                "years_experience": application.years_experience,
                "portfolio_links": application.portfolio_links,
                "wallet_address": application.wallet_address,
                "wallet_chain": application.wallet_chain,
                "approved_at": now,
                "updated_at": now,
            }
        )
        # The role (a candidate became an expert) and the public profile changed.
        forget_cached_account(self.session, account.id)
        directory_changed(self.session, account.id)


async def latest_application(
    session: AsyncSession, account_id: uuid.UUID
) -> ApplicationResponse | None:
    """The account page's expert application: the account's latest, or None
    (accounts/visit.py PageSources, handed over by app.py)."""
    applications = await ApplicationService(session).mine(account_id)
    return applications.data[0] if applications.data else None
