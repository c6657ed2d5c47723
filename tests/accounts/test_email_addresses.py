"""One normal form for email addresses wherever one is stored or compared: registration,
login, the login throttle's keys and create-admin."""

from __future__ import annotations

import asyncio
import unicodedata
from pathlib import Path

from httpx import AsyncClient

from tests.cli_runner import run_cli
from tests.conftest import make_settings
from tests.edge_support import app_client
from tests.helpers import PASSWORD, register

PUNYCODE = "user@xn--exmple-cua.com"
UNICODE = "user@exämple.com"


async def test_login_with_the_punycode_address_the_account_registered_with(
    client: AsyncClient,
) -> None:
    account = await register(client, email=PUNYCODE)

    logins = {
        typed: await client.post("/api/v2/auth/login", json={"email": typed, "password": PASSWORD})
        for typed in (
            PUNYCODE,
            UNICODE,
            "USER@EXÄMPLE.COM",
            unicodedata.normalize("NFD", UNICODE),  # "a" and a combining diaeresis
            f"  {PUNYCODE} ",
        )
    }

    assert account["email"] == UNICODE
    assert {typed: r.status_code for typed, r in logins.items()} == dict.fromkeys(logins, 200)


async def test_registering_the_unicode_form_of_a_taken_punycode_address_is_409(
    client: AsyncClient,
) -> None:
    await register(client, email=PUNYCODE)

    again = await client.post(
        "/api/v2/auth/register",
        json={"email": UNICODE.upper(), "password": PASSWORD, "display_name": "Again"},
    )

    assert again.status_code == 409


async def test_every_spelling_of_an_address_counts_against_one_login_throttle(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        LOGIN_THROTTLE_FREE_FAILURES=1,
        LOGIN_THROTTLE_LOCKOUT_FAILURES=2,
    )
    async with app_client(settings) as client:
        await register(client, email=PUNYCODE)
        first = await client.post(
            "/api/v2/auth/login", json={"email": PUNYCODE, "password": "wrong password"}
        )
        other_spelling = await client.post(
            "/api/v2/auth/login", json={"email": UNICODE.upper(), "password": PASSWORD}
        )

    assert first.status_code == 401
    # One free failure for the address, whichever way it is written: the next must wait.
    assert other_spelling.status_code == 429


async def test_login_with_a_malformed_address_is_422_naming_the_field(
    client: AsyncClient,
) -> None:
    response = await client.post(
        "/api/v2/auth/login", json={"email": "not-an-address", "password": PASSWORD}
    )

    assert response.status_code == 422
    assert [error["pointer"] for error in response.json()["errors"]] == ["#/email"]


async def test_create_admin_stores_the_address_as_registration_does(
    client: AsyncClient, database_url: str, tmp_path: Path
) -> None:
    # The command runs its own event loop, which cannot nest in the test's.
    created = await asyncio.to_thread(
        run_cli,
        "create-admin",
        "Ops@XN--EXMPLE-CUA.COM",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        env={"DATABASE_URL": database_url, "SECRET_KEY": "k" * 40},
        cwd=tmp_path,
    )
    duplicate = await client.post(
        "/api/v2/auth/register",
        json={"email": "ops@exämple.com", "password": PASSWORD, "display_name": "Ops"},
    )
    login = await client.post(
        "/api/v2/auth/login", json={"email": "ops@xn--exmple-cua.com", "password": PASSWORD}
    )
    me = await client.get(
        "/api/v2/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )

    assert created.returncode == 0, created.stderr
    assert "created admin Ops@exämple.com" in created.stdout
    assert duplicate.status_code == 409
    assert me.json()["role"] == "admin"
