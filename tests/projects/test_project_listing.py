"""Project views: the open list (public and open only), your own, your invitations; edits."""

from __future__ import annotations

from httpx import AsyncClient

from tests.market import admin, approved_expert, client_account, project_body


async def test_views_show_the_right_projects(client: AsyncClient, database_url: str) -> None:
    admin_headers = await admin(client, database_url)
    expert, expert_headers = await approved_expert(client, admin_headers)
    owner, owner_headers = await client_account(client)
    await client.post(
        f"/api/v2/admin/users/{owner['id']}/plan", json={"plan": "pro"}, headers=admin_headers
    )
    rust = (
        await client.post(
            "/api/v2/projects",
            json=project_body(title="Solana program in Rust", skills=["rust"], chains=["solana"]),
            headers=owner_headers,
        )
    ).json()
    audit = (
        await client.post("/api/v2/projects", json=project_body(), headers=owner_headers)
    ).json()
    private = (
        await client.post(
            "/api/v2/projects",
            json=project_body(visibility="invite_only", invited_experts=[expert["id"]]),
            headers=owner_headers,
        )
    ).json()
    cancelled = (
        await client.post("/api/v2/projects", json=project_body(), headers=owner_headers)
    ).json()
    await client.patch(
        f"/api/v2/projects/{cancelled['id']}",
        json={"status": "cancelled"},
        headers=owner_headers,
    )

    async def ids(headers: dict[str, str], **params: object) -> list[str]:
        response = await client.get("/api/v2/projects", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["data"]]

    assert await ids(expert_headers) == [audit["id"], rust["id"]]
    assert await ids(expert_headers, skill="rust") == [rust["id"]]
    assert await ids(expert_headers, chain="ethereum") == [audit["id"]]
    assert await ids(expert_headers, view="invited") == [private["id"]]
    assert await ids(owner_headers, view="mine") == [
        cancelled["id"],
        private["id"],
        audit["id"],
        rust["id"],
    ]
    mine = await client.get("/api/v2/projects", params={"view": "mine"}, headers=owner_headers)
    lists = {p["id"]: p["invited_experts"] for p in mine.json()["data"]}
    assert lists[private["id"]] == [expert["id"]]
    assert lists[rust["id"]] == []

    first = await client.get("/api/v2/projects", params={"limit": 1}, headers=expert_headers)
    second = await client.get(
        "/api/v2/projects",
        params={"limit": 1, "cursor": first.json()["next_cursor"]},
        headers=expert_headers,
    )
    assert [p["id"] for p in first.json()["data"] + second.json()["data"]] == [
        audit["id"],
        rust["id"],
    ]
    assert second.json()["next_cursor"] is None


async def test_owner_edits_an_open_project(client: AsyncClient) -> None:
    _, headers = await client_account(client)
    project = (await client.post("/api/v2/projects", json=project_body(), headers=headers)).json()

    edited = await client.patch(
        f"/api/v2/projects/{project['id']}",
        json={
            "title": "Audit our lending protocol, v2",
            "budget": {"min": "8000.00", "max": "15000.00", "currency": "EUR"},
            "skills": ["solidity"],
        },
        headers=headers,
    )

    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["title"] == "Audit our lending protocol, v2"
    assert body["budget"] == {"min": "8000.00", "max": "15000.00", "currency": "EUR"}
    assert body["skills"] == ["solidity"]
    assert body["description"] == project["description"]
    again = await client.get(f"/api/v2/projects/{project['id']}", headers=headers)
    assert again.json() == body
