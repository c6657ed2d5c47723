"""Steps the marketplace tests take through the public HTTP API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
from httpx import AsyncClient

from tests.helpers import login, promote_to_admin, register

Headers = dict[str, str]


def libpq(database_url: str) -> str:
    return database_url.replace("+psycopg", "")


def query(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        cursor = conn.execute(sql, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description is not None else []


async def admin(client: AsyncClient, database_url: str) -> Headers:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    account = await register(client, email=email, name="Admin")
    promote_to_admin(database_url, account["id"])
    return await login(client, email)


def application_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "headline": "Solidity auditor and DeFi engineer",
        "bio": "Ten years of smart contract work: audits of lending protocols and AMMs.",
        "skills": ["solidity", "smart-contract-audit"],
        "chains": ["ethereum", "arbitrum"],
        "hourly_rate": {"amount": "150.00", "currency": "USD"},
        "years_experience": 6,
        "portfolio_links": ["https://github.com/example/audits"],
    }
    body.update(overrides)
    return body


async def approved_expert(
    client: AsyncClient, admin_headers: Headers, *, name: str = "Expert", **application: Any
) -> tuple[dict[str, Any], Headers]:
    """Register, apply and have an admin approve; returns (account, bearer headers)."""
    email = f"expert-{uuid.uuid4().hex[:8]}@example.com"
    account = await register(client, email=email, role="expert", name=name)
    headers = await login(client, email)
    applied = await client.post(
        "/api/v2/expert-applications", json=application_body(**application), headers=headers
    )
    assert applied.status_code == 201, applied.text
    decided = await client.post(
        f"/api/v2/admin/expert-applications/{applied.json()['id']}/decision",
        json={"decision": "approve", "note": "Welcome"},
        headers=admin_headers,
    )
    assert decided.status_code == 200, decided.text
    return account, headers


async def client_account(
    client: AsyncClient, name: str = "Client"
) -> tuple[dict[str, Any], Headers]:
    email = f"client-{uuid.uuid4().hex[:8]}@example.com"
    account = await register(client, email=email, name=name)
    return account, await login(client, email)


def project_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Audit our lending protocol",
        "description": "Four contracts, about 1,200 lines of Solidity, Foundry test suite.",
        "chains": ["ethereum"],
        "skills": ["solidity", "smart-contract-audit"],
        "budget": {"min": "5000.00", "max": "12000.00", "currency": "USD"},
        "deadline": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
        "visibility": "public",
    }
    body.update(overrides)
    return body


def proposal_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cover_letter": "I have audited three lending protocols with similar designs.",
        "price": {"amount": "9000.00", "currency": "USD"},
        "estimated_days": 14,
    }
    body.update(overrides)
    return body


async def notifications(client: AsyncClient, headers: Headers) -> list[dict[str, Any]]:
    response = await client.get("/api/v2/notifications", params={"limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def kinds(items: list[dict[str, Any]]) -> list[str]:
    return [item["kind"] for item in items]


MARKETPLACE_TABLES = (
    "accounts",
    "expert_applications",
    "expert_profiles",
    "projects",
    "project_invitations",
    "proposals",
    "reviews",
    "notifications",
    "audit_log",
    "account_sessions",
)


def snapshot(database_url: str) -> dict[str, list[Any]]:
    """Every row of the marketplace tables, to prove a refused request changed nothing."""
    rows: dict[str, list[Any]] = {}
    for table in MARKETPLACE_TABLES:
        found = query(database_url, f"SELECT to_jsonb(t)::text FROM {table} t")
        rows[table] = sorted(row[0] for row in found)
    return rows
