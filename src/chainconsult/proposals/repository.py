from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.experts import ExpertProfile
from chainconsult.models.projects import Project, Proposal, ProposalStatus

# Built once, with bind parameters: composing the statement from ORM attributes on every call
# showed as about 8 % of a proposal's CPU in a profile (SQLAlchemy caches the compiled SQL,
# not the expression objects). Only the columns a proposal needs, run on the Core connection:
# no Project entity loaded through the ORM (its arrays, the identity map, populate_existing),
# 2-3 % of a proposal's CPU (bench/RESULTS.md, "A proposal in one write statement").
_PROJECT_WITH_STANDING = (
    select(
        Project.id,
        Project.client_id,
        Project.expert_id,
        Project.visibility,
        Project.status,
        Project.budget_currency,
        Project.title,
        select(ExpertProfile.id).where(ExpertProfile.id == bindparam("expert_id")).exists(),
        select(Proposal.id)
        .where(
            Proposal.project_id == Project.id,
            Proposal.expert_id == bindparam("expert_id"),
            Proposal.status.in_((ProposalStatus.pending, ProposalStatus.accepted)),
        )
        .exists(),
    )
    .where(Project.id == bindparam("project_id"))
    .with_for_update(of=Project)
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

INSERTED_PROPOSAL = (
    insert(Proposal)
    .values({name: bindparam(f"proposal_{name}") for name in _NEW_COLUMNS})
    .cte("proposal")
)
"""A new proposal as a CTE, for a statement that also notifies its project's owner
(proposals/service.py); parameters from ``inserted_proposal_parameters``. Every value comes
from Python (the ORM's defaults included), so the caller knows the row without reading it
back."""


def inserted_proposal_parameters(proposal: Proposal) -> dict[str, Any]:
    """``INSERTED_PROPOSAL``'s parameters for a transient ``proposal`` with every column of
    ``_NEW_COLUMNS`` set."""
    return {f"proposal_{name}": getattr(proposal, name) for name in _NEW_COLUMNS}


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

    async def project_with_standing(
        self, project_id: uuid.UUID, expert_id: uuid.UUID
    ) -> tuple[ProposedOn, bool, bool] | None:
        """The project, locked (FOR UPDATE), with whether ``expert_id`` has an expert profile
        and whether they already have an active (pending or accepted) proposal on it; None if
        there is no such project. One statement for the three, on the platform's most
        frequent write, where each statement costs more CPU in the ORM and the driver than
        its SQL does in PostgreSQL.

        Under READ COMMITTED, a statement that waited for the row lock returns the project
        row as the lock holder left it, but its EXISTS subqueries see the snapshot taken
        before the wait: a proposal by the same expert committed meanwhile is missed here,
        and the unique index on active proposals refuses the insert instead (a 409 all the
        same)."""
        connection = await self.session.connection()
        row = (
            await connection.execute(
                _PROJECT_WITH_STANDING, {"project_id": project_id, "expert_id": expert_id}
            )
        ).one_or_none()
        if row is None:
            return None
        return ProposedOn(*row[:7]), bool(row[7]), bool(row[8])

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
