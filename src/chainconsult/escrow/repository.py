"""Queries of the escrow, in one place."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.chain.models import ChainCursor
from chainconsult.models.escrow import Milestone, MilestoneDisputeReason
from chainconsult.models.projects import Proposal, ProposalStatus

RESOLUTION_TASK = "escrow.send_resolution"
"""The name of the task sending the arbiter's resolve (jobs.resolve_dispute)."""


class EscrowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def milestones(self, project_id: uuid.UUID, *, lock: bool = False) -> Sequence[Milestone]:
        query = (
            select(Milestone).where(Milestone.project_id == project_id).order_by(Milestone.position)
        )
        if lock:
            query = query.with_for_update()
        return (await self.session.scalars(query)).all()

    async def milestone(self, milestone_id: uuid.UUID, *, lock: bool = False) -> Milestone | None:
        query = select(Milestone).where(Milestone.id == milestone_id)
        if lock:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def replace_plan(self, project_id: uuid.UUID, milestones: Sequence[Milestone]) -> None:
        await self.session.execute(delete(Milestone).where(Milestone.project_id == project_id))
        # The unique (project, position) index must see the old rows gone first.
        await self.session.flush()
        self.session.add_all(milestones)
        await self.session.flush()

    async def keep_dispute_reason(
        self, *, milestone_id: uuid.UUID, account_id: uuid.UUID, reason: str, details_hash: str
    ) -> None:
        """The party's newest reason replaces its earlier one, never the other party's."""
        values = {"reason": reason, "details_hash": details_hash, "created_at": func.now()}
        await self.session.execute(
            insert(MilestoneDisputeReason)
            .values(milestone_id=milestone_id, account_id=account_id, **values)
            .on_conflict_do_update(index_elements=["milestone_id", "account_id"], set_=values)
        )

    async def dispute_reason(self, milestone_id: uuid.UUID, details_hash: str) -> str | None:
        return await self.session.scalar(
            select(MilestoneDisputeReason.reason)
            .where(
                MilestoneDisputeReason.milestone_id == milestone_id,
                MilestoneDisputeReason.details_hash == details_hash.lower(),
            )
            .limit(1)
        )

    async def accepted_price(self, project_id: uuid.UUID) -> tuple[Decimal, str] | None:
        row = (
            await self.session.execute(
                select(Proposal.price_amount, Proposal.price_currency).where(
                    Proposal.project_id == project_id,
                    Proposal.status == ProposalStatus.accepted,
                )
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def confirmed_block(self, follower: str) -> int | None:
        return await self.session.scalar(
            select(ChainCursor.block_number).where(ChainCursor.follower == follower)
        )

    async def resolution_job_pending(self, milestone_id: uuid.UUID) -> bool:
        """Whether a job sending this milestone's resolution is waiting or running (not yet
        succeeded, failed for good or cancelled)."""
        pending = await self.session.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs "
                "WHERE task_name = :task AND args->>'milestone_id' = :id "
                "AND status IN ('todo', 'doing'))"
            ),
            {"task": RESOLUTION_TASK, "id": str(milestone_id)},
        )
        return bool(pending)
