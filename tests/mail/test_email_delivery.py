"""Email through a real SMTP server (aiosmtpd): the right message for registration, a
template for each notification kind, retries while the server is down, one message per
idempotency key, no retry for a refused recipient, console and disabled modes, STARTTLS, TLS
and login. The marketplace's own emails, end to end: tests/notifications."""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.accounts.repository import AccountRepository
from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.jobs import Backoff, JobResources, defer
from chainconsult.infra.monitoring.logging import configure_logging
from chainconsult.mail.rendering import templates
from chainconsult.mail.service import EmailOutbox, Outcome
from chainconsult.models import Account
from chainconsult.notifications.email_contexts import EMAIL_CONTEXTS
from chainconsult.notifications.jobs import send_notification_email
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.schedules import worker_resources
from tests.conftest import make_settings
from tests.helpers import PASSWORD, serving
from tests.infra.jobs.conftest import FAST_JOBS, drain, eventually, jobs, query, running_worker
from tests.notify import add_account, notify
from tests.smtp import SmtpSink, free_port

PROJECT_ID = "0b8f3f5e-8d7e-4c55-a0e8-3f4a1f6c2d10"
PUBLIC_URL = "https://chainconsult.example"
OFFER = {
    "project_id": PROJECT_ID,
    "project_title": "Audit the bridge",
    "skills": ["solidity", "smart-contract-audit"],
    "chains": ["ethereum"],
    "budget_min": "5000.00",
    "budget_max": "12000.00",
    "budget_currency": "USDC",
}
SAMPLE_CONTEXTS: dict[NotificationKind, dict[str, Any]] = {
    NotificationKind.application_decided: {
        "decision": "approved",
        "note": "Strong Solidity portfolio.",
    },
    NotificationKind.proposal_received: {
        "project_id": PROJECT_ID,
        "project_title": "Audit the bridge",
        "expert_name": "Grace Hopper",
        "price_amount": "4500.00",
        "price_currency": "USDC",
        "estimated_days": 12,
    },
    NotificationKind.proposal_accepted: {
        "project_id": PROJECT_ID,
        "project_title": "Audit the bridge",
        "client_name": "Acme Labs",
    },
    NotificationKind.proposal_declined: {
        "project_id": PROJECT_ID,
        "project_title": "Audit the bridge",
        "reason": "another_accepted",
    },
    NotificationKind.project_completed: {
        "project_id": PROJECT_ID,
        "project_title": "Audit the bridge",
    },
    NotificationKind.milestone_changed: {
        "project_id": PROJECT_ID,
        "project_title": "Audit the bridge",
        "milestone_title": "Design review",
        "status": "released",
    },
    NotificationKind.review_received: {
        "project_id": PROJECT_ID,
        "project_title": "Audit the bridge",
        "rating": 5,
        "text": "Found two critical bugs <before> launch.",
    },
    NotificationKind.project_matched: OFFER,
    NotificationKind.project_invitation: {**OFFER, "client_name": "Acme Labs"},
}


def smtp_settings(database_url: str, tmp_path: Path, port: int, **env: Any) -> Settings:
    values: dict[str, Any] = {
        "REDIS_URL": None,
        "EMAIL_SERVICE": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_TLS": "none",
        "SMTP_FROM": "chainconsult <no-reply@chainconsult.example>",
        "SMTP_TIMEOUT_SECONDS": "5",
        "PUBLIC_URL": PUBLIC_URL,
        **FAST_JOBS,
    }
    values.update(env)
    return make_settings(database_url, tmp_path, **values)


