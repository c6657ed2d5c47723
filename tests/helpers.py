"""Small steps many tests take through the public HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

PASSWORD = "correct horse battery staple"


@asynccontextmanager
async def serving(
    app: FastAPI,
    *,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    base_url: str = "http://testserver",
    root_path: str = "",
    **client_options: Any,
) -> AsyncIterator[AsyncClient]:
    """A client of ``app`` (as 127.0.0.1 by default), its lifespan started before and ended after.

    ``client`` is the caller's address and ``root_path`` the ASGI root path the app sees;
    ``client_options`` (headers, timeout...) go to the ``AsyncClient``.
    """
    async with LifespanManager(app) as manager:
        transport = ASGITransport(app=manager.app, client=client, root_path=root_path)
        async with AsyncClient(transport=transport, base_url=base_url, **client_options) as http:
            yield http


@contextmanager
def statements_sent(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement ``engine`` sends while the block runs, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def register(
    client: AsyncClient, *, email: str | None = None, role: str = "client", name: str = "Test User"
) -> dict[str, Any]:
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    response = await client.post(
        "/api/v2/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": name, "role": role},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client: AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in and return bearer headers."""
    response = await client.post("/api/v2/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def promote_to_admin(database_url: str, account_id: str) -> None:
    """What `chainconsult create-admin` does for an existing account."""
    import psycopg

    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("UPDATE accounts SET role = 'admin' WHERE id = %s", (account_id,))


def count_rows(database_url: str, table: str) -> int:
    import psycopg

    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()  # type: ignore[arg-type]
        assert row is not None
        return int(row[0])
