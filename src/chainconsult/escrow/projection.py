"""The milestones' chain state, folded from their confirmed events.

A milestone's escrow columns are never edited piecemeal: after any new or reverted event the
milestone is recomputed from every event the ledger (chain_events) still holds for it, in
chain order. Applying twice, undoing a reorganisation and re-applying all converge on the
chain's state by construction."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.escrow.contract import uuid_of
from chainconsult.infra.chain.follower import AppliedEvent
from chainconsult.infra.chain.models import ChainCursor, ChainEvent
from chainconsult.infra.db.session import after_commit
from chainconsult.infra.monitoring.metrics import escrow_events_total
from chainconsult.models.escrow import Milestone, MilestoneStatus
from chainconsult.models.projects import Project
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService

log = structlog.get_logger(__name__)

_CHAIN_COLUMNS = (
    "depositor_address",
    "funded_block",
    "settled_block",
    "payee_units",
    "client_units",
    "platform_fee_units",
    "arbiter_fee_units",
    "dispute_hash",
)

TerminationTimeReader = Callable[[uuid.UUID, int], Awaitable[int]]
"""A project's termination time as the contract holds it (its ``projects`` getter) at a block.
The Deposited event does not carry it; the contract fixes it at the project's first deposit
and makes every later deposit repeat it, so it is the termination time of each deposit."""


def subject_of(name: str, args: Mapping[str, Any]) -> str:
    """The ledger subject of an escrow event: its milestone key."""
    return str(args.get("milestoneId", ""))


def _units(value: Any) -> Decimal:
    return Decimal(int(value))


def _same(address: Any, expected: str | None) -> bool:
    return expected is not None and str(address).lower() == expected.lower()


def fold(
    milestone: Milestone,
    events: Sequence[tuple[str, Mapping[str, Any], int]],
    *,
    termination_time: int | None,
) -> None:
    """Set ``milestone``'s chain columns from its (name, args, block) events in chain order;
    ``termination_time`` is the contract's for the milestone's project (None: no deposit)."""
    milestone.status = MilestoneStatus.draft
    for column in _CHAIN_COLUMNS:
        setattr(milestone, column, None)
    for name, args, block in events:
        if name == "Deposited":
            # Funded only with the terms the platform handed out: another token, payee,
            # amount or termination time (an early one lets the client withdraw at once)
            # under this milestone's key is not this milestone's funding. Reconciliation
            # reports it, the contract holding a deposit the database does not.
            if not (
                _same(args["token"], milestone.token_address)
                and _same(args["payee"], milestone.payout_address)
                and milestone.amount_units is not None
                and _units(args["amount"]) == milestone.amount_units
                and termination_time is not None
                and termination_time == milestone.termination_time
            ):
                log.warning(
                    "escrow_deposit_terms_differ",
                    milestone_id=str(milestone.id),
                    chain_termination_time=termination_time,
                    termination_time=milestone.termination_time,
                )
                continue
            milestone.status = MilestoneStatus.funded
            milestone.depositor_address = str(args["client"])
            milestone.funded_block = block
        elif name == "Disputed":
            milestone.status = MilestoneStatus.disputed
            milestone.dispute_hash = str(args["detailsHash"]).lower()
        elif name == "Released":
            milestone.status = MilestoneStatus.released
            milestone.payee_units = _units(args["payeeAmount"])
            milestone.platform_fee_units = _units(args["platformFee"])
            milestone.settled_block = block
        elif name == "Resolved":
            milestone.status = MilestoneStatus.resolved
            milestone.client_units = _units(args["clientAmount"])
            milestone.payee_units = _units(args["payeeAmount"])
            milestone.platform_fee_units = _units(args["platformFee"])
            milestone.arbiter_fee_units = _units(args["arbiterFee"])
            milestone.settled_block = block
        elif name == "Refunded":
            milestone.status = MilestoneStatus.refunded
            milestone.client_units = _units(args["amount"])
            milestone.settled_block = block


class MilestoneProjection:
    """The escrow follower's handler (infra.chain.EventHandler)."""

    def __init__(self, follower: str, termination_time: TerminationTimeReader) -> None:
        self.follower = follower
        self.termination_time = termination_time

    async def applied(self, session: AsyncSession, events: Sequence[AppliedEvent]) -> None:
        names = [event.name for event in events]

        async def count() -> None:
            for name in names:
                escrow_events_total.labels(event=name).inc()

        # Counted once the step's transaction commits: a killed or retried step counts nothing.
        after_commit(session, count)
        # The newest block of the batch is confirmed and holds every deposit folded now.
        await self._refold(session, events, block=max(e.block_number for e in events))

    async def reverted(self, session: AsyncSession, events: Sequence[AppliedEvent]) -> None:
        log.warning("escrow_events_reorganised_away", count=len(events))
        # The cursor has moved back to the newest block still on the chain: every deposit
        # left in the ledger is at or below it.
        block = await session.scalar(
            select(ChainCursor.block_number).where(ChainCursor.follower == self.follower)
        )
        await self._refold(session, events, block=block if block is not None else -1)

    async def _refold(
        self, session: AsyncSession, events: Sequence[AppliedEvent], *, block: int
    ) -> None:
        keys = sorted({event.subject for event in events})
        for key in keys:
            milestone_id = uuid_of(key) if key else None
            if milestone_id is None:
                continue
            milestone = await session.scalar(
                select(Milestone).where(Milestone.id == milestone_id).with_for_update()
            )
            if milestone is None:
                continue
            before = milestone.status
            rows = await session.execute(
                select(ChainEvent.name, ChainEvent.args, ChainEvent.block_number)
                .where(ChainEvent.follower == self.follower, ChainEvent.subject == key)
                .order_by(ChainEvent.block_number, ChainEvent.log_index)
            )
            ledger = [
                (name, args, at)
                for name, args, at in rows
                if uuid_of(str(args.get("projectId", ""))) == milestone.project_id
            ]
            deposited = any(name == "Deposited" for name, _args, _at in ledger)
            fold(
                milestone,
                ledger,
                termination_time=(
                    await self.termination_time(milestone.project_id, block) if deposited else None
                ),
            )
            if milestone.status != before:
                await self._announce(session, milestone)
        await session.flush()

    async def _announce(self, session: AsyncSession, milestone: Milestone) -> None:
        """Tell both parties, in the step's transaction: once per change the chain made."""
        project = await session.get(Project, milestone.project_id)
        if project is None:
            return
        await NotificationService(session).notify(
            recipients=[p for p in (project.client_id, project.expert_id) if p is not None],
            kind=NotificationKind.milestone_changed,
            payload={
                "project_id": str(project.id),
                "project_title": project.title,
                "milestone_id": str(milestone.id),
                "milestone_title": milestone.title,
                "status": str(milestone.status),
            },
        )


def milestone_key(milestone_id: uuid.UUID) -> str:
    """The ledger subject of a milestone (its bytes32 key as 0x-hex)."""
    return "0x" + milestone_id.bytes.rjust(32, b"\0").hex()
