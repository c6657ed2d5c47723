from __future__ import annotations

import asyncio

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.resources import resources_of
from tests.helpers import PASSWORD, count_rows, login, promote_to_admin, register, serving


async def test_register_login_me_with_bearer_token(client: AsyncClient) -> None:
    account = await register(client, email="Ada@Example.com", name="Ada")
    assert account["role"] == "client"
    assert account["plan"] == "free"

    headers = await login(client, "ada@example.com")
    me = await client.get("/api/v2/auth/me", headers=headers)

    assert me.status_code == 200
    assert me.json()["id"] == account["id"]
    assert me.json()["display_name"] == "Ada"


async def test_login_sets_httponly_session_cookie_that_authenticates(client: AsyncClient) -> None:
    await register(client, email="carol@example.com")
    response = await client.post(
        "/api/v2/auth/login", json={"email": "carol@example.com", "password": PASSWORD}
    )
    set_cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in set_cookies if c.startswith("session="))
    csrf_cookie = next(c for c in set_cookies if c.startswith("csrf_token="))
    assert "HttpOnly" in session_cookie
    assert "samesite=lax" in session_cookie.lower()
    assert "HttpOnly" not in csrf_cookie

    me = await client.get("/api/v2/auth/me")  # the client kept the cookies

    assert me.status_code == 200
    assert me.json()["email"] == "carol@example.com"


async def test_cookie_authenticated_write_needs_the_csrf_header(client: AsyncClient) -> None:
    await register(client, email="dave@example.com")
    await client.post(
        "/api/v2/auth/login", json={"email": "dave@example.com", "password": PASSWORD}
    )

    refused = await client.post("/api/v2/auth/logout")
    assert refused.status_code == 403
    assert refused.json()["reason"] == "csrf"

    forged = await client.post("/api/v2/auth/logout", headers={"X-CSRF-Token": "abc.def"})
    assert forged.status_code == 403

    token = client.cookies["csrf_token"]
    accepted = await client.post("/api/v2/auth/logout", headers={"X-CSRF-Token": token})
    assert accepted.status_code == 204


async def test_logout_revokes_the_token_on_the_server(client: AsyncClient) -> None:
    await register(client, email="erin@example.com")
    headers = await login(client, "erin@example.com")
    client.cookies.clear()

    assert (await client.post("/api/v2/auth/logout", headers=headers)).status_code == 204
    after = await client.get("/api/v2/auth/me", headers=headers)

    assert after.status_code == 401
    assert after.headers["content-type"] == "application/problem+json"


async def test_wrong_password_and_unknown_email_get_the_same_401(client: AsyncClient) -> None:
    await register(client, email="frank@example.com")

    wrong = await client.post(
        "/api/v2/auth/login", json={"email": "frank@example.com", "password": "not the password"}
    )
    unknown = await client.post(
        "/api/v2/auth/login", json={"email": "nobody@example.com", "password": "not the password"}
    )

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.headers["content-type"] == "application/problem+json"


async def test_duplicate_email_in_other_case_is_409(client: AsyncClient, database_url: str) -> None:
    await register(client, email="grace@example.com")

    again = await client.post(
        "/api/v2/auth/register",
        json={"email": "GRACE@example.COM", "password": PASSWORD, "display_name": "G"},
    )

    assert again.status_code == 409
    assert again.json()["status"] == 409
    assert count_rows(database_url, "accounts") == 1


async def test_concurrent_registrations_of_one_email_store_one(
    client: AsyncClient, database_url: str
) -> None:
    body = {"email": "heidi@example.com", "password": PASSWORD, "display_name": "Heidi"}
    responses = await asyncio.gather(
        *(client.post("/api/v2/auth/register", json=body) for _ in range(5))
    )

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    assert count_rows(database_url, "accounts") == 1


async def test_invalid_fields_are_422_with_a_pointer_per_field(
    client: AsyncClient, database_url: str
) -> None:
    response = await client.post(
        "/api/v2/auth/register", json={"email": "not-an-email", "password": "short"}
    )

    assert response.status_code == 422
    problem = response.json()
    assert problem["request_id"] == response.headers["x-request-id"]
    pointers = {error["pointer"] for error in problem["errors"]}
    assert pointers == {"#/email", "#/password", "#/display_name"}
    assert count_rows(database_url, "accounts") == 0


async def test_expert_registration_is_a_candidate_until_approved(client: AsyncClient) -> None:
    account = await register(client, role="expert")

    assert account["role"] == "expert_candidate"


async def test_admin_changes_a_plan_and_others_cannot(
    client: AsyncClient, database_url: str
) -> None:
    admin = await register(client, email="admin@example.com")
    promote_to_admin(database_url, admin["id"])
    user = await register(client, email="ivan@example.com")
    admin_headers = await login(client, "admin@example.com")
    user_headers = await login(client, "ivan@example.com")

    denied = await client.post(
        f"/api/v2/admin/users/{user['id']}/plan", json={"plan": "pro"}, headers=user_headers
    )
    changed = await client.post(
        f"/api/v2/admin/users/{user['id']}/plan", json={"plan": "pro"}, headers=admin_headers
    )
    me = await client.get("/api/v2/auth/me", headers=user_headers)

    assert denied.status_code == 403
    assert changed.status_code == 200
    assert me.json()["plan"] == "pro"


async def test_unknown_plan_is_422(client: AsyncClient, database_url: str) -> None:
    admin = await register(client, email="root@example.com")
    promote_to_admin(database_url, admin["id"])
    headers = await login(client, "root@example.com")

    response = await client.post(
        f"/api/v2/admin/users/{admin['id']}/plan", json={"plan": "platinum"}, headers=headers
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/plan"


async def test_me_is_answered_from_the_resolved_caller_without_a_request_session(
    settings: Settings,
) -> None:
    app = create_app(settings)
    async with serving(app) as http:
        account = await register(http, email="grace@example.com", name="Grace")
        headers = await login(http, "grace@example.com")
        assert (await http.get("/api/v2/auth/me", headers=headers)).status_code == 200

        opened: list[AsyncSession] = []
        sessionmaker = resources_of(app).sessionmaker

        def counting() -> AsyncSession:
            opened.append(sessionmaker())
            return opened[-1]

        resources_of(app).sessionmaker = counting
        try:
            me = await http.get("/api/v2/auth/me", headers=headers)
        finally:
            resources_of(app).sessionmaker = sessionmaker

    assert me.status_code == 200
    # Registration's answer, created_at included, from the cached account state.
    assert me.json() == account
    # The edge's token lookup (answered from the cache) is the only session; the route
    # itself opens none.
    assert len(opened) == 1
