"""One digest email per person per burst of unread messages, none for threads read in the
meantime; through a real SMTP server (aiosmtpd). The digest's clock is the test's."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.conversations.jobs import MessageDigest
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.schedules import worker_resources
from tests.conversations.story import Thread, proposed_thread, say
from tests.helpers import serving
from tests.infra.jobs.conftest import drain, jobs
from tests.mail.test_email_delivery import PUBLIC_URL, smtp_settings
from tests.smtp import SmtpSink

DIGEST_TASK = "conversations.send_message_digest"


@pytest.fixture
def digest_settings(database_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return smtp_settings(database_url, tmp_path, sink.port)


@pytest.fixture
async def app_client(digest_settings: Settings) -> AsyncIterator[AsyncClient]:
    async with serving(create_app(digest_settings)) as http:
        yield http


@pytest.fixture
async def sessionmaker(
    digest_settings: Settings,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = build_engine(digest_settings.database)
    yield build_sessionmaker(engine)
    await engine.dispose()


def later(minutes: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)


async def expert_thread(client: AsyncClient, database_url: str) -> tuple[Thread, str]:
    thread = await proposed_thread(client, database_url)
    return thread, thread.expert["email"]


async def test_a_burst_of_messages_makes_one_digest_after_ten_minutes(
    app_client: AsyncClient,
    database_url: str,
    digest_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    thread, expert_email = await expert_thread(app_client, database_url)
    for text in ("Are you free?", "We need it by Friday.", "Ping"):
        await say(app_client, thread, thread.client_headers, text)
    waiting = [job for job in jobs(database_url, DIGEST_TASK) if job["status"] == "todo"]
    # One waiting job for the expert, however many messages; none for the author.
    assert [job["args"] for job in waiting] == [{"account_id": thread.expert["id"]}]
    delay = waiting[0]["scheduled_at"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < delay <= dt.timedelta(minutes=10)

    digest = MessageDigest(digest_settings, sessionmaker)
    expert_id = uuid.UUID(thread.expert["id"])
    # Before ten minutes: nothing is sent, and the job comes back when the oldest is due.
    assert await digest.send(expert_id, now=later(5)) == "skipped: not due yet"
    assert sink.messages_to(expert_email) == []

    assert await digest.send(expert_id, now=later(11)) == "sent"
    [mail] = sink.messages_to(expert_email)
    text = mail.part("plain")
    assert "3 unread" in text
    assert f"{PUBLIC_URL}/conversations/{thread.id}" in text
    assert "Audit our lending protocol" in text
    # Run again (a retry, a second job): the same burst is never mailed twice.
    assert await digest.send(expert_id, now=later(12)) == "skipped: nothing unread"
    assert len(sink.messages_to(expert_email)) == 1
    # The author was never mailed about their own messages.
    assert sink.messages_to(thread.client["email"]) == []

    await say(app_client, thread, thread.client_headers, "One more thing.")
    assert await digest.send(expert_id, now=later(25)) == "sent"
    second = sink.messages_to(expert_email)[1].part("plain")
    assert "1 unread" in second


async def test_no_digest_for_a_thread_read_in_the_meantime(
    app_client: AsyncClient,
    database_url: str,
    digest_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    thread, expert_email = await expert_thread(app_client, database_url)
    await say(app_client, thread, thread.client_headers, "Hello?")
    last = await say(app_client, thread, thread.client_headers, "Still there?")
    read = await app_client.post(
        f"/api/v2/conversations/{thread.id}/read",
        json={"up_to_message_id": last["id"]},
        headers=thread.expert_headers,
    )
    assert read.status_code == 204
    digest = MessageDigest(digest_settings, sessionmaker)
    outcome = await digest.send(uuid.UUID(thread.expert["id"]), now=later(11))
    assert outcome == "skipped: nothing unread"
    assert sink.messages_to(expert_email) == []


async def test_the_worker_sends_the_digest_when_it_is_due(
    database_url: str,
    tmp_path: Path,
    sink: SmtpSink,
) -> None:
    settings = smtp_settings(database_url, tmp_path, sink.port, MESSAGE_DIGEST_DELAY_SECONDS="1")
    async with serving(create_app(settings)) as client:
        thread, expert_email = await expert_thread(client, database_url)
        for text in ("One", "Two"):
            await say(client, thread, thread.client_headers, text)
    await asyncio.sleep(1.2)
    engine = build_engine(settings.database)
    try:
        await drain(worker_resources(settings, build_sessionmaker(engine)))
    finally:
        await engine.dispose()
    sink.wait_for(1)
    # The registrations' and the proposal's emails went out too; one digest among them.
    [mail] = [
        m
        for m in sink.messages_to(expert_email)
        if m.message["subject"] == "You have unread messages"
    ]
    assert "2 unread" in mail.part("plain")
    assert [job["status"] for job in jobs(database_url, DIGEST_TASK)] == ["succeeded"]
