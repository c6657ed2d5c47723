"""business_events_total counts an event once its transaction commits, and never a refused one."""

from __future__ import annotations

from httpx import AsyncClient

from chainconsult.infra.monitoring.metrics import business_events_total
from tests.market import admin, approved_expert, client_account, project_body, proposal_body


def counts() -> dict[str, float]:
    return {
        sample.labels["event"]: sample.value
        for metric in business_events_total.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


async def test_each_marketplace_step_counts_its_event_once(
    client: AsyncClient, database_url: str
) -> None:
    before = counts()
    admin_headers = await admin(client, database_url)
    _, expert = await approved_expert(client, admin_headers)
    _, owner = await client_account(client)
    project = (await client.post("/api/v2/projects", json=project_body(), headers=owner)).json()
    bid = await client.post(
        f"/api/v2/projects/{project['id']}/proposals", json=proposal_body(), headers=expert
    )
    duplicate = await client.post(
        f"/api/v2/projects/{project['id']}/proposals", json=proposal_body(), headers=expert
    )
    assert duplicate.status_code == 409
    await client.post(f"/api/v2/proposals/{bid.json()['id']}/accept", headers=owner)
    await client.post(f"/api/v2/projects/{project['id']}/complete", headers=owner)

    after = counts()
    delta = {event: after.get(event, 0) - before.get(event, 0) for event in after}
    assert delta == {
        "user_registered": 3,
        "expert_application_submitted": 1,
        "expert_approved": 1,
        "project_submitted": 1,
        "proposal_submitted": 1,
        "proposal_accepted": 1,
        "project_completed": 1,
    }
