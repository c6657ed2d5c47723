"""The in-app inbox: newest first, unread filter, mark-read, and nobody else's rows."""

from __future__ import annotations

import uuid

from httpx import AsyncClient

from tests.market import admin, approved_expert, client_account, project_body, proposal_body, query


async def test_inbox_lists_marks_read_and_hides_others(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    _, expert = await approved_expert(client, admin_headers)
    _, owner = await client_account(client)
    project = (await client.post("/api/v2/projects", json=project_body(), headers=owner)).json()
    for _ in range(3):
        bid = await client.post(
            f"/api/v2/projects/{project['id']}/proposals", json=proposal_body(), headers=expert
        )
        await client.post(f"/api/v2/proposals/{bid.json()['id']}/withdraw", headers=expert)

    page = await client.get("/api/v2/notifications", params={"limit": 2}, headers=owner)
    assert page.status_code == 200
    assert [n["kind"] for n in page.json()["data"]] == ["proposal_received"] * 2
    rest = await client.get(
        "/api/v2/notifications",
        params={"limit": 2, "cursor": page.json()["next_cursor"]},
        headers=owner,
    )
    assert len(rest.json()["data"]) == 1
    assert rest.json()["next_cursor"] is None
    newest = page.json()["data"][0]

    read = await client.post(f"/api/v2/notifications/{newest['id']}/read", headers=owner)
    assert read.status_code == 200
    assert read.json()["read_at"] is not None
    again = await client.post(f"/api/v2/notifications/{newest['id']}/read", headers=owner)
    assert again.json()["read_at"] == read.json()["read_at"]
    unread = await client.get("/api/v2/notifications", params={"unread": True}, headers=owner)
    assert newest["id"] not in [n["id"] for n in unread.json()["data"]]
    assert len(unread.json()["data"]) == 2

    foreign = await client.post(f"/api/v2/notifications/{newest['id']}/read", headers=expert)
    missing = await client.post(f"/api/v2/notifications/{uuid.uuid4()}/read", headers=owner)
    assert foreign.status_code == missing.status_code == 404
    assert query(
        database_url, "SELECT read_at IS NULL FROM notifications WHERE id = %s", newest["id"]
    ) == [(False,)]


async def test_invite_only_project_notifies_only_the_invited(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    invited, invited_headers = await approved_expert(client, admin_headers, name="Invited")
    _, bystander = await approved_expert(client, admin_headers, name="Bystander")
    _, owner = await client_account(client)
    created = await client.post(
        "/api/v2/projects",
        json=project_body(visibility="invite_only", invited_experts=[invited["id"]]),
        headers=owner,
    )
    assert created.json()["invited_experts"] == [invited["id"]]

    invited_inbox = await client.get("/api/v2/notifications", headers=invited_headers)
    bystander_inbox = await client.get("/api/v2/notifications", headers=bystander)
    invitations = await client.get(
        "/api/v2/projects", params={"view": "invited"}, headers=invited_headers
    )
    public_list = await client.get("/api/v2/projects", headers=bystander)

    assert invited_inbox.json()["data"][0]["kind"] == "project_invitation"
    assert [n["kind"] for n in bystander_inbox.json()["data"]] == ["application_decided"]
    assert [p["id"] for p in invitations.json()["data"]] == [created.json()["id"]]
    assert public_list.json()["data"] == []
