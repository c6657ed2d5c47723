"""Accepting proposals under concurrency (database resilience, done-when 1): 50 accepts of
different proposals on one project at once leave exactly one accepted, the rest 409, no 500;
a serialization failure forced on a real accept is retried, succeeds and is counted."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psycopg
import pytest
from httpx import AsyncClient
from prometheus_client import REGISTRY

from chainconsult.infra.security.tokens import new_login_token, token_digest
from tests.market import Headers, client_account, libpq, project_body, proposal_body, query


def retries() -> float:
    return REGISTRY.get_sample_value("chainconsult_db_transaction_retries_total") or 0.0


def approved_experts(database_url: str, count: int) -> list[Headers]:
    """Approved experts with a live login each, written straight to the tables: the test is
    about accepting, and 50 argon2 registrations would only make it slow."""
    headers: list[Headers] = []
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        for number in range(count):
            expert_id = uuid.uuid4()
            token = new_login_token()
            conn.execute(
                "INSERT INTO accounts (id, email, password_hash, display_name, role, plan, "
                "is_active) VALUES (%s, %s, 'x', %s, 'expert', 'free', true)",
                (expert_id, f"bulk-{expert_id.hex}@example.com", f"Expert {number}"),
            )
            conn.execute(
                "INSERT INTO expert_profiles (id, display_name, headline, bio, skills, chains, "
                "hourly_rate_amount, hourly_rate_currency, years_experience, portfolio_links, "
                "approved_at, rating_avg, rating_count, rating_sum) VALUES (%s, %s, "
                "'Auditor', 'Audits.', '{solidity}', '{ethereum}', 100, 'USD', 3, '{}', now(), "
                "0, 0, 0)",
                (expert_id, f"Expert {number}"),
            )
            conn.execute(
                "INSERT INTO account_sessions (id, account_id, token_hash, expires_at) "
                "VALUES (%s, %s, %s, now() + interval '1 hour')",
                (uuid.uuid4(), expert_id, token_digest(token)),
            )
            headers.append({"Authorization": f"Bearer {token}"})
    return headers


async def project_with_proposals(
    client: AsyncClient, database_url: str, count: int
) -> tuple[dict[str, Any], Headers, list[str]]:
    _, owner = await client_account(client)
    created = await client.post("/api/v2/projects", json=project_body(), headers=owner)
    assert created.status_code == 201, created.text
    project = created.json()
    proposals = await asyncio.gather(
        *(
            client.post(
                f"/api/v2/projects/{project['id']}/proposals", json=proposal_body(), headers=h
            )
            for h in approved_experts(database_url, count)
        )
    )
    assert [p.status_code for p in proposals] == [201] * count
    return project, owner, [p.json()["id"] for p in proposals]


@pytest.mark.slow
async def test_fifty_concurrent_accepts_on_one_project_accept_exactly_one(
    client: AsyncClient, database_url: str
) -> None:
    project, owner, proposal_ids = await project_with_proposals(client, database_url, 50)
    before = retries()

    responses = await asyncio.gather(
        *(client.post(f"/api/v2/proposals/{pid}/accept", headers=owner) for pid in proposal_ids)
    )

    assert sorted(r.status_code for r in responses) == [200] + [409] * 49
    for response in responses:
        if response.status_code == 409:
            assert response.headers["content-type"] == "application/problem+json"
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert query(
        database_url, "SELECT status, count(*) FROM proposals GROUP BY status ORDER BY status"
    ) == [("accepted", 1), ("declined", 49)]
    assert query(
        database_url, "SELECT status, expert_id::text FROM projects WHERE id = %s", project["id"]
    ) == [("in_progress", winner["expert_id"])]
    # Accepts that read the project before the winner committed hit a serialization failure
    # at the row lock and ran again against the new state (where they answer 409).
    assert retries() > before


async def _wait_until_blocked_on_a_lock(database_url: str) -> None:
    deadline = time.monotonic() + 10
    while not query(
        database_url,
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'chainconsult' AND wait_event_type = 'Lock'",
    ):
        assert time.monotonic() < deadline, "the accept never waited for the project's lock"
        await asyncio.sleep(0.02)


async def test_forced_serialization_failure_on_accept_is_retried_and_succeeds(
    client: AsyncClient, database_url: str
) -> None:
    """A concurrent edit of the project commits while the accept waits for the project's row
    lock: the accept's snapshot is stale, PostgreSQL refuses the lock with 40001, and the
    unit of work runs the accept again, which now succeeds."""
    project, owner, (proposal_id,) = await project_with_proposals(client, database_url, 1)
    before = retries()
    editor = await psycopg.AsyncConnection.connect(libpq(database_url))
    try:
        await editor.execute(
            "UPDATE projects SET description = description || ' Scope extended.' WHERE id = %s",
            (project["id"],),
        )
        accept = asyncio.create_task(
            client.post(f"/api/v2/proposals/{proposal_id}/accept", headers=owner)
        )
        await _wait_until_blocked_on_a_lock(database_url)
        await editor.commit()
        response = await accept
    finally:
        await editor.close()

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    assert retries() == before + 1
    assert query(
        database_url, "SELECT status, description FROM projects WHERE id = %s", project["id"]
    ) == [("in_progress", project["description"] + " Scope extended.")]