@pytest.fixture
def mail_settings(database_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return smtp_settings(database_url, tmp_path, sink.port)


def resources_for(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> JobResources:
    return worker_resources(settings, sessionmaker)


@pytest.fixture
async def app_client(mail_settings: Settings) -> AsyncIterator[AsyncClient]:
    app = create_app(mail_settings)
    async with serving(app) as http:
        yield http


async def test_registration_delivers_a_welcome_email_with_the_right_content(
    app_client: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    response = await app_client.post(
        "/api/v2/auth/register",
        json={
            "email": "ada@example.com",
            "password": PASSWORD,
            "display_name": "Ada <Lovelace>",
            "role": "expert",
        },
    )
    assert response.status_code == 201

    await drain(resources_for(mail_settings, sessionmaker))

    # With the link that verifies the address (tests/accounts/test_email_verification.py).
    sink.wait_for(2)
    [mail] = [m for m in sink.received if m.message["Subject"].startswith("Welcome")]
    assert mail.recipients == ["ada@example.com"]
    assert mail.sender == "no-reply@chainconsult.example"
    assert mail.message["To"] == '"Ada <Lovelace>" <ada@example.com>'
    assert mail.message["Subject"] == "Welcome to chainconsult, Ada <Lovelace>"
    text = mail.part("plain")
    assert text.startswith("Hello Ada <Lovelace>,\n")
    assert "Your chainconsult account for ada@example.com is ready." in text
    apply = f"{PUBLIC_URL}/experts/apply"
    assert apply in text
    html = mail.part("html")
    assert "Hello Ada &lt;Lovelace&gt;," in html
    assert f'href="{apply}"' in html
    assert "<title>Welcome to chainconsult, Ada &lt;Lovelace&gt;</title>" in html


@pytest.mark.parametrize("kind", sorted(NotificationKind))
def test_every_notification_kind_renders_a_subject_text_and_html(kind: NotificationKind) -> None:
    rendered = templates.render(
        kind,
        {
            **EMAIL_CONTEXTS[kind].model_validate(SAMPLE_CONTEXTS[kind]).model_dump(mode="json"),
            "display_name": "Grace",
            "email": "grace@example.com",
            "public_url": PUBLIC_URL,
        },
    )

    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.text.startswith("Hello Grace,\n")
    assert '<p style="margin:0 0 16px">Hello Grace,</p>' in rendered.html
    assert "{{" not in rendered.text + rendered.html
    if kind == "review_received":
        assert "&lt;before&gt;" in rendered.html
        assert "<before>" in rendered.text


def test_one_vocabulary_every_notification_kind_has_one_email_and_nothing_else_does() -> None:
    assert set(EMAIL_CONTEXTS) == set(NotificationKind)
    account_emails = {"welcome", "verify_email", "password_reset", "password_changed"}
    assert templates.kinds() == {*NotificationKind, *account_emails, "message_digest"}


async def test_a_notification_with_a_wrong_payload_fails_its_caller_and_queues_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    with pytest.raises(ValueError, match="review_received payload needs"):
        await notify(
            sessionmaker,
            database_url,
            kind=NotificationKind.review_received,
            payload={"project_id": PROJECT_ID, "rating": 5},
        )
    assert jobs(database_url) == []
    assert query(database_url, "SELECT count(*) AS n FROM notifications") == [{"n": 0}]


async def test_with_the_smtp_server_down_the_job_retries_with_growing_delays_then_delivers(
    database_url: str,
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The production schedule starts at 10 s; the same curve, scaled down for the test.
    monkeypatch.setattr(
        send_notification_email, "retry_strategy", Backoff(max_attempts=10, base_seconds=0.5)
    )
    port = free_port()
    settings = smtp_settings(database_url, tmp_path, port)
    queued = await notify(sessionmaker, database_url, to="down@example.com")
    job_id = queued.job_id
    server = SmtpSink(port)

    async def failures() -> int:
        rows = query(database_url, "SELECT count(*) AS n FROM job_failures")
        return int(rows[0]["n"])

    try:
        async with running_worker(resources_for(settings, sessionmaker), concurrency=1):
            await eventually(lambda: _at_least(failures, 3), timeout=20)
            server.start()
            await eventually(lambda: _status(database_url, job_id, "succeeded"), timeout=20)
    finally:
        server.stop()

    assert len(server.messages_to("down@example.com")) == 1
    attempts = [
        row["at"]
        for row in query(
            database_url,
            "SELECT created_at AS at FROM job_failures WHERE job_id = %(id)s ORDER BY id",
            {"id": job_id},
        )
    ]
    delivery = query(
        database_url,
        "SELECT status, attempts, sent_at, last_error FROM email_deliveries"
        " WHERE idempotency_key = %(key)s",
        {"key": queued.key},
    )[0]
    attempts.append(delivery["sent_at"])
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert len(gaps) >= 3
    assert all(earlier < later for earlier, later in itertools.pairwise(gaps))
    errors = query(
        database_url, "SELECT error FROM job_failures WHERE job_id = %(id)s", {"id": job_id}
    )
    assert all("Connect" in row["error"] for row in errors)
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == len(attempts)
    assert delivery["last_error"] is None


async def test_one_email_per_idempotency_key_even_when_its_job_runs_again(
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    database_url: str,
) -> None:
    queued = await notify(sessionmaker, database_url)
    # A second job for the same notification (an operator's manual re-queue, say).
    async with sessionmaker() as session, session.begin():
        second = await defer(
            session, send_notification_email, notification_id=str(queued.notification_id)
        )
    resources = resources_for(mail_settings, sessionmaker)
    await drain(resources)
    # A worker that sent the email and died before marking the job done: the job runs again.
    query(
        database_url,
        "UPDATE procrastinate_jobs SET status = 'todo' WHERE id = %(id)s",
        {"id": queued.job_id},
    )
    await drain(resources)

    assert len(sink.received) == 1
    assert {row["status"] for row in jobs(database_url)} == {"succeeded"}
    assert {row["id"] for row in jobs(database_url)} == {queued.job_id, second}
    assert query(
        database_url,
        "SELECT status, attempts FROM email_deliveries WHERE idempotency_key = %(key)s",
        {"key": queued.key},
    ) == [{"status": "sent", "attempts": 3}]


async def test_a_refused_recipient_fails_the_job_at_once_without_retrying(
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    database_url: str,
) -> None:
    sink.refuse.add("ghost@example.com")
    queued = await notify(sessionmaker, database_url, to="ghost@example.com")

    await drain(resources_for(mail_settings, sessionmaker))

    assert sink.received == []
    [row] = jobs(database_url)
    assert (row["id"], row["status"], row["attempts"]) == (queued.job_id, "failed", 1)
    [delivery] = query(
        database_url,
        "SELECT status, last_error FROM email_deliveries WHERE idempotency_key = %(key)s",
        {"key": queued.key},
    )
    assert delivery["status"] == "failed"
    assert "550" in delivery["last_error"]


@pytest.fixture
def email_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    """The structured log lines of chainconsult.email, as the deployment's logging emits
    them (structlog through the standard library)."""
    configure_logging("WARNING")
    caplog.set_level(logging.INFO, logger="chainconsult.email")
    return lambda: [record.msg for record in caplog.records if isinstance(record.msg, dict)]


async def test_console_mode_writes_the_message_to_the_log(
    database_url: str,
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    email_log: Callable[[], list[dict[str, Any]]],
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        EMAIL_SERVICE="console",
        PUBLIC_URL=PUBLIC_URL,
        **FAST_JOBS,
    )
    await notify(sessionmaker, database_url, to="dev@example.com")

    await drain(resources_for(settings, sessionmaker))

    logs = email_log()
    [printed] = [entry for entry in logs if entry["event"] == "email"]
    assert printed["to"] == "dev@example.com"
    assert printed["subject"] == "Your expert application was approved"
    assert f"{PUBLIC_URL}/projects?view=open" in printed["text"]
    assert "Strong Solidity portfolio." in printed["text"]


async def test_disabled_mode_drops_the_message_with_a_log_line_once(
    database_url: str,
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    email_log: Callable[[], list[dict[str, Any]]],
) -> None:
    settings = make_settings(
        database_url, tmp_path, REDIS_URL=None, EMAIL_SERVICE="disabled", **FAST_JOBS
    )
    queued = await notify(sessionmaker, database_url, to="off@example.com")
    async with sessionmaker() as session, session.begin():
        await defer(session, send_notification_email, notification_id=str(queued.notification_id))

    await drain(resources_for(settings, sessionmaker))

    logs = email_log()
    dropped = [entry for entry in logs if entry["event"] == "email_dropped"]
    assert [(entry["to"], entry["reason"]) for entry in dropped] == [
        ("off@example.com", "EMAIL_SERVICE=disabled")
    ]
    assert query(
        database_url,
        "SELECT status FROM email_deliveries WHERE idempotency_key = %(key)s",
        {"key": queued.key},
    ) == [{"status": "dropped"}]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


# aiosmtpd warns that it requires AUTH without STARTTLS: under implicit TLS it need not.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_smtp_over_starttls_or_implicit_tls_with_a_login(
    mode: str,
    certificate: tuple[Path, Path],
    database_url: str,
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = SmtpSink(
        tls_context=context, implicit_tls=mode == "tls", credentials=("mailer", "s3cret-pass")
    ).start()
    settings = smtp_settings(
        database_url,
        tmp_path,
        server.port,
        SMTP_TLS=mode,
        SMTP_CA_FILE=str(cert),
        SMTP_USERNAME="mailer",
        SMTP_PASSWORD="s3cret-pass",
    )
    try:
        await notify(sessionmaker, database_url, to="client@example.com")
        await drain(resources_for(settings, sessionmaker))
        [mail] = server.wait_for(1)
    finally:
        server.stop()

    assert mail.tls is True
    assert mail.authenticated_as == "mailer"
    assert mail.message["Subject"] == "Your expert application was approved"
    assert "Strong Solidity portfolio." in mail.part("plain")


async def _at_least(count: Any, minimum: int) -> bool:
    return bool(await count() >= minimum)


async def _status(database_url: str, job_id: int | None, status: str) -> bool:
    return any(row["id"] == job_id and row["status"] == status for row in jobs(database_url))


async def _waiting_on_a_lock(database_url: str) -> bool:
    waiting = query(
        database_url,
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    return bool(waiting[0]["n"] > 0)


async def test_an_erasure_in_progress_holds_back_a_delivery_which_then_sends_and_records_nothing(
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    database_url: str,
) -> None:
    account_id = await add_account(sessionmaker, email="leaving@example.com")
    outbox = EmailOutbox(settings=mail_settings, sessionmaker=sessionmaker)
    async with sessionmaker() as erasure, erasure.begin():
        # What the erasure does first, then (much later) to the account row.
        await AccountRepository(erasure).lock(account_id)
        delivery = asyncio.create_task(
            outbox.deliver(
                key="welcome:leaving",
                kind="welcome",
                account_id=account_id,
                to="leaving@example.com",
                display_name="Leaving",
                context={"role": "client"},
            )
        )
        # The delivery waits for the erasure's row lock (seen from the server, not slept on).
        await eventually(lambda: _waiting_on_a_lock(database_url))
        assert not delivery.done()
        await erasure.execute(
            update(Account).where(Account.id == account_id).values(is_active=False)
        )

    assert await delivery is Outcome.recipient_inactive
    assert sink.received == []
    assert query(database_url, "SELECT count(*) AS n FROM email_deliveries") == [{"n": 0}]
