"""Proposals and matching: one active proposal per expert per project, never on one's own
project; accepting one (under the project's row lock) starts the work and declines the rest."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import NoReturn

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.service import Principal
from chainconsult.accounts.verification import require_verified_email
from chainconsult.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error
from chainconsult.infra.db.faults import constraint_name
from chainconsult.infra.db.transaction import one_statement
from chainconsult.infra.monitoring.business import count_after_commit
from chainconsult.infra.pagination import Page, decode_cursor, encode_cursor
from chainconsult.models.accounts import Role
from chainconsult.models.base import utcnow
from chainconsult.models.projects import Project, ProjectStatus, Proposal, ProposalStatus
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService
from chainconsult.projects.service import (
    ProjectService,
    open_projects_changed,
    sees_without_invitation,
)
from chainconsult.proposals.repository import (
    SUBMIT,
    ProposalRepository,
    ProposedOn,
    proposed_on,
    submit_parameters,
)
from chainconsult.proposals.schemas import ProposalRequest, ProposalResponse

_CURSOR_KIND = "proposals"

_ONE_ACTIVE = "uq_proposals_one_active"
_ALREADY_ACTIVE = "You already have an active proposal on this project."


class ProposalService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = ProposalRepository(session)
        self.projects = ProjectService(session)

    async def submit(
        self, *, project_id: uuid.UUID, principal: Principal, body: ProposalRequest
    ) -> Proposal:
        """One statement, in autocommit (``SUBMIT``, proposals/repository.py): the project
        locked, the proposal if every rule holds, the owner's notification and its email
        job. The rules are decided in its SQL; ``_refused`` only names the one that failed.
        The project's row lock orders it against a concurrent accept or cancel, and the
        unique index on active proposals stays the last word."""
        require_verified_email(principal)
        now = utcnow()
        # Never added to the session: the statement writes it, with the values set here,
        # and the caller answers from it.
        proposal = Proposal(
            id=uuid.uuid4(),
            project_id=project_id,
            expert_id=principal.account_id,
            cover_letter=body.cover_letter,
            price_amount=body.price.amount,
            price_currency=body.price.currency.value,
            estimated_days=body.estimated_days,
            status=ProposalStatus.pending,
            created_at=now,
            updated_at=now,
            decided_at=None,
        )
        parameters = submit_parameters(
            proposal,
            is_expert=principal.role is Role.expert,
            is_admin=principal.is_admin,
            now=now,
        )
        try:
            row = await one_statement(self.session, SUBMIT, parameters)
        except IntegrityError as exc:
            if constraint_name(exc) != _ONE_ACTIVE:
                raise
            raise Conflict(_ALREADY_ACTIVE) from exc
        if row is None:
            raise NotFound("No such project.")
        if row.proposal_id is None:
            _refused(proposed_on(row), principal, body)
        count_after_commit(self.session, "proposal_submitted")
        return proposal

    async def list_for_project(
        self, *, project_id: uuid.UUID, principal: Principal, cursor: str | None, limit: int
    ) -> Page[ProposalResponse]:
        """The owner (and admins) see every proposal; anyone else only their own."""
        project = await self.projects.visible(project_id, principal)
        sees_all = principal.is_admin or project.client_id == principal.account_id
        after = None
        if cursor is not None:
            created, proposal_id = decode_cursor(
                cursor, _CURSOR_KIND, dt.datetime.fromisoformat, uuid.UUID
            )
            after = (created, proposal_id)
        rows = await self.repository.page(
            project.id,
            expert_id=None if sees_all else principal.account_id,
            after=after,
            limit=limit + 1,
        )
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(_CURSOR_KIND, last.created_at.isoformat(), last.id)
        return Page[ProposalResponse](
            data=[ProposalResponse.model_validate(row) for row in rows[:limit]],
            next_cursor=next_cursor,
        )

    async def accept(self, *, proposal_id: uuid.UUID, principal: Principal) -> Proposal:
        project, proposal = await self._locked(proposal_id, principal)
        if project.client_id != principal.account_id and not principal.is_admin:
            raise NotFound("No such proposal.")
        if project.status != ProjectStatus.open:
            raise Conflict(f"The project is {project.status}; no proposal can be accepted.")
        if proposal.status != ProposalStatus.pending:
            raise Conflict(f"The proposal is {proposal.status}, not pending.")
        now = utcnow()
        proposal.status = ProposalStatus.accepted
        proposal.decided_at = now
        proposal.updated_at = now
        project.status = ProjectStatus.in_progress
        project.expert_id = proposal.expert_id
        project.updated_at = now
        await self.session.flush()
        declined = await self.repository.decline_others(project.id, proposal.id, now)
        notifications = NotificationService(self.session)
        await notifications.notify(
            recipients=[proposal.expert_id],
            kind=NotificationKind.proposal_accepted,
            payload={
                "project_id": project.id,
                "project_title": project.title,
                "proposal_id": proposal.id,
            },
        )
        for other_id, expert_id in declined:
            await notifications.notify(
                recipients=[expert_id],
                kind=NotificationKind.proposal_declined,
                payload={
                    "project_id": project.id,
                    "project_title": project.title,
                    "proposal_id": other_id,
                    "reason": "another_accepted",
                },
            )
        count_after_commit(self.session, "proposal_accepted")
        open_projects_changed(self.session)  # the project left the open list
        return proposal

    async def withdraw(self, *, proposal_id: uuid.UUID, principal: Principal) -> Proposal:
        _, proposal = await self._locked(proposal_id, principal)
        if proposal.expert_id != principal.account_id:
            raise NotFound("No such proposal.")
        if proposal.status != ProposalStatus.pending:
            raise Conflict(
                f"The proposal is {proposal.status}; only a pending one can be withdrawn."
            )
        proposal.status = ProposalStatus.withdrawn
        proposal.updated_at = utcnow()
        await self.session.flush()
        return proposal

    async def _locked(
        self, proposal_id: uuid.UUID, principal: Principal
    ) -> tuple[Project, Proposal]:
        """Lock the proposal's project, then re-read the proposal under that lock: whoever
        waited behind a concurrent accept sees the outcome, not the state before it."""
        found = await self.repository.get(proposal_id)
        if found is None:
            raise NotFound("No such proposal.")
        if found.expert_id != principal.account_id and not principal.is_admin:
            project = await self.projects.repository.get(found.project_id)
            if project is None or project.client_id != principal.account_id:
                raise NotFound("No such proposal.")
        project = await self.projects.visible(found.project_id, principal, lock=True)
        proposal = await self.repository.get(proposal_id)
        assert proposal is not None  # proposals are never deleted while their project exists
        return project, proposal


def _refused(project: ProposedOn, principal: Principal, body: ProposalRequest) -> NoReturn:
    """The error for a proposal ``SUBMIT`` did not write, checked in the order a caller should
    hear them. Who may see the project is ``may_see``'s rule, with the invitation read by the
    statement itself."""
    if not (sees_without_invitation(project, principal) or project.invited):
        raise NotFound("No such project.")
    if principal.role is not Role.expert or not project.has_profile:
        raise Forbidden("Only approved experts can propose; apply to become one first.")
    if project.client_id == principal.account_id:
        raise Forbidden("You cannot propose on your own project.")
    if project.status != ProjectStatus.open:
        raise Conflict(f"The project is {project.status}; proposals are closed.")
    if body.price.currency.value != project.budget_currency:
        raise InvalidInput(
            "Price the proposal in the project's budget currency.",
            errors=[field_error("price.currency", f"must be {project.budget_currency}")],
        )
    if project.has_active:
        raise Conflict(_ALREADY_ACTIVE)
    # The SQL refused what these rules allow: the two have drifted apart.
    raise RuntimeError(f"SUBMIT refused a proposal on {project.id} that the rules allow")
