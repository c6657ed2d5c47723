from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Row,
    Select,
    String,
    Uuid,
    bindparam,
    insert,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.experts import ExpertProfile
from chainconsult.models.projects import (
    Project,
    ProjectInvitation,
    Proposal,
    ProposalStatus,
)
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import notifying_from

CALLER_ID = bindparam("expert_id", type_=Uuid())
IS_EXPERT = bindparam("is_expert", type_=Boolean())
IS_ADMIN = bindparam("is_admin", type_=Boolean())
PRICE_CURRENCY = bindparam("proposal_price_currency", type_=String())

# The project, locked, with what decides whether the caller may propose on it: one row, or
# none when there is no such project.
PROJECT = (
    select(
        Project.id,
        Project.client_id,
        Project.expert_id,
        Project.visibility,
        Project.status,
        Project.budget_currency,
        Project.title,
        select(ExpertProfile.id).where(ExpertProfile.id == CALLER_ID).exists().label("has_profile"),
        select(Proposal.id)
        .where(
            Proposal.project_id == Project.id,
            Proposal.expert_id == CALLER_ID,
            Proposal.status.in_((ProposalStatus.pending, ProposalStatus.accepted)),
        )
        .exists()
        .label("has_active"),
        select(ProjectInvitation.expert_id)
        .where(ProjectInvitation.project_id == Project.id, ProjectInvitation.expert_id == CALLER_ID)
        .exists()
        .label("invited"),
    )
    .where(Project.id == bindparam("project_id"))
    .with_for_update(of=Project)
    .cte("project")
)
"""The columns the proposal rule reads of the project (``PROJECT.c``); the caller's facts
are the parameters above."""

_NEW_COLUMNS = (
    "id",
    "project_id",
    "expert_id",
    "cover_letter",
    "price_amount",
    "price_currency",
    "estimated_days",
    "status",
    "created_at",
    "updated_at",
)


def submit_statement(allowed: ColumnElement[bool]) -> Select[Any]:
    """A proposal as one statement: the project locked with the caller's standing, the
    proposal if ``allowed`` (the proposal rule in SQL, over ``PROJECT.c`` and the caller's
    parameters) holds, the owner's notification and its email job. Parameters from
    ``submit_parameters``. Its row (none: no such project) holds the project's columns,
    ``has_profile``, ``has_active``, ``invited`` and ``proposal_id`` (NULL when the rule
    refused it).

    Under READ COMMITTED, when the statement waited for the project's lock, the project row
    is read again as the lock holder left it, but the EXISTS subqueries see the snapshot
    taken before the wait: a proposal by the same expert committed meanwhile is missed
    there, and the unique index on active proposals refuses the insert instead (a 409 all
    the same)."""
    proposal = (
        insert(Proposal)
        .from_select(
            list(_NEW_COLUMNS),
            select(
                *(
                    bindparam(f"proposal_{name}", type_=Proposal.__table__.c[name].type)
                    for name in _NEW_COLUMNS
                )
            )
            .select_from(PROJECT)
            .where(allowed),
        )
        .returning(Proposal.id)
        .cte("proposal")
    )
    return select(
        PROJECT,
        select(proposal.c.id).scalar_subquery().label("proposal_id"),
        notifying_from(
            NotificationKind.proposal_received,
            recipient=PROJECT.c.client_id,
            payload={
                "project_id": PROJECT.c.id,
                "project_title": PROJECT.c.title,
                "proposal_id": proposal.c.id,
            },
            source=proposal.join(PROJECT, true()),
        )
        .scalar_subquery()
        .label("job_ids"),
    )


@dataclass(frozen=True, slots=True)
class ProposedOn:
    """What a proposal needs of its project, read under the project's row lock."""

    id: uuid.UUID
    client_id: uuid.UUID
    expert_id: uuid.UUID | None
    visibility: str
    status: str
    budget_currency: str
    title: str
    has_profile: bool
    has_active: bool
    invited: bool


def proposed_on(row: Row[Any]) -> ProposedOn:
    """The project part of a submit statement's row."""
    return ProposedOn(
        id=row.id,
        client_id=row.client_id,
        expert_id=row.expert_id,
        visibility=row.visibility,
        status=row.status,
        budget_currency=row.budget_currency,
        title=row.title,
        has_profile=row.has_profile,
        has_active=row.has_active,
        invited=row.invited,
    )


def submit_parameters(
    proposal: Proposal, *, is_expert: bool, is_admin: bool, now: dt.datetime
) -> dict[str, Any]:
    """The submit statement's parameters for a transient ``proposal`` with every column of
    ``_NEW_COLUMNS`` set."""
    return {
        "project_id": proposal.project_id,
        "expert_id": proposal.expert_id,
        "is_expert": is_expert,
        "is_admin": is_admin,
        "notification_created_at": now,
        **{f"proposal_{name}": getattr(proposal, name) for name in _NEW_COLUMNS},
    }


class ProposalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, proposal_id: uuid.UUID) -> Proposal | None:
        query = (
            select(Proposal)
            .where(Proposal.id == proposal_id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page(
        self,
        project_id: uuid.UUID,
        *,
        expert_id: uuid.UUID | None,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Proposal]:
        """Oldest first; ``expert_id`` narrows to one expert's proposals."""
        query = select(Proposal).where(Proposal.project_id == project_id)
        if expert_id is not None:
            query = query.where(Proposal.expert_id == expert_id)
        if after is not None:
            query = query.where(tuple_(Proposal.created_at, Proposal.id) > after)
        query = query.order_by(Proposal.created_at, Proposal.id).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def has_proposed(self, project_id: uuid.UUID, expert_id: uuid.UUID) -> bool:
        """Whether the expert ever proposed on the project, whatever became of it."""
        query = select(Proposal.id).where(
            Proposal.project_id == project_id, Proposal.expert_id == expert_id
        )
        return (await self.session.execute(query.limit(1))).first() is not None

    async def decline_others(
        self, project_id: uuid.UUID, accepted_id: uuid.UUID, now: dt.datetime
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Decline every other pending proposal; returns their (id, expert_id)."""
        result = await self.session.execute(
            update(Proposal)
            .where(
                Proposal.project_id == project_id,
                Proposal.id != accepted_id,
                Proposal.status == ProposalStatus.pending,
            )
            .values(status=ProposalStatus.declined, decided_at=now, updated_at=now)
            .returning(Proposal.id, Proposal.expert_id)
        )
        return [(row[0], row[1]) for row in result.all()]
