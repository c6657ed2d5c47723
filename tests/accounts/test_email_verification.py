"""Email verification end to end through a real SMTP server, with REQUIRE_VERIFIED_EMAIL on
(the default): registration mails a link; until it is opened the account may log in but is
refused applying, submitting projects and proposing with 403 `email-unverified`; once it is,
all of them work. Operator-made accounts are verified as made."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.accounts.service import AccountService
from chainconsult.accounts.verification import RESENDS_FREE
from chainconsult.app import create_app
from chainconsult.config import Settings
from tests.accounts.mailed import deliver, link_in, mail_settings_for, messages, token_in
from tests.helpers import login, register, serving
from tests.market import admin, application_body, project_body, proposal_body, query
from tests.smtp import SmtpSink

VERIFY_SUBJECT = "Confirm your email address for chainconsult"


@pytest.fixture
def mail_settings(database_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    # The production default, which the other tests' settings turn off.
    return mail_settings_for(database_url, tmp_path, sink, REQUIRE_VERIFIED_EMAIL="true")


@pytest.fixture
async def app_client(mail_settings: Settings) -> AsyncIterator[AsyncClient]:
    async with serving(create_app(mail_settings)) as http:
        yield http


def _email(who: str = "ada") -> str:
    return f"{who}-{uuid.uuid4().hex[:8]}@example.com"


def _unverified(response_json: dict[str, object]) -> bool:
    return str(response_json["type"]).endswith("/email-unverified")


async def _verification_token(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    email: str,
) -> str:
    await deliver(settings, sessionmaker)
    mail = messages(sink, email, VERIFY_SUBJECT)[-1]
    return token_in(mail, "/verify-email")


async def test_a_client_posts_projects_only_once_the_mailed_link_is_opened(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    email = _email()
    account = await register(app_client, email=email)
    assert account["email_verified"] is False
    headers = await login(app_client, email)
    app_client.cookies.clear()

    refused = await app_client.post("/api/v2/projects", json=project_body(), headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert _unverified(refused.json())

    await deliver(mail_settings, sessionmaker)
    [mail] = messages(sink, email, VERIFY_SUBJECT)
    link = link_in(mail, "/verify-email")
    page = await app_client.get(link.removeprefix("https://chainconsult.example"))
    assert page.status_code == 200
    assert 'action="/verify-email"' in page.text
    token = link.rsplit("token=", 1)[1]

    verified = await app_client.post("/api/v2/auth/verify-email", json={"token": token})
    assert verified.status_code == 204
    me = await app_client.get("/api/v2/auth/me", headers=headers)
    assert me.json()["email_verified"] is True
    posted = await app_client.post("/api/v2/projects", json=project_body(), headers=headers)
    assert posted.status_code == 201, posted.text

    again = await app_client.post("/api/v2/auth/verify-email", json={"token": token})
    assert again.status_code == 400
    assert again.json()["type"].endswith("/invalid-token")


async def test_an_unverified_expert_can_neither_apply_nor_propose(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    database_url: str,
) -> None:
    admin_headers = await admin(app_client, database_url)
    query(database_url, "UPDATE accounts SET email_verified_at = now() WHERE role = 'admin'")
    client_email, expert_email = _email("client"), _email("expert")
    await register(app_client, email=client_email)
    await register(app_client, email=expert_email, role="expert")
    client_headers = await login(app_client, client_email)
    expert_headers = await login(app_client, expert_email)
    app_client.cookies.clear()

    refused = await app_client.post(
        "/api/v2/expert-applications", json=application_body(), headers=expert_headers
    )
    assert refused.status_code == 403
    assert _unverified(refused.json())

    for email in (client_email, expert_email):
        token = await _verification_token(mail_settings, sessionmaker, sink, email)
        assert (
            await app_client.post("/api/v2/auth/verify-email", json={"token": token})
        ).status_code == 204
    applied = await app_client.post(
        "/api/v2/expert-applications", json=application_body(), headers=expert_headers
    )
    assert applied.status_code == 201, applied.text
    decided = await app_client.post(
        f"/api/v2/admin/expert-applications/{applied.json()['id']}/decision",
        json={"decision": "approve", "note": "Welcome"},
        headers=admin_headers,
    )
    assert decided.status_code == 200, decided.text
    project = await app_client.post("/api/v2/projects", json=project_body(), headers=client_headers)
    assert project.status_code == 201, project.text

    # An address that is no longer verified (changed outside the app) is refused again.
    query(
        database_url, "UPDATE accounts SET email_verified_at = NULL WHERE email = %s", expert_email
    )
    expert_again = await login(app_client, expert_email)
    app_client.cookies.clear()
    path = f"/api/v2/projects/{project.json()['id']}/proposals"
    refused = await app_client.post(path, json=proposal_body(), headers=expert_again)
    assert refused.status_code == 403
    assert _unverified(refused.json())

    # Verified again, the expert proposes and writes (an unverified writer: conversations tests).
    resent = await app_client.post("/api/v2/auth/verify-email/resend", headers=expert_again)
    assert resent.status_code == 202, resent.text
    token = await _verification_token(mail_settings, sessionmaker, sink, expert_email)
    assert (
        await app_client.post("/api/v2/auth/verify-email", json={"token": token})
    ).status_code == 204
    verified_again = await login(app_client, expert_email)
    app_client.cookies.clear()
    proposed = await app_client.post(path, json=proposal_body(), headers=verified_again)
    assert proposed.status_code == 201, proposed.text
    opened = await app_client.post(
        "/api/v2/conversations", json={"project_id": project.json()["id"]}, headers=verified_again
    )
    assert opened.status_code in (200, 201), opened.text
    said = await app_client.post(
        f"/api/v2/conversations/{opened.json()['id']}/messages",
        json={"body": "Hello"},
        headers=verified_again,
    )
    assert said.status_code == 201, said.text


async def test_a_new_link_is_mailed_on_request_until_the_address_is_verified(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    email = _email()
    await register(app_client, email=email)
    headers = await login(app_client, email)
    app_client.cookies.clear()

    resent = await app_client.post("/api/v2/auth/verify-email/resend", headers=headers)
    assert resent.status_code == 202
    assert resent.json() == {"status": "sent"}
    await deliver(mail_settings, sessionmaker)
    first, second = messages(sink, email, VERIFY_SUBJECT)
    latest = token_in(second, "/verify-email")
    assert latest != token_in(first, "/verify-email")

    assert (
        await app_client.post("/api/v2/auth/verify-email", json={"token": latest})
    ).status_code == 204
    done = await app_client.post("/api/v2/auth/verify-email/resend", headers=headers)
    assert done.json() == {"status": "already_verified"}
    # A reset link is not a verification link, nor the other way round.
    wrong_kind = await app_client.post(
        "/api/v2/auth/password-reset/confirm",
        json={"token": token_in(first, "/verify-email"), "new_password": "x" * 20},
    )
    assert wrong_kind.status_code == 400


async def test_resending_is_limited_per_address(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    """The address may be someone else's: resends cannot flood it."""
    email = _email()
    await register(app_client, email=email)
    headers = await login(app_client, email)
    app_client.cookies.clear()

    answers = [
        await app_client.post("/api/v2/auth/verify-email/resend", headers=headers)
        for _ in range(RESENDS_FREE + 2)
    ]

    assert [answer.status_code for answer in answers[:RESENDS_FREE]] == [202] * RESENDS_FREE
    refused = answers[RESENDS_FREE]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    await deliver(mail_settings, sessionmaker)
    # The registration's link and the free resends, nothing more.
    assert len(messages(sink, email, VERIFY_SUBJECT)) == 1 + RESENDS_FREE


async def test_a_link_for_an_address_the_account_no_longer_has_verifies_nothing(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    database_url: str,
) -> None:
    email = _email()
    await register(app_client, email=email)
    token = await _verification_token(mail_settings, sessionmaker, sink, email)
    query(database_url, "UPDATE accounts SET email = %s WHERE email = %s", _email("new"), email)

    refused = await app_client.post("/api/v2/auth/verify-email", json={"token": token})
    assert refused.status_code == 400
    assert refused.json()["type"].endswith("/invalid-token")
    [[verified_at]] = query(
        database_url, "SELECT email_verified_at FROM accounts WHERE email LIKE 'new-%%'"
    )
    assert verified_at is None


async def test_create_admin_makes_and_promotes_verified_accounts(
    sessionmaker: async_sessionmaker[AsyncSession], app_client: AsyncClient
) -> None:
    promoted = _email("promoted")
    await register(app_client, email=promoted)
    async with sessionmaker() as session, session.begin():
        service = AccountService(session)
        created, _ = await service.ensure_admin(email=_email("boss"), password="x" * 20)
        existing, _ = await service.ensure_admin(email=promoted, password=None)
        assert created.email_verified
        assert existing.email_verified
