"""Erasure reaches the copies of a client's words in other people's rows: the titles of their
deleted projects in bidders' and invitees' notifications and email records, their name in
recorded invitation subjects (also of a record whose notification was purged), and stored log
lines quoting their address. What docs/privacy.md says erasure keeps stays: a hired project's
title with the expert who did the work, and the review they wrote. The database is dumped,
column by column, before and after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.accounts.repository import AccountRepository
from chainconsult.accounts.schemas import normalize_email
from chainconsult.accounts.throttle import account_key
from chainconsult.app import create_app
from chainconsult.infra.resources import resources_of
from chainconsult.mail.service import EmailOutbox, Outcome
from chainconsult.models import Account
from chainconsult.notifications.emails import compose
from chainconsult.privacy.quotes import REDACTED_SUBJECT
from chainconsult.privacy.tables import ERASED_PROJECT_TITLE
from chainconsult.schedules import worker_resources
from tests.conftest import make_settings
from tests.helpers import PASSWORD, login, register
from tests.infra.jobs.conftest import drain, eventually
from tests.mail.test_email_delivery import smtp_settings
from tests.market import admin, approved_expert, project_body, proposal_body, query
from tests.privacy.test_export_and_erasure import deliver, personal_values_left
from tests.smtp import SmtpSink

__all__ = ["deliver"]  # a fixture

MARK = "qx9erase"
EMAIL = f"{MARK}.client@example.com"
NAME = f"Quinn {MARK} Client"
ERASED = [MARK, EMAIL, NAME]
KEEP = "kp4kept"
KEPT_TITLE = f"Kept {KEEP} vault audit"
KEPT_REVIEW = f"Careful work, {KEEP} findings."


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    """The app with LOG_TO_DATABASE on, so stored log lines are part of the dump."""
    app = create_app(make_settings(database_url, tmp_path, REDIS_URL=None, LOG_TO_DATABASE="true"))
    async with LifespanManager(app) as manager:
        transport = ASGITransport(app=manager.app, client=("127.0.0.1", 50000))
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield app, http


async def client_history(
    http: AsyncClient, database_url: str, sink: SmtpSink, deliver: Callable[[], Awaitable[None]]
) -> dict[str, Any]:
    """The client posts a public project (matched to both experts, one bids), an invite-only
    one (the invitee is told) and a kept one the partner is hired for, delivers and reviews.
    The mail server refuses the client's address after the welcome, so their jobs fail with
    errors (and log lines) that name it."""
    admin_headers = await admin(http, database_url)
    partner, partner_headers = await approved_expert(http, admin_headers, name="Partner")
    invitee, _ = await approved_expert(http, admin_headers, name="Invitee")
    registered = await http.post(
        "/api/v2/auth/register", json={"email": EMAIL, "password": PASSWORD, "display_name": NAME}
    )
    assert registered.status_code == 201
    # Three open projects at once: beyond the free plan's quota.
    await http.post(
        f"/api/v2/admin/users/{registered.json()['id']}/plan",
        json={"plan": "pro"},
        headers=admin_headers,
    )
    token = await http.post("/api/v2/auth/login", json={"email": EMAIL, "password": PASSWORD})
    own = {"Authorization": f"Bearer {token.json()['access_token']}"}
    await deliver()
    sink.refuse.add(EMAIL)

    public = await http.post(
        "/api/v2/projects", json=project_body(title=f"Public {MARK} lending audit"), headers=own
    )
    private = await http.post(
        "/api/v2/projects",
        json=project_body(
            title=f"Private {MARK} bridge audit",
            visibility="invite_only",
            invited_experts=[invitee["id"]],
        ),
        headers=own,
    )
    kept = await http.post(
        "/api/v2/projects",
        json=project_body(
            title=KEPT_TITLE, visibility="invite_only", invited_experts=[partner["id"]]
        ),
        headers=own,
    )
    assert {public.status_code, private.status_code, kept.status_code} == {201}
    await deliver()
    bid = await http.post(
        f"/api/v2/projects/{public.json()['id']}/proposals",
        json=proposal_body(),
        headers=partner_headers,
    )
    hired = await http.post(
        f"/api/v2/projects/{kept.json()['id']}/proposals",
        json=proposal_body(),
        headers=partner_headers,
    )
    assert {bid.status_code, hired.status_code} == {201}
    kept_id = kept.json()["id"]
    await http.post(f"/api/v2/proposals/{hired.json()['id']}/accept", headers=own)
    await http.post(f"/api/v2/projects/{kept_id}/complete", headers=own)
    reviewed = await http.post(
        f"/api/v2/projects/{kept_id}/review", json={"rating": 5, "text": KEPT_REVIEW}, headers=own
    )
    assert reviewed.status_code == 201
    await deliver()
    return {
        "own": own,
        "partner": partner,
        "partner_headers": partner_headers,
        "invitee": invitee,
        "kept": kept_id,
    }


def found(database_url: str, values: list[str]) -> set[tuple[str, str]]:
    return {(table, column) for table, column, _ in personal_values_left(database_url, values)}


@pytest.mark.slow
async def test_erasure_removes_the_clients_words_from_other_peoples_rows_and_keeps_the_rest(
    served: tuple[FastAPI, AsyncClient],
    database_url: str,
    sink: SmtpSink,
    deliver: Callable[[], Awaitable[None]],
) -> None:
    app, http = served
    history = await client_history(http, database_url, sink, deliver)
    # A record of an email whose notification was purged since: only its subject tells.
    [[purged]] = query(
        database_url,
        "SELECT n.id FROM notifications n JOIN email_deliveries d"
        " ON d.idempotency_key = 'notification:' || n.id"
        " WHERE n.kind = 'project_invitation' AND n.recipient_id = %s",
        history["invitee"]["id"],
    )
    query(database_url, "DELETE FROM notifications WHERE id = %s", purged)
    await resources_of(app).monitoring.log_writer.flush()
    # The dump finds the client's words in other people's rows before the erasure.
    assert {
        ("notifications", "payload"),
        ("email_deliveries", "subject"),
        ("log_entries", "context"),
    } <= found(database_url, ERASED)

    erased = await http.request(
        "DELETE", "/api/v2/me", json={"password": PASSWORD}, headers=history["own"]
    )

    assert erased.status_code == 204
    await deliver()  # the bidder hears the project was cancelled
    await resources_of(app).monitoring.log_writer.flush()
    assert personal_values_left(database_url, ERASED) == []
    # The bidder's inbox and records keep the ids, with a placeholder for the title.
    inbox = await http.get("/api/v2/notifications", headers=history["partner_headers"])
    titles = {item["payload"].get("project_title") for item in inbox.json()["data"]}
    assert ERASED_PROJECT_TITLE in titles
    [cancelled] = sink.received[-1:]
    assert cancelled.recipients == [history["partner"]["email"]]
    assert (
        cancelled.message["Subject"] == f'Your proposal for "{ERASED_PROJECT_TITLE}" was declined'
    )
    assert query(
        database_url,
        "SELECT count(*) FROM email_deliveries WHERE subject = %s",
        REDACTED_SUBJECT,
    ) == [(4,)]  # two matches, two invitations (one of them orphaned)
    # Kept by docs/privacy.md's rules: the hired project and its review, with the expert.
    assert query(
        database_url, "SELECT title, status FROM projects WHERE id = %s", history["kept"]
    ) == [(KEPT_TITLE, "completed")]
    assert found(database_url, [KEEP]) == {
        ("projects", "title"),
        ("reviews", "text"),
        ("notifications", "payload"),
        ("email_deliveries", "subject"),
    }
    assert query(
        database_url,
        "SELECT DISTINCT recipient_id::text FROM notifications WHERE payload::text LIKE %s",
        f"%{KEEP}%",
    ) == [(history["partner"]["id"],)]


async def test_an_email_composed_before_its_clients_erasure_is_composed_again_not_sent(
    served: tuple[FastAPI, AsyncClient],
    database_url: str,
    tmp_path: Path,
    sink: SmtpSink,
    sessionmaker: async_sessionmaker[AsyncSession],
    deliver: Callable[[], Awaitable[None]],
) -> None:
    """The erasure commits between the job reading the project (title and client) and the
    delivery being claimed: the claim finds the quoted client erased, sends and records
    nothing, and the job's next composition finds the project gone."""
    _, http = served
    admin_headers = await admin(http, database_url)
    expert, _ = await approved_expert(http, admin_headers)
    await deliver()
    welcomed = sink.messages_to(expert["email"])
    own = await login(http, (await register(http, email=EMAIL, name=NAME))["email"])
    posted = await http.post(
        "/api/v2/projects", json=project_body(title=f"Public {MARK} lending audit"), headers=own
    )
    assert posted.status_code == 201
    [[notification_id]] = query(
        database_url,
        "SELECT id FROM notifications WHERE kind = 'project_matched' AND recipient_id = %s",
        expert["id"],
    )
    async with sessionmaker() as session:
        composed = await compose(session, notification_id)
    assert composed.quoting == {uuid.UUID(posted.json()["client_id"])}
    erased = await http.request("DELETE", "/api/v2/me", json={"password": PASSWORD}, headers=own)
    assert erased.status_code == 204
    outbox = EmailOutbox(
        settings=smtp_settings(database_url, tmp_path, sink.port), sessionmaker=sessionmaker
    )

    outcome = await outbox.deliver(
        key=f"notification:{notification_id}",
        kind=composed.kind,
        account_id=composed.account_id,
        to=composed.to,
        display_name=composed.display_name,
        context=composed.context.model_dump(mode="json"),
        quoting=composed.quoting,
    )

    assert outcome is Outcome.quoted_inactive
    assert query(
        database_url,
        "SELECT count(*) FROM email_deliveries WHERE idempotency_key = %s",
        f"notification:{notification_id}",
    ) == [(0,)]
    await deliver()
    assert sink.messages_to(expert["email"]) == welcomed
    assert personal_values_left(database_url, ERASED) == []


