from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.experts import ExpertProfile
from chainconsult.models.projects import Proposal, ProposalStatus


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

    async def standing(self, project_id: uuid.UUID, expert_id: uuid.UUID) -> tuple[bool, bool]:
        """Whether ``expert_id`` has an expert profile, and whether they already have an
        active (pending or accepted) proposal on the project: one query for both, since a
        proposal is refused on either and each statement costs more than its SQL (the ORM's
        compile, execute and result steps), on the platform's most frequent write."""
        profile = select(ExpertProfile.id).where(ExpertProfile.id == expert_id).exists()
        active = (
            select(Proposal.id)
            .where(
                Proposal.project_id == project_id,
                Proposal.expert_id == expert_id,
                Proposal.status.in_((ProposalStatus.pending, ProposalStatus.accepted)),
            )
            .exists()
        )
        row = (await self.session.execute(select(profile, active))).one()
        return bool(row[0]), bool(row[1])

    async def add(self, proposal: Proposal) -> Proposal:
        self.session.add(proposal)
        await self.session.flush()
        return proposal

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
