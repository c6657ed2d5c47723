"""Routes the database tests mount on the real app: slow and timed-out statements, steady
load, and racing writes on the synthetic tables, each through the same DbSession,
unit_of_work and ParallelReads a domain endpoint uses."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.errors import Conflict, NotFound
from chainconsult.infra.db.parallel import ParallelReads
from chainconsult.infra.db.session import DbSession, statement_timeout
from chainconsult.infra.db.transaction import unit_of_work

router = APIRouter(prefix="/test")


@router.get("/sleep")
async def sleep_in_database(session: DbSession, seconds: float = 0.1) -> dict[str, Any]:
    await session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})
    return {"slept": seconds}


@router.get("/sleep-with-timeout")
async def sleep_past_own_timeout(
    session: DbSession, seconds: float, timeout_ms: int
) -> dict[str, Any]:
    await statement_timeout(session, timeout_ms)
    await session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})
    return {"slept": seconds}


@router.get("/load")
async def steady_load(session: DbSession) -> dict[str, Any]:
    """A typical short request: two statements on one pooled connection."""
    count = (await session.execute(text("SELECT count(*) FROM accounts"))).scalar_one()
    await session.execute(text("SELECT pg_sleep(0.02)"))
    return {"accounts": count}


@router.get("/slow-app")
async def slow_application(request: Request, session: DbSession, seconds: float) -> dict[str, Any]:
    """Slow in Python, then one statement: what an in-flight request at shutdown looks like."""
    state = request.app.state
    state.in_flight = getattr(state, "in_flight", 0) + 1
    try:
        await asyncio.sleep(seconds)
        value = (await session.execute(text("SELECT 1"))).scalar_one()
    finally:
        state.in_flight -= 1
    return {"value": value}


@router.get("/in-flight")
async def in_flight(request: Request) -> dict[str, int]:
    return {"in_flight": getattr(request.app.state, "in_flight", 0)}


async def _accept(session: AsyncSession, proposal_id: int) -> dict[str, Any]:
    proposal = (
        await session.execute(
            text("SELECT project_id FROM dbres_proposals WHERE id = :id"), {"id": proposal_id}
        )
    ).one_or_none()
    if proposal is None:
        raise NotFound("No such proposal.")
    # The row lock serialises accepts of one project; the losers then see it taken.
    status = (
        await session.execute(
            text("SELECT status FROM dbres_projects WHERE id = :id FOR UPDATE"),
            {"id": proposal.project_id},
        )
    ).scalar_one()
    if status != "open":
        raise Conflict("The project has already accepted a proposal.")
    await session.execute(
        text("UPDATE dbres_proposals SET status = 'accepted' WHERE id = :id"), {"id": proposal_id}
    )
    await session.execute(
        text(
            "UPDATE dbres_proposals SET status = 'declined' "
            "WHERE project_id = :project AND id <> :id AND status = 'pending'"
        ),
        {"project": proposal.project_id, "id": proposal_id},
    )
    await session.execute(
        text("UPDATE dbres_projects SET status = 'in_progress' WHERE id = :id"),
        {"id": proposal.project_id},
    )
    return {"accepted": proposal_id}


@router.post("/proposals/{proposal_id}/accept")
async def accept_proposal(proposal_id: int, session: DbSession) -> dict[str, Any]:
    return await unit_of_work(session, lambda s: _accept(s, proposal_id))


QUOTA = 5


async def _claim(session: AsyncSession, account: int) -> dict[str, Any]:
    used = (
        await session.execute(
            text("SELECT count(*) FROM dbres_usage WHERE account = :account"),
            {"account": account},
        )
    ).scalar_one()
    if used >= QUOTA:
        raise Conflict(f"The quota of {QUOTA} is used up.")
    await session.execute(
        text("INSERT INTO dbres_usage (account) VALUES (:account)"), {"account": account}
    )
    return {"used": used + 1}


@router.post("/quota/{account}")
async def claim_quota(account: int, session: DbSession) -> dict[str, Any]:
    """Count-then-insert: only SERIALIZABLE keeps concurrent claims within the quota, at the
    price of serialization failures, which unit_of_work retries."""
    return await unit_of_work(session, lambda s: _claim(s, account), isolation="SERIALIZABLE")


@router.get("/parallel")
async def parallel_page(reads: ParallelReads, delay: float = 0.1) -> dict[str, Any]:
    async def backend(session: AsyncSession) -> int:
        await session.execute(text("SELECT pg_sleep(:d)"), {"d": delay})
        pid: int = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return pid

    async def accounts(session: AsyncSession) -> int:
        await session.execute(text("SELECT pg_sleep(:d)"), {"d": delay})
        count: int = (await session.execute(text("SELECT count(*) FROM accounts"))).scalar_one()
        return count

    first, second, third = await reads.gather(backend, backend, accounts)
    return {
        "pids": [first, second],
        "accounts": third,
        "parallel": reads.last_run_parallel,
    }
