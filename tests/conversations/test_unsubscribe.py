"""The unsubscribe link of each optional email kind, through a real SMTP server (aiosmtpd): it
needs no login, GET only asks, POST (the page's button or RFC 8058 one-click) turns that kind
off for that person, and no further email of the kind is sent; other kinds and account
emails are untouched. Turned back on in the email settings, the kind is sent again."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.conversations.jobs import MessageDigest
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.mail.preferences import OPTIONAL_EMAILS, unsubscribe_token
from chainconsult.schedules import worker_resources
from tests.conversations.story import proposed_thread, say
from tests.helpers import PASSWORD, serving
from tests.infra.jobs.conftest import drain
from tests.mail.test_email_delivery import PUBLIC_URL, smtp_settings
from tests.smtp import Received, SmtpSink
from tests.web.conftest import form_token, post_form

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def mail_settings(database_url: str, tmp_path: Path, smtp: SmtpSink) -> Settings:
    return smtp_settings(database_url, tmp_path, smtp.port)


@pytest.fixture
async def app_client(mail_settings: Settings) -> AsyncIterator[AsyncClient]:
    async with serving(create_app(mail_settings)) as http:
        yield http


@pytest.fixture
async def sessionmaker(mail_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = build_engine(mail_settings.database)
    yield build_sessionmaker(engine)
    await engine.dispose()


def later(minutes: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)


def link_of(mail: Received) -> str:
    """The List-Unsubscribe URL, checked to be the one the text offers too."""
    header = str(mail.message["List-Unsubscribe"])
    assert header.startswith("<"), header
    assert header.endswith(">"), header
    url = header[1:-1]
    assert mail.message["List-Unsubscribe-Post"] == ONE_CLICK
    assert url in mail.part("plain")
    assert url.replace("&", "&amp;") in mail.part("html")
    assert url.startswith(f"{PUBLIC_URL}/unsubscribe?token=")
    return url


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_the_digest_link_turns_digests_off_and_no_further_digest_is_sent(
    app_client: AsyncClient,
    database_url: str,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    smtp: SmtpSink,
) -> None:
    thread = await proposed_thread(app_client, database_url)
    expert_id, expert_email = uuid.UUID(thread.expert["id"]), thread.expert["email"]
    digest = MessageDigest(mail_settings, sessionmaker)
    await say(app_client, thread, thread.client_headers, "Are you free?")
    assert await digest.send(expert_id, now=later(11)) == "sent"
    [mail] = smtp.messages_to(expert_email)
    url = link_of(mail)

    # Following the link (a person, or a mail scanner) only asks; it needs no login.
    app_client.cookies.clear()
    asked = await app_client.get(local(url))
    assert asked.status_code == 200
    assert "Stop &ldquo;message digest&rdquo; emails?" in asked.text
    await say(app_client, thread, thread.client_headers, "Hello again")
    assert await digest.send(expert_id, now=later(25)) == "sent"
    assert len(smtp.messages_to(expert_email)) == 2

    # RFC 8058 one-click: a POST of the form body, no cookie, no CSRF token.
    app_client.cookies.clear()
    done = await app_client.post(
        local(url),
        content=ONE_CLICK,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    assert "you will get no more &ldquo;message digest&rdquo; emails" in done.text
    again = await app_client.post(local(url))
    assert again.status_code == 200  # a second click changes nothing

    await say(app_client, thread, thread.client_headers, "Anyone?")
    assert await digest.send(expert_id, now=later(40)) == "unsubscribed"
    assert len(smtp.messages_to(expert_email)) == 2
    # The page now says it is done.
    assert "you will get no more" in (await app_client.get(local(url))).text


async def test_a_link_not_signed_by_us_changes_nothing(
    app_client: AsyncClient,
    database_url: str,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    smtp: SmtpSink,
) -> None:
    thread = await proposed_thread(app_client, database_url)
    expert_id = uuid.UUID(thread.expert["id"])
    genuine = unsubscribe_token(mail_settings.secret_key(), expert_id, "message_digest")
    forged = [
        "nonsense",
        genuine.replace("message_digest", "proposal_received"),
        genuine.replace(expert_id.hex, uuid.UUID(thread.client["id"]).hex),
        unsubscribe_token(b"another secret", expert_id, "message_digest"),
        genuine[:-1] + "\u00e9",
    ]
    app_client.cookies.clear()
    for token in forged:
        answer = await app_client.post("/unsubscribe", params={"token": token})
        assert answer.status_code == 404, token
        assert answer.headers["content-type"].startswith("text/html")
        assert (await app_client.get("/unsubscribe", params={"token": token})).status_code == 404
    assert (await app_client.post("/unsubscribe")).status_code == 422
    await say(app_client, thread, thread.client_headers, "Still mailed?")
    digest = MessageDigest(mail_settings, sessionmaker)
    assert await digest.send(expert_id, now=later(11)) == "sent"


async def test_notification_emails_carry_a_link_for_their_own_kind_and_account_emails_none(
    app_client: AsyncClient, database_url: str, mail_settings: Settings, smtp: SmtpSink
) -> None:
    thread = await proposed_thread(app_client, database_url)
    engine = build_engine(mail_settings.database)
    try:
        await drain(worker_resources(mail_settings, build_sessionmaker(engine)))
    finally:
        await engine.dispose()
    to_client = smtp.messages_to(thread.client["email"])
    [proposal] = [m for m in to_client if m.message["List-Unsubscribe"] is not None]
    url = link_of(proposal)
    assert (
        unsubscribe_token(
            mail_settings.secret_key(), uuid.UUID(thread.client["id"]), "proposal_received"
        )
        in url
    )
    # Registration and verification emails are not optional: no link.
    assert len(to_client) > 1
    app_client.cookies.clear()
    answer = await app_client.post(local(url))
    assert "no more &ldquo;proposal received&rdquo; emails" in answer.text


async def test_digests_turned_back_on_in_the_email_settings_are_sent_again(
    app_client: AsyncClient,
    database_url: str,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    smtp: SmtpSink,
) -> None:
    thread = await proposed_thread(app_client, database_url)
    expert_id, expert_email = uuid.UUID(thread.expert["id"]), thread.expert["email"]
    token = unsubscribe_token(mail_settings.secret_key(), expert_id, "message_digest")
    app_client.cookies.clear()
    assert (await app_client.post("/unsubscribe", params={"token": token})).status_code == 200
    digest = MessageDigest(mail_settings, sessionmaker)
    await say(app_client, thread, thread.client_headers, "Are you free?")
    assert await digest.send(expert_id, now=later(11)) == "unsubscribed"

    login = await post_form(app_client, "/login", {"email": expert_email, "password": PASSWORD})
    assert login.status_code == 303
    settings_page = await app_client.get("/account/emails")
    saved = await app_client.post(
        "/account/emails",
        data={
            "receive": [email.kind for email in OPTIONAL_EMAILS],
            "csrf_token": form_token(settings_page),
        },
    )
    assert saved.status_code == 303
    app_client.cookies.clear()
    await say(app_client, thread, thread.client_headers, "Still there?")
    assert await digest.send(expert_id, now=later(25)) == "sent"
    assert len(smtp.messages_to(expert_email)) == 1
