"""Done-when 4 (quotas) and the invariants that must hold under concurrent requests."""

from __future__ import annotations

import asyncio

from httpx import AsyncClient

from tests.helpers import count_rows
from tests.market import (
    admin,
    approved_expert,
    client_account,
    project_body,
    proposal_body,
    query,
)


async def test_free_plan_allows_two_open_projects(client: AsyncClient, database_url: str) -> None:
    _, headers = await client_account(client)
    for _ in range(2):
        created = await client.post("/api/v2/projects", json=project_body(), headers=headers)
        assert created.status_code == 201

    third = await client.post("/api/v2/projects", json=project_body(), headers=headers)

    assert third.status_code == 403
    problem = third.json()
    assert problem["type"].endswith("/quota-exceeded")
    assert (problem["plan"], problem["limit"], problem["open_projects"]) == ("free", 2, 2)
    assert count_rows(database_url, "projects") == 2


async def test_cancelling_frees_a_slot_and_upgrading_raises_the_quota(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    account, headers = await client_account(client)
    first = (await client.post("/api/v2/projects", json=project_body(), headers=headers)).json()
    await client.post("/api/v2/projects", json=project_body(), headers=headers)
    await client.patch(
        f"/api/v2/projects/{first['id']}", json={"status": "cancelled"}, headers=headers
    )
    assert (
        await client.post("/api/v2/projects", json=project_body(), headers=headers)
    ).status_code == 201
    assert (
        await client.post("/api/v2/projects", json=project_body(), headers=headers)
    ).status_code == 403

    upgraded = await client.post(
        f"/api/v2/admin/users/{account['id']}/plan", json={"plan": "pro"}, headers=admin_headers
    )
    assert upgraded.status_code == 200
    statuses = [
        (await client.post("/api/v2/projects", json=project_body(), headers=headers)).status_code
        for _ in range(19)
    ]
    assert statuses == [201] * 18 + [403]  # pro: 20 open

    await client.post(
        f"/api/v2/admin/users/{account['id']}/plan",
        json={"plan": "enterprise"},
        headers=admin_headers,
    )
    more = await client.post("/api/v2/projects", json=project_body(), headers=headers)
    assert more.status_code == 201  # enterprise: unlimited
    assert count_rows(database_url, "projects") == 22


async def test_concurrent_submissions_cannot_overshoot_the_quota(
    client: AsyncClient, database_url: str
) -> None:
    account, headers = await client_account(client)

    responses = await asyncio.gather(
        *(client.post("/api/v2/projects", json=project_body(), headers=headers) for _ in range(6))
    )

    assert sorted(r.status_code for r in responses) == [201, 201, 403, 403, 403, 403]
    open_projects = query(
        database_url, "SELECT count(*) FROM projects WHERE client_id = %s", account["id"]
    )
    assert open_projects == [(2,)]


async def test_concurrent_accepts_of_two_proposals_accept_exactly_one(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    _, e1 = await approved_expert(client, admin_headers, name="E1")
    _, e2 = await approved_expert(client, admin_headers, name="E2")
    _, owner = await client_account(client)
    project = (await client.post("/api/v2/projects", json=project_body(), headers=owner)).json()
    ids = [
        (
            await client.post(
                f"/api/v2/projects/{project['id']}/proposals", json=proposal_body(), headers=h
            )
        ).json()["id"]
        for h in (e1, e2)
    ]

    responses = await asyncio.gather(
        *(client.post(f"/api/v2/proposals/{pid}/accept", headers=owner) for pid in ids)
    )

    assert sorted(r.status_code for r in responses) == [200, 409]
    statuses = query(database_url, "SELECT status FROM proposals ORDER BY status")
    assert statuses == [("accepted",), ("declined",)]


async def test_concurrent_reviews_and_proposals_store_one_each(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    expert, expert_headers = await approved_expert(client, admin_headers)
    _, owner = await client_account(client)
    project = (await client.post("/api/v2/projects", json=project_body(), headers=owner)).json()

    proposals = await asyncio.gather(
        *(
            client.post(
                f"/api/v2/projects/{project['id']}/proposals",
                json=proposal_body(),
                headers=expert_headers,
            )
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in proposals) == [201, 409, 409, 409]

    accepted = next(r for r in proposals if r.status_code == 201).json()
    await client.post(f"/api/v2/proposals/{accepted['id']}/accept", headers=owner)
    await client.post(f"/api/v2/projects/{project['id']}/complete", headers=owner)
    reviews = await asyncio.gather(
        *(
            client.post(
                f"/api/v2/projects/{project['id']}/review",
                json={"rating": rating, "text": "ok"},
                headers=owner,
            )
            for rating in (5, 1, 3)
        )
    )
    assert sorted(r.status_code for r in reviews) == [201, 409, 409]
    stored = query(database_url, "SELECT rating FROM reviews")
    aggregate = query(
        database_url,
        "SELECT rating_count, rating_sum, rating_avg::text FROM expert_profiles WHERE id = %s",
        expert["id"],
    )
    assert aggregate == [(1, stored[0][0], f"{stored[0][0]}.00")]
