"""The cached directory and open project list: every write that changes them is seen by the
very next read in every process (two real server processes on one Redis), and public
directory responses revalidate with ETag and If-None-Match."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.resources import resources_of
from tests.conftest import REDIS_PREFIX
from tests.helpers import serving, statements_sent
from tests.market import (
    Headers,
    admin,
    application_body,
    approved_expert,
    client_account,
    project_body,
    proposal_body,
)
from tests.servers import api_servers

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def get_json(client: AsyncClient, path: str, headers: Headers | None = None) -> Any:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def directory_ids(client: AsyncClient) -> list[str]:
    return [item["id"] for item in (await get_json(client, "/api/v2/experts"))["data"]]


async def open_ids(client: AsyncClient, headers: Headers) -> list[str]:
    page = await get_json(client, "/api/v2/projects?view=open", headers)
    return [item["id"] for item in page["data"]]


async def test_marketplace_writes_are_seen_by_the_next_read_in_every_process(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"{REDIS_PREFIX}-{uuid.uuid4().hex[:8]}",
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        # A loaded test machine must not open the circuit: this test is about the Redis path.
        "REDIS_SOCKET_TIMEOUT": "2000",
    }
    with api_servers(2, env, tmp_path) as urls:
        one, two = (AsyncClient(base_url=url, timeout=15) for url in urls)
        async with one, two:
            admins = await admin(one, database_url)
            _, owner_auth = await client_account(one)
            # Both processes cache the empty directory and open list first.
            for side in (one, two):
                assert await directory_ids(side) == []
                assert await open_ids(side, owner_auth) == []

            # Approved expert: written through one, read through the other.
            expert, expert_auth = await approved_expert(
                one, admins, name="Ada", headline="Solidity auditor"
            )
            assert await directory_ids(two) == [expert["id"]]
            detail = await get_json(two, f"/api/v2/experts/{expert['id']}")
            assert detail["headline"] == "Solidity auditor"
            assert (await get_json(two, "/api/v2/auth/me", expert_auth))["role"] == "expert"

            # Edited profile: a new revision, approved through the second process.
            revision = await two.post(
                "/api/v2/expert-applications",
                json=application_body(headline="Solidity and Vyper auditor"),
                headers=expert_auth,
            )
            assert revision.status_code == 201
            decided = await two.post(
                f"/api/v2/admin/expert-applications/{revision.json()['id']}/decision",
                json={"decision": "approve", "note": "ok"},
                headers=admins,
            )
            assert decided.status_code == 200
            detail = await get_json(one, f"/api/v2/experts/{expert['id']}")
            assert detail["headline"] == "Solidity and Vyper auditor"
            listed = (await get_json(one, "/api/v2/experts"))["data"][0]
            assert listed["headline"] == "Solidity and Vyper auditor"

            # A project: created through one, on the other's open list at once.
            created = await one.post("/api/v2/projects", json=project_body(), headers=owner_auth)
            assert created.status_code == 201
            project_id = created.json()["id"]
            assert await open_ids(two, owner_auth) == [project_id]
            edited = await two.patch(
                f"/api/v2/projects/{project_id}", json={"title": "Audit v2"}, headers=owner_auth
            )
            assert edited.status_code == 200
            page = await get_json(one, "/api/v2/projects?view=open", owner_auth)
            assert page["data"][0]["title"] == "Audit v2"

            # Accepting a proposal takes the project off the open list everywhere.
            proposal = await two.post(
                f"/api/v2/projects/{project_id}/proposals",
                json=proposal_body(),
                headers=expert_auth,
            )
            assert proposal.status_code == 201, proposal.text
            accepted = await one.post(
                f"/api/v2/proposals/{proposal.json()['id']}/accept", headers=owner_auth
            )
            assert accepted.status_code == 200
            assert await open_ids(two, owner_auth) == []

            # New review: the rating shows on the other process's directory at once.
            assert (await two.get(f"/api/v2/experts/{expert['id']}")).json()["rating"]["count"] == 0
            completed = await two.post(
                f"/api/v2/projects/{project_id}/complete", headers=owner_auth
            )
            assert completed.status_code == 200
            reviewed = await two.post(
                f"/api/v2/projects/{project_id}/review",
                json={"rating": 5, "text": "Thorough and fast."},
                headers=owner_auth,
            )
            assert reviewed.status_code == 201, reviewed.text
            detail = await get_json(one, f"/api/v2/experts/{expert['id']}")
            assert detail["rating"]["count"] == 1
            assert [review["text"] for review in detail["recent_reviews"]] == ["Thorough and fast."]
            listed = (await get_json(one, "/api/v2/experts"))["data"][0]
            assert listed["rating"]["count"] == 1

            # A second project, cancelled through the other process.
            second = await two.post("/api/v2/projects", json=project_body(), headers=owner_auth)
            assert await open_ids(one, owner_auth) == [second.json()["id"]]
            cancelled = await one.patch(
                f"/api/v2/projects/{second.json()['id']}",
                json={"status": "cancelled"},
                headers=owner_auth,
            )
            assert cancelled.status_code == 200
            assert await open_ids(two, owner_auth) == []


async def test_directory_revalidates_with_etag_and_if_none_match(
    client: AsyncClient, database_url: str
) -> None:
    admins = await admin(client, database_url)
    expert, _ = await approved_expert(client, admins, name="Ada")
    paths = ["/api/v2/experts", f"/api/v2/experts/{expert['id']}", "/api/v2/experts?skill=solidity"]

    for path in paths:
        first = await client.get(path)
        assert first.status_code == 200
        assert first.headers["cache-control"] == "public, no-cache"
        etag = first.headers["etag"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == etag

    before = (await client.get("/api/v2/experts")).headers["etag"]
    await approved_expert(client, admins, name="Grace")
    after = await client.get("/api/v2/experts", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert len(after.json()["data"]) == 2
    assert after.headers["etag"] != before


async def test_directory_answers_are_the_same_with_and_without_the_cache(
    client: AsyncClient, database_url: str
) -> None:
    admins = await admin(client, database_url)
    expert, _ = await approved_expert(client, admins, name="Ada")

    cold = await client.get(f"/api/v2/experts/{expert['id']}")
    warm = await client.get(f"/api/v2/experts/{expert['id']}")
    missing = await client.get(f"/api/v2/experts/{uuid.uuid4()}")
    bad_cursor = await client.get("/api/v2/experts", params={"cursor": "not-a-cursor"})

    assert cold.json() == warm.json()
    assert cold.json()["hourly_rate"] == {"amount": "150.00", "currency": "USD"}
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert bad_cursor.status_code == 400


async def test_hundred_concurrent_misses_on_one_profile_query_the_database_once(
    settings: Settings, database_url: str
) -> None:
    app = create_app(settings)
    async with serving(app) as client:
        admins = await admin(client, database_url)
        expert, _ = await approved_expert(client, admins, name="Ada")
        # Anonymous readers: a logged-in one's login is read from the database on every
        # request when there is no Redis (docs/decisions/0030), which is not what is counted.
        client.cookies.clear()
        with statements_sent(resources_of(app).engine) as sent:
            responses = await asyncio.gather(
                *(client.get(f"/api/v2/experts/{expert['id']}") for _ in range(100))
            )
    profile_reads = sum(
        1
        for statement, _ in sent
        if statement.lstrip().startswith("SELECT") and "FROM expert_profiles" in statement
    )

    assert {response.status_code for response in responses} == {200}
    assert len({response.content for response in responses}) == 1
    assert profile_reads == 1


async def test_v1_directory_is_derived_from_the_cached_v2_body(
    client: AsyncClient, database_url: str
) -> None:
    admins = await admin(client, database_url)
    expert, _ = await approved_expert(client, admins, name="Ada")
    v2 = (await client.get(f"/api/v2/experts/{expert['id']}")).json()

    first = await client.get(f"/api/v1/experts/{expert['id']}")
    second = await client.get(f"/api/v1/experts/{expert['id']}")

    assert first.status_code == second.status_code == 200
    assert first.headers["api-version"] == "1"
    assert first.json() == second.json()
    assert first.json()["id"] == v2["id"]
    assert first.json() != v2  # the declared v1 changes were applied to the cached body
