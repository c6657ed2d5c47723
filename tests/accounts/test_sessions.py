"""Sessions: listed with the current one marked, ended one at a time, all but the current one,
or all of them by an admin; an ended session's token is refused at once by every server
process, with Redis and without. Two app instances on one database stand for two processes
(each has its own in-process cache)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from httpx import AsyncClient

from chainconsult.app import create_app
from tests.conftest import make_settings
from tests.helpers import PASSWORD, promote_to_admin, register, serving
from tests.market import query

Headers = dict[str, str]


@pytest.fixture(params=["without-redis", "with-redis"])
async def two_processes(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    redis = request.getfixturevalue("redis_url") if request.param == "with-redis" else None
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                serving(create_app(make_settings(database_url, tmp_path / name, REDIS_URL=redis)))
            )
            for name in ("a", "b")
        ]
        yield clients[0], clients[1]


async def _log_in(client: AsyncClient, email: str, agent: str) -> tuple[Headers, str]:
    """Bearer headers and the session id of a new login from ``agent``."""
    answer = await client.post(
        "/api/v2/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"User-Agent": agent},
    )
    assert answer.status_code == 200, answer.text
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    current = await client.get("/api/v2/auth/sessions", headers=headers)
    [session_id] = [s["id"] for s in current.json() if s["current"]]
    return headers, session_id


async def _status(client: AsyncClient, headers: Headers) -> int:
    return (await client.get("/api/v2/auth/me", headers=headers)).status_code


async def test_sessions_are_listed_with_the_current_one_marked(
    two_processes: tuple[AsyncClient, AsyncClient], database_url: str
) -> None:
    a, b = two_processes
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    await register(a, email=email)
    laptop, laptop_id = await _log_in(a, email, "Laptop browser")
    _, phone_id = await _log_in(b, email, "Phone app")

    listed = await b.get("/api/v2/auth/sessions", headers=laptop)
    assert listed.status_code == 200
    by_id = {s["id"]: s for s in listed.json()}
    assert set(by_id) == {laptop_id, phone_id}
    assert by_id[laptop_id]["current"] is True
    assert by_id[phone_id]["current"] is False
    assert by_id[phone_id]["user_agent"] == "Phone app"
    assert by_id[laptop_id]["ip"] == "127.0.0.1"
    assert set(by_id[laptop_id]) == {
        "id",
        "created_at",
        "last_seen_at",
        "ip",
        "user_agent",
        "current",
    }
    # Using a session records when it was last seen.
    assert by_id[laptop_id]["last_seen_at"] is not None
    [[seen]] = query(
        database_url, "SELECT last_seen_at FROM account_sessions WHERE id = %s", phone_id
    )
    assert seen is not None


async def test_an_ended_session_is_refused_by_every_process_at_once(
    two_processes: tuple[AsyncClient, AsyncClient],
) -> None:
    a, b = two_processes
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    await register(a, email=email)
    laptop, _ = await _log_in(a, email, "Laptop")
    phone, phone_id = await _log_in(a, email, "Phone")
    tablet, _ = await _log_in(a, email, "Tablet")
    # Both processes have resolved every token: whatever they cache, they hold.
    for client in (a, b):
        for headers in (laptop, phone, tablet):
            assert await _status(client, headers) == 200

    ended = await a.delete(f"/api/v2/auth/sessions/{phone_id}", headers=laptop)
    assert ended.status_code == 204
    assert await _status(b, phone) == 401
    assert await _status(a, phone) == 401
    assert await _status(b, laptop) == 200

    others = await b.post("/api/v2/auth/sessions/end-others", headers=laptop)
    assert others.status_code == 204
    assert await _status(a, tablet) == 401
    assert await _status(a, laptop) == 200
    listed = await a.get("/api/v2/auth/sessions", headers=laptop)
    assert [s["current"] for s in listed.json()] == [True]


async def test_someone_elses_session_cannot_be_ended(
    two_processes: tuple[AsyncClient, AsyncClient],
) -> None:
    a, _ = two_processes
    mine, theirs = (f"{who}-{uuid.uuid4().hex[:8]}@example.com" for who in ("ada", "eve"))
    await register(a, email=mine)
    await register(a, email=theirs)
    my_headers, _ = await _log_in(a, mine, "Laptop")
    their_headers, their_id = await _log_in(a, theirs, "Laptop")

    refused = await a.delete(f"/api/v2/auth/sessions/{their_id}", headers=my_headers)
    assert refused.status_code == 404
    assert refused.json()["type"].endswith("/not-found")
    assert await _status(a, their_headers) == 200


async def test_an_admin_ends_every_session_of_an_account(
    two_processes: tuple[AsyncClient, AsyncClient], database_url: str
) -> None:
    a, b = two_processes
    user, boss = (f"{who}-{uuid.uuid4().hex[:8]}@example.com" for who in ("ada", "boss"))
    account = await register(a, email=user)
    admin_account = await register(a, email=boss)
    promote_to_admin(database_url, admin_account["id"])
    admin, _ = await _log_in(a, boss, "Admin desk")
    first, _ = await _log_in(a, user, "Laptop")
    second, _ = await _log_in(b, user, "Phone")
    assert await _status(b, first) == 200

    path = f"/api/v2/admin/users/{account['id']}/sessions/end"
    assert (await a.post(path, headers=first)).status_code == 403
    assert (await a.post(path, headers=admin)).status_code == 204
    assert await _status(b, first) == 401
    assert await _status(b, second) == 401
    assert await _status(a, admin) == 200
    missing = await a.post(f"/api/v2/admin/users/{uuid.uuid4()}/sessions/end", headers=admin)
    assert missing.status_code == 404
