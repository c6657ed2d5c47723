"""GET /api/v2/admin/jobs: what operators see of the job queue."""

from __future__ import annotations

from httpx import AsyncClient
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.infra.jobs import JobResources, defer
from tests.helpers import login, promote_to_admin, register
from tests.infra.jobs.conftest import drain
from tests.infra.jobs.tasks import record, refused


async def test_admins_see_counts_oldest_wait_and_recent_failures(
    client: AsyncClient,
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
) -> None:
    # Queues a welcome email and an address verification.
    admin = await register(client, email="ops@example.com")
    promote_to_admin(database_url, admin["id"])
    headers = await login(client, "ops@example.com")
    async with sessionmaker() as session, session.begin():
        await defer(session, refused, label="ghost@example.com")
    await drain(job_resources, queues=["default"])  # the two emails and the refusal run
    async with sessionmaker() as session, session.begin():
        for n in range(3):
            await defer(session, record, label=f"later-{n}")

    response = await client.get("/api/v2/admin/jobs", headers=headers)

    assert response.status_code == 200
    body = response.json()
    queues = {queue["name"]: queue for queue in body["queues"]}
    assert set(queues) == {"critical", "default", "low"}
    assert queues["default"]["counts"]["succeeded"] == 2
    assert queues["default"]["counts"]["failed"] == 1
    assert queues["low"]["counts"]["todo"] == 3
    assert queues["low"]["oldest_waiting_seconds"] > 0
    assert queues["default"]["oldest_waiting_seconds"] is None
    assert queues["critical"]["counts"] == dict.fromkeys(
        ["todo", "doing", "succeeded", "failed", "cancelled", "aborted"], 0
    )
    [failure] = body["recent_failures"]
    assert failure["task"] == "tests.refused"
    assert failure["will_retry"] is False
    assert "PermanentJobError: recipient ghost@example.com does not exist" in failure["error"]
    depth = REGISTRY.get_sample_value("chainconsult_jobs_queue_depth", {"queue": "low"})
    assert depth == 3


async def test_the_jobs_overview_is_for_admins_only(client: AsyncClient) -> None:
    assert (await client.get("/api/v2/admin/jobs")).status_code == 401
    await register(client, email="someone@example.com")
    headers = await login(client, "someone@example.com")

    forbidden = await client.get("/api/v2/admin/jobs", headers=headers)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == "application/problem+json"
