"""A client, an expert who proposed, and their thread, reached through the public API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient

from tests.market import (
    Headers,
    admin,
    approved_expert,
    client_account,
    project_body,
    proposal_body,
)


@dataclass
class Thread:
    id: str
    project_id: str
    client: dict[str, Any]
    client_headers: Headers
    expert: dict[str, Any]
    expert_headers: Headers
    admin_headers: Headers


async def proposed_thread(client: AsyncClient, database_url: str) -> Thread:
    """An expert proposes on a client's project, then the client opens their thread."""
    admin_headers = await admin(client, database_url)
    expert, expert_headers = await approved_expert(client, admin_headers, name="Ada Expert")
    owner, owner_headers = await client_account(client, name="Carl Client")
    project = await client.post("/api/v2/projects", json=project_body(), headers=owner_headers)
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    proposed = await client.post(
        f"/api/v2/projects/{project_id}/proposals", json=proposal_body(), headers=expert_headers
    )
    assert proposed.status_code == 201, proposed.text
    opened = await client.post(
        "/api/v2/conversations",
        json={"project_id": project_id, "expert_id": expert["id"]},
        headers=owner_headers,
    )
    assert opened.status_code == 201, opened.text
    return Thread(
        id=opened.json()["id"],
        project_id=project_id,
        client=owner,
        client_headers=owner_headers,
        expert=expert,
        expert_headers=expert_headers,
        admin_headers=admin_headers,
    )


async def say(client: AsyncClient, thread: Thread, headers: Headers, body: str) -> dict[str, Any]:
    posted = await client.post(
        f"/api/v2/conversations/{thread.id}/messages", json={"body": body}, headers=headers
    )
    assert posted.status_code == 201, posted.text
    message: dict[str, Any] = posted.json()
    return message
