"""Email headers are built safely from whatever is stored: rows written before text fields
were checked, or by hand, may hold line breaks and control characters, an internationalised
address, or the longest name beside the longest title. Each such email goes out once, with
one-line headers, or fails at once when it can never go; none fails on every retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.accounts.jobs import send_welcome_email
from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.jobs import defer
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.schedules import worker_resources
from tests.helpers import serving
from tests.infra.jobs.conftest import drain, jobs, query
from tests.mail.test_email_delivery import smtp_settings
from tests.market import admin, approved_expert, client_account, project_body
from tests.notify import APPROVED, add_account, notify
from tests.smtp import SmtpSink

PROJECT_ID = "0b8f3f5e-8d7e-4c55-a0e8-3f4a1f6c2d10"


@pytest.fixture
def mail_settings(database_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return smtp_settings(database_url, tmp_path, sink.port)


async def welcome(sessionmaker: async_sessionmaker[AsyncSession], *, email: str, name: str) -> None:
    account_id = await add_account(sessionmaker, email=email, name=name)
    async with sessionmaker() as session, session.begin():
        await defer(session, send_welcome_email, account_id=str(account_id))


async def test_a_stored_name_with_line_breaks_gets_one_email_with_a_one_line_to_header(
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    database_url: str,
) -> None:
    await welcome(
        sessionmaker,
        email="mallory@example.com",
        name="Mallory\r\nBcc: everyone@example.com\u2028\x07",
    )

    await drain(worker_resources(mail_settings, sessionmaker))

    [mail] = sink.received
    assert mail.recipients == ["mallory@example.com"]
    assert mail.message["To"] == '"Mallory Bcc: everyone@example.com" <mallory@example.com>'
    assert mail.message["Subject"] == "Welcome to chainconsult, Mallory Bcc: everyone@example.com"
    assert mail.message["Bcc"] is None
    assert [row["status"] for row in jobs(database_url)] == ["succeeded"]
    assert query(database_url, "SELECT count(*) AS n FROM job_failures") == [{"n": 0}]


async def test_a_stored_title_with_line_breaks_is_one_line_in_the_subject(
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    database_url: str,
) -> None:
    queued = await notify(
        sessionmaker,
        database_url,
        to="bidder@example.com",
        kind=NotificationKind.proposal_declined,
        payload={
            "project_id": PROJECT_ID,
            "project_title": "Audit\r\nSubject: spoofed\u2029 the\tbridge\u202e",
            "proposal_id": PROJECT_ID,
            "reason": "project_cancelled",
        },
    )

    await drain(worker_resources(mail_settings, sessionmaker))

    [mail] = sink.received
    subject = 'Your proposal for "Audit Subject: spoofed the bridge" was declined'
    assert mail.message["Subject"] == subject
    assert query(
        database_url,
        "SELECT status, subject FROM email_deliveries WHERE idempotency_key = %(key)s",
        {"key": queued.key},
    ) == [{"status": "sent", "subject": subject}]


async def test_an_internationalised_domain_is_sent_to_its_punycode_address(
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    await welcome(sessionmaker, email="zoe@exämple.com", name="Zoë")

    await drain(worker_resources(mail_settings, sessionmaker))

    [mail] = sink.received
    assert mail.recipients == ["zoe@xn--exmple-cua.com"]
    assert mail.message["To"] == "Zoë <zoe@xn--exmple-cua.com>"


async def test_a_non_ascii_local_part_goes_by_smtputf8(
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    await welcome(sessionmaker, email="zoë@example.com", name="Zoë")

    await drain(worker_resources(mail_settings, sessionmaker))

    [mail] = sink.received
    assert mail.recipients == ["zoë@example.com"]
    assert mail.message["To"] == "Zoë <zoë@example.com>"


async def test_an_address_a_server_without_smtputf8_cannot_carry_fails_at_once(
    database_url: str,
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    server = SmtpSink(smtputf8=False).start()
    try:
        await welcome(sessionmaker, email="zoë@example.com", name="Zoë")
        await drain(
            worker_resources(smtp_settings(database_url, tmp_path, server.port), sessionmaker)
        )
    finally:
        server.stop()

    assert server.received == []
    [job] = jobs(database_url)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert query(database_url, "SELECT status FROM email_deliveries") == [{"status": "failed"}]


async def test_the_longest_name_and_title_go_out_and_fit_the_delivery_record(
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    database_url: str,
) -> None:
    name, title = "N" * 100, "T" * 200
    async with serving(create_app(mail_settings)) as http:
        admin_headers = await admin(http, database_url)
        expert, _ = await approved_expert(http, admin_headers)
        _, client = await client_account(http, name)
        created = await http.post(
            "/api/v2/projects",
            json=project_body(
                title=title, visibility="invite_only", invited_experts=[expert["id"]]
            ),
            headers=client,
        )
        assert created.status_code == 201, created.text

    await drain(worker_resources(mail_settings, sessionmaker))

    [invitation] = sink.messages_to(expert["email"])[-1:]
    subject = f'{name} invited you to propose on "{title}"'
    assert invitation.message["Subject"] == subject
    [recorded] = query(
        database_url,
        "SELECT status, subject FROM email_deliveries WHERE kind = 'project_invitation'",
    )
    assert recorded["status"] == "sent"
    assert recorded["subject"] == subject[:299] + "\u2026"
    assert query(database_url, "SELECT count(*) AS n FROM job_failures") == [{"n": 0}]


async def test_stored_data_an_email_cannot_say_fails_at_once_without_quoting_it(
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    database_url: str,
) -> None:
    await notify(
        sessionmaker,
        database_url,
        payload={**APPROVED, "note": "private-marker " * 200},  # over the note's 2000
    )

    await drain(worker_resources(mail_settings, sessionmaker))

    assert sink.received == []
    [job] = jobs(database_url)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    [failure] = query(database_url, "SELECT error FROM job_failures")
    assert "note" in failure["error"]
    assert "private-marker" not in failure["error"]
