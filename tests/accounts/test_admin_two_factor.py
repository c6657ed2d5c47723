"""ADMIN_REQUIRE_2FA: an admin without two-factor login is refused admin routes and pages
with 403 mfa-required (by default in production), and may still set 2FA up."""

from __future__ import annotations

import uuid
from pathlib import Path

from chainconsult.app import create_app
from tests.accounts.identity_support import TotpClock, turn_on_two_factor
from tests.conftest import make_settings
from tests.helpers import login, promote_to_admin, register, serving
from tests.market import admin, client_account, project_body


def test_production_requires_admin_2fa_unless_told_otherwise(
    tmp_path: Path, database_url: str
) -> None:
    production = make_settings(database_url, tmp_path, CHAINCONSULT_ENV="production")
    assert production.admin_requires_2fa is True
    told = make_settings(
        database_url, tmp_path, CHAINCONSULT_ENV="production", ADMIN_REQUIRE_2FA="false"
    )
    assert told.admin_requires_2fa is False
    development = make_settings(database_url, tmp_path, CHAINCONSULT_ENV="development")
    assert development.admin_requires_2fa is False


async def test_admin_without_2fa_is_refused_admin_routes_in_production(
    database_url: str, tmp_path: Path, totp_clock: TotpClock
) -> None:
    settings = make_settings(database_url, tmp_path, CHAINCONSULT_ENV="production", REDIS_URL=None)
    async with serving(create_app(settings)) as client:
        headers = await admin(client, database_url)

        for path in ("/api/v2/admin/audit-log", "/api/v2/admin/expert-applications"):
            refused = await client.get(path, headers=headers)
            assert refused.status_code == 403, path
            assert refused.json()["type"].endswith("/mfa-required")
        page = await client.get("/admin/users", headers={**headers, "Accept": "text/html"})
        assert page.status_code == 403
        assert "two-factor" in page.text

        # Set-up stays open to them; once on, the same login is let in.
        await turn_on_two_factor(client, headers, totp_clock)
        allowed = await client.get("/api/v2/admin/audit-log", headers=headers)
        assert allowed.status_code == 200
        actions = {entry["action"] for entry in allowed.json()["data"]}
        assert {"auth.mfa_setup_started", "auth.mfa_enabled"} <= actions


async def test_admin_without_2fa_is_let_in_when_not_required(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, ADMIN_REQUIRE_2FA="false", REDIS_URL=None)
    async with serving(create_app(settings)) as client:
        headers = await admin(client, database_url)
        assert (await client.get("/api/v2/admin/audit-log", headers=headers)).status_code == 200


async def test_admin_without_2fa_has_no_admin_powers_anywhere_in_production(
    database_url: str, tmp_path: Path, totp_clock: TotpClock
) -> None:
    """Not only the admin routes: seeing an invite-only project (like reading any thread or
    escrow) is an admin power too, and needs the second factor as well."""
    settings = make_settings(database_url, tmp_path, CHAINCONSULT_ENV="production", REDIS_URL=None)
    async with serving(create_app(settings)) as client:
        admin_headers = await admin(client, database_url)
        _, owner = await client_account(client)
        posted = await client.post(
            "/api/v2/projects",
            json=project_body(visibility="invite_only", invited_experts=[]),
            headers=owner,
        )
        assert posted.status_code == 201, posted.text
        project = f"/api/v2/projects/{posted.json()['id']}"

        hidden = await client.get(project, headers=admin_headers)
        await turn_on_two_factor(client, admin_headers, totp_clock)
        shown = await client.get(project, headers=admin_headers)

    assert hidden.status_code == 404
    assert shown.status_code == 200


async def test_turning_2fa_on_ends_the_logins_opened_with_a_password_alone(
    database_url: str, tmp_path: Path, totp_clock: TotpClock
) -> None:
    settings = make_settings(database_url, tmp_path, CHAINCONSULT_ENV="production", REDIS_URL=None)
    async with serving(create_app(settings)) as client:
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        account = await register(client, email=email, name="Admin")
        promote_to_admin(database_url, account["id"])
        here = await login(client, email)
        elsewhere = await login(client, email)

        await turn_on_two_factor(client, here, totp_clock)
        here_after = await client.get("/api/v2/admin/audit-log", headers=here)
        elsewhere_after = await client.get("/api/v2/auth/me", headers=elsewhere)

    assert here_after.status_code == 200
    assert elsewhere_after.status_code == 401