async def test_a_job_whose_quoted_client_is_erased_while_it_claims_composes_again(
    served: tuple[FastAPI, AsyncClient],
    database_url: str,
    tmp_path: Path,
    sink: SmtpSink,
    sessionmaker: async_sessionmaker[AsyncSession],
    deliver: Callable[[], Awaitable[None]],
) -> None:
    """The job composes while the client is active; its claim waits on the erasure's lock on
    the client's row; the erasure commits (the name is gone); the job composes again in the
    same run and the invitation names nobody."""
    _, http = served
    admin_headers = await admin(http, database_url)
    expert, _ = await approved_expert(http, admin_headers)
    client = await register(http, email=EMAIL, name=NAME)
    own = await login(http, EMAIL)
    await deliver()
    invited = await http.post(
        "/api/v2/projects",
        json=project_body(visibility="invite_only", invited_experts=[expert["id"]]),
        headers=own,
    )
    assert invited.status_code == 201
    worker = worker_resources(smtp_settings(database_url, tmp_path, sink.port), sessionmaker)

    async with sessionmaker() as erasure, erasure.begin():
        await AccountRepository(erasure).lock(uuid.UUID(client["id"]))
        draining = asyncio.create_task(drain(worker))
        await eventually(lambda: _waiting_on_a_lock(database_url))
        await erasure.execute(
            update(Account)
            .where(Account.id == uuid.UUID(client["id"]))
            .values(is_active=False, display_name="Deleted user")
        )
    await draining

    [invitation] = sink.messages_to(expert["email"])[-1:]
    assert invitation.message["Subject"].startswith('Deleted user invited you to propose on "')
    assert NAME not in invitation.part("plain")
    [[recorded]] = query(
        database_url,
        "SELECT subject FROM email_deliveries WHERE account_id = %s AND kind = %s",
        expert["id"],
        "project_invitation",
    )
    assert recorded == invitation.message["Subject"]


async def _waiting_on_a_lock(database_url: str) -> bool:
    rows = query(
        database_url,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    return bool(rows[0][0])


@pytest.mark.parametrize("email", ["İlkay.Erase@example.com", "ẞtraße.Erase@example.com"])
async def test_the_failed_login_counter_of_an_address_with_any_letters_is_exported_and_erased(
    client: AsyncClient, database_url: str, email: str
) -> None:
    # SQL's lower() and Python's disagree on some letters: the key is the throttle's own.
    account = await register(client, email=email)
    failed = await client.post(
        "/api/v2/auth/login", json={"email": email, "password": "not the password at all"}
    )
    headers = await login(client, account["email"])
    key = account_key(normalize_email(email))
    await client.post("/api/v2/auth/login", json={"email": email, "password": "wrong again"})

    export = (await client.get("/api/v2/me/export", headers=headers)).json()
    erased = await client.request(
        "DELETE", "/api/v2/me", json={"password": PASSWORD}, headers=headers
    )

    assert failed.status_code == 401
    assert [row["key"] for row in export["tables"]["login_failure_counters"]] == [key]
    assert erased.status_code == 204
    assert query(database_url, "SELECT key FROM login_failure_counters WHERE key = %s", key) == []
