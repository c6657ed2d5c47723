"""Forgotten and changed passwords, end to end through a real SMTP server: the mailed link
works once and only within its time, every old session ends, and an address without an
account is answered exactly like one with."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx import AsyncClient
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.resources import resources_of
from tests.accounts.conftest import FrozenClock
from tests.accounts.mailed import deliver, link_in, mail_settings_for, messages, token_in
from tests.helpers import PASSWORD, login, register, serving, statements_sent
from tests.market import query
from tests.smtp import SmtpSink

NEW_PASSWORD = "a brand new passphrase for ada"
RESET_SUBJECT = "Reset your chainconsult password"
NOTICE_SUBJECT = "Your chainconsult password was changed"


@pytest.fixture
def mail_settings(database_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return mail_settings_for(database_url, tmp_path, sink)


@pytest.fixture
async def app_client(mail_settings: Settings) -> AsyncIterator[AsyncClient]:
    async with serving(create_app(mail_settings)) as http:
        yield http


@pytest.fixture
def reset_clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """The clock that issues and checks mailed tokens, moved only by the test."""
    frozen = FrozenClock()
    monkeypatch.setattr("chainconsult.accounts.one_time.utcnow", frozen)
    return frozen


def _auth_events(event: str) -> float:
    sample = REGISTRY.get_sample_value("chainconsult_auth_events_total", {"event": event})
    return sample or 0.0


def _email() -> str:
    return f"ada-{uuid.uuid4().hex[:8]}@example.com"


async def _me(client: AsyncClient, headers: dict[str, str]) -> int:
    return (await client.get("/api/v2/auth/me", headers=headers)).status_code


async def _reset_link(
    client: AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    email: str,
) -> str:
    asked = await client.post("/api/v2/auth/password-reset", json={"email": email})
    assert asked.status_code == 202, asked.text
    assert asked.json() == {"status": "sent"}
    await deliver(settings, sessionmaker)
    mail = messages(sink, email, RESET_SUBJECT)[-1]
    return token_in(mail, "/reset-password")


async def test_a_forgotten_password_is_reset_through_the_mailed_link(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    email = _email()
    await register(app_client, email=email)
    first, second = await login(app_client, email), await login(app_client, email)
    app_client.cookies.clear()

    asked = await app_client.post("/api/v2/auth/password-reset", json={"email": email})
    assert asked.status_code == 202
    assert asked.json() == {"status": "sent"}
    await deliver(mail_settings, sessionmaker)
    [mail] = messages(sink, email, RESET_SUBJECT)
    link = link_in(mail, "/reset-password")
    assert "30 minutes" in mail.part("plain")
    # The link opens the page that sets the new password.
    page = await app_client.get(link.removeprefix("https://chainconsult.example"))
    assert page.status_code == 200
    assert 'name="new_password"' in page.text

    token = link.rsplit("token=", 1)[1]
    confirmed = await app_client.post(
        "/api/v2/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 204, confirmed.text

    assert await _me(app_client, first) == 401
    assert await _me(app_client, second) == 401
    old = await app_client.post("/api/v2/auth/login", json={"email": email, "password": PASSWORD})
    assert old.status_code == 401
    assert await _me(app_client, await login(app_client, email, NEW_PASSWORD)) == 200
    # The link proved the address too.
    me = await app_client.get(
        "/api/v2/auth/me", headers=await login(app_client, email, NEW_PASSWORD)
    )
    assert me.json()["email_verified"] is True

    await deliver(mail_settings, sessionmaker)
    [notice] = messages(sink, email, NOTICE_SUBJECT)
    assert "was reset" in notice.part("plain")
    assert "/forgot-password" in notice.part("plain")

    reused = await app_client.post(
        "/api/v2/auth/password-reset/confirm", json={"token": token, "new_password": PASSWORD}
    )
    assert reused.status_code == 400
    assert reused.json()["type"].endswith("/invalid-token")


async def test_an_expired_or_altered_link_is_refused_and_changes_nothing(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    reset_clock: FrozenClock,
) -> None:
    email = _email()
    await register(app_client, email=email)
    token = await _reset_link(app_client, mail_settings, sessionmaker, sink, email)

    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (altered, token + "x", "not-a-token"):
        refused = await app_client.post(
            "/api/v2/auth/password-reset/confirm", json={"token": bad, "new_password": NEW_PASSWORD}
        )
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/invalid-token")

    reset_clock.advance(30 * 60 + 1)
    expired = await app_client.post(
        "/api/v2/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert expired.status_code == 400
    assert expired.json()["type"].endswith("/invalid-token")
    # The old password still works: nothing was changed.
    assert await _me(app_client, await login(app_client, email)) == 200


async def test_an_address_without_an_account_is_answered_the_same_and_mailed_nothing(
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    app = create_app(mail_settings)
    known = [_email() for _ in range(9)]
    unknown = [_email() for _ in range(9)]
    async with serving(app) as client:
        for email in known:
            await register(client, email=email)

        async def ask(email: str) -> tuple[int, bytes, list[str], float]:
            with statements_sent(resources_of(app).engine) as sent:
                started = time.perf_counter()
                answer = await client.post("/api/v2/auth/password-reset", json={"email": email})
                took = time.perf_counter() - started
            return answer.status_code, answer.content, [s for s, _ in sent], took

        # Interleaved, so that a slower moment of the machine falls on both alike.
        answers = [await ask(e) for pair in zip(known, unknown, strict=True) for e in pair]
    known_answers, unknown_answers = answers[0::2], answers[1::2]
    # Same status, same bytes, the same statements in the same order.
    assert {(s, body) for s, body, _, _ in known_answers + unknown_answers} == {
        (202, b'{"status":"sent"}')
    }
    assert {tuple(sql) for _, _, sql, _ in known_answers + unknown_answers} == {
        tuple(known_answers[0][2])
    }
    known_time = statistics.median(t for *_, t in known_answers)
    unknown_time = statistics.median(t for *_, t in unknown_answers)
    assert abs(known_time - unknown_time) < max(0.5 * max(known_time, unknown_time), 0.01)

    await deliver(mail_settings, sessionmaker)
    assert all(messages(sink, email, RESET_SUBJECT) for email in known)
    assert not any(sink.messages_to(email) for email in unknown)


async def test_reset_requests_past_the_limit_get_the_same_answer_and_no_email(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    known, unknown = _email(), _email()
    await register(app_client, email=known)
    requested_before = _auth_events("reset_requested")
    for email in (known, unknown):
        answers = [
            await app_client.post("/api/v2/auth/password-reset", json={"email": email})
            for _ in range(4)
        ]
        assert {(a.status_code, a.content) for a in answers} == {(202, b'{"status":"sent"}')}

    await deliver(mail_settings, sessionmaker)
    assert len(messages(sink, known, RESET_SUBJECT)) == 3
    assert not sink.messages_to(unknown)
    assert _auth_events("reset_requested") - requested_before == 8


async def test_reset_requests_are_limited_per_client_ip(
    database_url: str, tmp_path: Path, sink: SmtpSink
) -> None:
    settings = mail_settings_for(database_url, tmp_path, sink, RATE_LIMIT_AUTH="2/minute")
    async with serving(create_app(settings)) as client:
        answers = [
            await client.post("/api/v2/auth/password-reset", json={"email": _email()})
            for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert "Retry-After" in answers[-1].headers


async def test_a_password_change_needs_the_current_one_and_ends_the_other_sessions(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    email = _email()
    await register(app_client, email=email)
    this, other = await login(app_client, email), await login(app_client, email)
    app_client.cookies.clear()
    changed_before = _auth_events("password_changed")

    wrong = await app_client.post(
        "/api/v2/auth/password",
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=this,
    )
    assert wrong.status_code == 403
    assert wrong.headers["content-type"] == "application/problem+json"
    assert await _me(app_client, other) == 200

    changed = await app_client.post(
        "/api/v2/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=this,
    )
    assert changed.status_code == 204
    assert _auth_events("password_changed") - changed_before == 1
    assert await _me(app_client, this) == 200
    assert await _me(app_client, other) == 401
    assert await _me(app_client, await login(app_client, email, NEW_PASSWORD)) == 200

    await deliver(mail_settings, sessionmaker)
    [notice] = messages(sink, email, NOTICE_SUBJECT)
    assert "was changed" in notice.part("plain")


async def test_a_reset_lifts_the_lockout_left_by_someone_guessing(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    email = _email()
    await register(app_client, email=email)
    guess = {"email": email, "password": "a wrong guess"}
    for _ in range(5):
        assert (await app_client.post("/api/v2/auth/login", json=guess)).status_code == 401
    assert (await app_client.post("/api/v2/auth/login", json=guess)).status_code == 429

    token = await _reset_link(app_client, mail_settings, sessionmaker, sink, email)
    confirmed = await app_client.post(
        "/api/v2/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 204
    assert await _me(app_client, await login(app_client, email, NEW_PASSWORD)) == 200


async def test_a_reset_link_for_an_address_the_account_no_longer_has_opens_nothing(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    database_url: str,
) -> None:
    email, changed = _email(), _email()
    await register(app_client, email=email)
    token = await _reset_link(app_client, mail_settings, sessionmaker, sink, email)
    query(database_url, "UPDATE accounts SET email = %s WHERE email = %s", changed, email)

    refused = await app_client.post(
        "/api/v2/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert refused.status_code == 400
    assert refused.json()["type"].endswith("/invalid-token")
    assert await _me(app_client, await login(app_client, changed)) == 200
