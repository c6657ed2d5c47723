"""The audit log: auth events, vetting, plan changes, cancellations; admin-only listing."""

from __future__ import annotations

from httpx import AsyncClient

from tests.helpers import PASSWORD, login, register
from tests.market import admin, application_body, client_account, project_body


async def entries(client: AsyncClient, headers: dict[str, str], **params: str) -> list[dict]:  # type: ignore[type-arg]
    response = await client.get("/api/v2/admin/audit-log", params=params, headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict] = response.json()["data"]  # type: ignore[type-arg]
    return data


async def test_auth_events_are_recorded_with_ip_and_user_agent(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    client.headers["User-Agent"] = "AuditTest/1.0"
    account = await register(client, email="audited@example.com")
    failed = await client.post(
        "/api/v2/auth/login", json={"email": "audited@example.com", "password": "wrong one!"}
    )
    assert failed.status_code == 401
    unknown = await client.post(
        "/api/v2/auth/login", json={"email": "nobody@example.com", "password": "wrong one!"}
    )
    assert unknown.status_code == 401
    headers = await login(client, "audited@example.com", PASSWORD)
    client.cookies.clear()
    await client.post("/api/v2/auth/logout", headers=headers)

    mine = await entries(client, admin_headers, resource_id=account["id"])
    assert [e["action"] for e in mine] == [
        "auth.logout",
        "auth.login",
        "auth.login_failed",
        "auth.registered",
    ]
    assert {(e["ip"], e["user_agent"]) for e in mine} == {("127.0.0.1", "AuditTest/1.0")}
    assert mine[0]["actor_id"] == account["id"]
    assert mine[2]["actor_id"] is None  # a failed login has no authenticated actor
    failures = await entries(client, admin_headers, action="auth.login_failed")
    assert len(failures) == 2
    assert all("email" not in e["details"] for e in failures)


async def test_vetting_plan_and_cancellation_are_recorded_and_filterable(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    candidate = await register(client, role="expert")
    candidate_headers = await login(client, candidate["email"])
    application = await client.post(
        "/api/v2/expert-applications", json=application_body(), headers=candidate_headers
    )
    await client.post(
        f"/api/v2/admin/expert-applications/{application.json()['id']}/decision",
        json={"decision": "reject", "note": "thin portfolio"},
        headers=admin_headers,
    )
    owner, owner_headers = await client_account(client)
    await client.post(
        f"/api/v2/admin/users/{owner['id']}/plan", json={"plan": "pro"}, headers=admin_headers
    )
    project = (
        await client.post("/api/v2/projects", json=project_body(), headers=owner_headers)
    ).json()
    await client.patch(
        f"/api/v2/projects/{project['id']}", json={"status": "cancelled"}, headers=owner_headers
    )

    rejected = await entries(client, admin_headers, action="expert_application.rejected")
    plan = await entries(client, admin_headers, action="plan.changed")
    cancelled = await entries(client, admin_headers, resource_type="project")
    assert rejected[0]["resource_id"] == application.json()["id"]
    assert plan[0]["details"] == {"from": "free", "to": "pro"}
    assert plan[0]["resource_id"] == owner["id"]
    assert cancelled[0]["action"] == "project.cancelled"
    assert cancelled[0]["actor_id"] == owner["id"]
    assert cancelled[0]["details"]["previous_status"] == "open"


async def test_audit_log_pages_and_is_admin_only(client: AsyncClient, database_url: str) -> None:
    admin_headers = await admin(client, database_url)
    _, headers = await client_account(client)
    for _ in range(3):
        await register(client)

    ids: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"action": "auth.registered", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await client.get("/api/v2/admin/audit-log", params=params, headers=admin_headers)
        ids += [e["id"] for e in page.json()["data"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    # The admin, the client and three more registered: five entries over three pages.
    assert len(ids) == len(set(ids)) == 5
    denied = await client.get("/api/v2/admin/audit-log", headers=headers)
    assert denied.status_code == 403
