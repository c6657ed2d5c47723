"""Proposals and matching: one active proposal per expert per project, never on one's own
project; accepting one (under the project's row lock) starts the work and declines the rest."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.service import Principal
from chainconsult.accounts.verification import require_verified_email
from chainconsult.errors import (
    ChainconsultError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    field_error,
)
from chainconsult.infra.db.faults import constraint_name
from chainconsult.infra.db.rule_logic import PYTHON, SQL, Logic
from chainconsult.infra.db.transaction import one_statement
from chainconsult.infra.live import wake_after_commit
from chainconsult.infra.monitoring.business import count_after_commit
from chainconsult.infra.pagination import Page, by_creation
from chainconsult.models.accounts import Role
from chainconsult.models.base import utcnow
from chainconsult.models.projects import Project, ProjectStatus, Proposal, ProposalStatus
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService
from chainconsult.projects.announcements import Announcements
from chainconsult.projects.service import ProjectService, open_projects_changed, sees
from chainconsult.proposals.repository import (
    CALLER_ID,
    IS_ADMIN,
    IS_EXPERT,
    PRICE_CURRENCY,
    PROJECT,
    ProposalRepository,
    ProposedOn,
    proposed_on,
    submit_parameters,
    submit_statement,
)
from chainconsult.proposals.schemas import ProposalRequest, ProposalResponse

_OLDEST_FIRST = by_creation("proposals")

_ONE_ACTIVE = "uq_proposals_one_active"
_ALREADY_ACTIVE = "You already have an active proposal on this project."

ACCEPTABLE_ON = (ProjectStatus.open,)
"""The project statuses a proposal may be accepted in."""
DECIDABLE = (ProposalStatus.pending,)
"""The proposal statuses that may still be accepted or withdrawn."""


@dataclass(frozen=True, slots=True)
class Proposing:
    """What the proposal rule reads: plain values when Python decides, column expressions
    and bound parameters when the submit statement decides in the database."""

    project: Any
    """``ProposedOn``, or the submit statement's ``PROJECT.c``."""
    caller_id: Any
    is_expert: Any
    is_admin: Any
    price_currency: Any


Refusal = Callable[[ProposedOn], ChainconsultError]


def proposal_checks(facts: Proposing, logic: Logic) -> list[tuple[Any, Refusal]]:
    """Who may propose, the rule's one home: each condition that must hold, with the error
    a caller hears when it does not, in the order they should hear them. Python and the
    submit statement's SQL are both built from it (tests/proposals/test_proposal_rules.py
    holds every path to it)."""
    project = facts.project
    return [
        (
            sees(
                project,
                viewer_id=facts.caller_id,
                is_admin=facts.is_admin,
                invited=project.invited,
                logic=logic,
            ),
            lambda _: NotFound("No such project."),
        ),
        (
            logic.all(facts.is_expert, project.has_profile),
            lambda _: Forbidden("Only approved experts can propose; apply to become one first."),
        ),
        (
            project.client_id != facts.caller_id,
            lambda _: Forbidden("You cannot propose on your own project."),
        ),
        (
            project.status == ProjectStatus.open,
            lambda on: Conflict(f"The project is {on.status}; proposals are closed."),
        ),
        (
            project.budget_currency == facts.price_currency,
            lambda on: InvalidInput(
                "Price the proposal in the project's budget currency.",
                errors=[field_error("price.currency", f"must be {on.budget_currency}")],
            ),
        ),
        (logic.negate(project.has_active), lambda _: Conflict(_ALREADY_ACTIVE)),
    ]


def proposal_refusal(facts: Proposing) -> ChainconsultError | None:
    """The error for a proposal the rule refuses, or None when it may be written."""
    for holds, refusal in proposal_checks(facts, PYTHON):
        if not holds:
            return refusal(facts.project)
    return None


def offers_proposal_form(project: Project, principal: Principal, *, active: bool) -> bool:
    """Whether the project page offers the caller a proposal form: the rule on what the page
    read (the caller sees the project; the expert role stands for the approved profile, and
    the price's currency is the one the form proposes). The write still decides."""
    on = ProposedOn(
        id=project.id,
        client_id=project.client_id,
        expert_id=project.expert_id,
        visibility=project.visibility,
        status=project.status,
        budget_currency=project.budget_currency,
        title=project.title,
        has_profile=principal.role is Role.expert,
        has_active=active,
        invited=True,
    )
    facts = Proposing(
        on,
        principal.account_id,
        principal.role is Role.expert,
        principal.is_admin,
        on.budget_currency,
    )
    return proposal_refusal(facts) is None


def build_submit() -> Select[Any]:
    """The submit statement with the proposal rule in its SQL."""
    facts = Proposing(PROJECT.c, CALLER_ID, IS_EXPERT, IS_ADMIN, PRICE_CURRENCY)
    return submit_statement(SQL.all(*(holds for holds, _ in proposal_checks(facts, SQL))))


SUBMIT = build_submit()
"""Built once (SQLAlchemy compiles it once); decision 0035 says why it is one statement."""


class ProposalService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = ProposalRepository(session)
        self.projects = ProjectService(session)

    async def submit(
        self, *, project_id: uuid.UUID, principal: Principal, body: ProposalRequest
    ) -> Proposal:
        """One statement, in autocommit (``SUBMIT``): the project locked, the proposal if
        ``proposal_checks`` all hold (in its SQL), the owner's notification and its email
        job. When nothing was written, the same checks in Python name the one that failed.
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
            facts = Proposing(
                proposed_on(row),
                principal.account_id,
                parameters["is_expert"],
                principal.is_admin,
                proposal.price_currency,
            )
            refusal = proposal_refusal(facts)
            if refusal is None:
                # Only a SQL-versus-Python difference in one connective could get here.
                raise RuntimeError(f"SUBMIT refused a proposal on {row.id} the rule allows")
            raise refusal
        count_after_commit(self.session, "proposal_submitted")
        wake_after_commit(self.session, [row.client_id])  # the owner's notification
        return proposal

    async def list_for_project(
        self, *, project_id: uuid.UUID, principal: Principal, cursor: str | None, limit: int
    ) -> Page[ProposalResponse]:
        """The owner (and admins) see every proposal; anyone else only their own."""
        project = await self.projects.visible(project_id, principal)
        sees_all = principal.is_admin or project.client_id == principal.account_id
        rows = await self.repository.page(
            project.id,
            expert_id=None if sees_all else principal.account_id,
            after=_OLDEST_FIRST.after(cursor),
            limit=limit + 1,
        )
        return _OLDEST_FIRST.page(
            Page[ProposalResponse], rows, limit, ProposalResponse.model_validate
        )

    async def accept(self, *, proposal_id: uuid.UUID, principal: Principal) -> Proposal:
        project, proposal = await self._locked(proposal_id, principal)
        if project.client_id != principal.account_id and not principal.is_admin:
            raise NotFound("No such proposal.")
        if project.status not in ACCEPTABLE_ON:
            raise Conflict(f"The project is {project.status}; no proposal can be accepted.")
        if proposal.status not in DECIDABLE:
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
        await Announcements(self.session).declined(project, declined, reason="another_accepted")
        count_after_commit(self.session, "proposal_accepted")
        open_projects_changed(self.session)  # the project left the open list
        return proposal

    async def withdraw(self, *, proposal_id: uuid.UUID, principal: Principal) -> Proposal:
        _, proposal = await self._locked(proposal_id, principal)
        if proposal.expert_id != principal.account_id:
            raise NotFound("No such proposal.")
        if proposal.status not in DECIDABLE:
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
