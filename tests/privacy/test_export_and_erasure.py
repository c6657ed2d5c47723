"""Done-when 4 (GDPR): the export holds the user's rows from every table that has them, and
after erasure no personal value of the user is left in any column of any table. Both checks
read the schema from information_schema, so tables added later are covered without edits.
The person has received emails and has failed email jobs (a mail server refusing their
address), so the job queue's tables are part of the story."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.schedules import worker_resources
from tests.conftest import make_settings
from tests.helpers import PASSWORD
from tests.infra.jobs.conftest import FAST_JOBS, drain
from tests.market import (
    admin,
    application_body,
    approved_expert,
    client_account,
    libpq,
    project_body,
    proposal_body,
    query,
    snapshot,
)
from tests.smtp import SmtpSink

MARK = "zq7mark"
EMAIL = f"{MARK}.person@example.com"
NAME = f"Zed {MARK} Zebra"
AGENT = f"Browser/{MARK}-agent"
IP = "203.0.113.77"
WALLET = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
PERSONAL_VALUES = [MARK, EMAIL, NAME, AGENT, IP, WALLET, WALLET.lower()]


@pytest.fixture
async def clients(settings: Settings) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    """Everyone else on one address; the person whose data is erased on their own."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        others = ASGITransport(app=manager.app, client=("127.0.0.1", 50000))
        person = ASGITransport(app=manager.app, client=(IP, 50001))
        async with (
            AsyncClient(transport=others, base_url="http://testserver") as http,
            AsyncClient(
                transport=person, base_url="http://testserver", headers={"User-Agent": AGENT}
            ) as own,
        ):
            yield http, own


@pytest.fixture
def deliver(
    database_url: str,
    tmp_path: Path,
    sink: SmtpSink,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Callable[[], Awaitable[None]]:
    """Run the job queue until it is empty, sending email to the real SMTP server."""
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        EMAIL_SERVICE="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port),
        SMTP_TLS="none",
        **FAST_JOBS,
    )
    return lambda: drain(worker_resources(settings, sessionmaker))


def fk_columns_to_accounts(database_url: str) -> list[tuple[str, str]]:
    rows = query(
        database_url,
        """
        SELECT kcu.table_name, kcu.column_name
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu
          ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema
        JOIN information_schema.constraint_column_usage ccu
          ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema
        WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = 'public'
          AND ccu.table_name = 'accounts' AND ccu.column_name = 'id'
        """,
    )
    return [(table, column) for table, column in rows] + [("accounts", "id")]


def rows_about(database_url: str, account_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table that references the account through a foreign key."""
    columns: dict[str, list[str]] = {}
    for table, column in fk_columns_to_accounts(database_url):
        columns.setdefault(table, []).append(column)
    rows = {}
    for table, cols in columns.items():
        condition = " OR ".join(f't."{col}" = %s' for col in cols)
        found = query(
            database_url,
            f'SELECT to_jsonb(t) FROM "{table}" t WHERE {condition}',
            *([account_id] * len(cols)),
        )
        rows[table] = [row[0] for row in found]
    return rows


def exported(row: dict[str, Any], export_rows: list[dict[str, Any]]) -> bool:
    """The stored row is in the export: every exported column equal, and nothing but
    secrets left out."""
    secrets = {"password_hash", "token_hash"}
    return any(
        set(row) - secrets <= set(item) and all(row[key] == item[key] for key in item)
        for item in export_rows
    )


def personal_values_left(
    database_url: str, values: list[str] = PERSONAL_VALUES
) -> list[tuple[str, str, str]]:
    """(table, column, value) for every personal value still found anywhere."""
    patterns = [f"%{value}%" for value in values]
    found = []
    # One connection and one scan per column (each value its own count): a connection per
    # probe made this check alone take seconds.
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        columns = conn.execute(
            """
            SELECT c.table_name, c.column_name
            FROM information_schema.columns c
            JOIN information_schema.tables t
              ON t.table_name = c.table_name AND t.table_schema = c.table_schema
            WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
              AND c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json',
                                  'ARRAY', 'inet', 'cidr', 'USER-DEFINED', 'bytea')
            """
        ).fetchall()
        for table, column in columns:
            counts = conn.execute(
                "SELECT "
                + ", ".join(f'count(*) FILTER (WHERE "{column}"::text ILIKE %s)' for _ in values)
                + f' FROM "{table}"',
                patterns,
            ).fetchone()
            assert counts is not None
            hits = zip(values, counts, strict=True)
            found.extend((table, column, value) for value, count in hits if count)
    return found


async def build_history(
    http: AsyncClient,
    own: AsyncClient,
    database_url: str,
    sink: SmtpSink,
    deliver: Callable[[], Awaitable[None]],
) -> dict[str, Any]:
    """The person is both an expert and a client, with rows in every marketplace table. The
    first emails reach them; then the mail server refuses their address, so every later one
    fails for good (the error text names the address)."""
    admin_headers = await admin(http, database_url)
    registered = await own.post(
        "/api/v2/auth/register",
        json={"email": EMAIL, "password": PASSWORD, "display_name": NAME, "role": "expert"},
    )
    person = registered.json()
    failed = await own.post("/api/v2/auth/login", json={"email": EMAIL, "password": "wrong pw!"})
    assert failed.status_code == 401
    token = (
        await own.post("/api/v2/auth/login", json={"email": EMAIL, "password": PASSWORD})
    ).json()["access_token"]
    own.headers["Authorization"] = f"Bearer {token}"
    application = await own.post(
        "/api/v2/expert-applications",
        json=application_body(
            headline=f"Headline {MARK}",
            bio=f"A bio that names {MARK} several times over.",
            portfolio_links=[f"https://{MARK}.example.com/work"],
            wallet_address=WALLET,
        ),
    )
    await http.post(
        f"/api/v2/admin/expert-applications/{application.json()['id']}/decision",
        json={"decision": "approve", "note": "ok"},
        headers=admin_headers,
    )
    await deliver()
    assert {mail.message["Subject"] for mail in sink.messages_to(EMAIL)} == {
        f"Welcome to chainconsult, {NAME}",
        "Confirm your email address for chainconsult",
        "Your expert application was approved",
    }
    sink.refuse.add(EMAIL)

    partner, partner_headers = await approved_expert(http, admin_headers, name="Partner")
    _, other_client = await client_account(http, "Other client")

    # As a client: a finished and reviewed project, and an open one with a pending proposal.
    done = (await own.post("/api/v2/projects", json=project_body())).json()
    bid = await http.post(
        f"/api/v2/projects/{done['id']}/proposals", json=proposal_body(), headers=partner_headers
    )
    await own.post(f"/api/v2/proposals/{bid.json()['id']}/accept")
    await own.post(f"/api/v2/projects/{done['id']}/complete")
    review = await own.post(
        f"/api/v2/projects/{done['id']}/review", json={"rating": 5, "text": "Solid work"}
    )
    assert review.status_code == 201
    unhired = (await own.post("/api/v2/projects", json=project_body())).json()
    pending = await http.post(
        f"/api/v2/projects/{unhired['id']}/proposals",
        json=proposal_body(),
        headers=partner_headers,
    )

    # As an expert: hired, delivered and reviewed; plus a pending bid and an invitation.
    hired = (await http.post("/api/v2/projects", json=project_body(), headers=other_client)).json()
    mine = await own.post(
        f"/api/v2/projects/{hired['id']}/proposals",
        json=proposal_body(cover_letter=f"Cover letter from {MARK}, who is great."),
    )
    await http.post(f"/api/v2/proposals/{mine.json()['id']}/accept", headers=other_client)
    await http.post(f"/api/v2/projects/{hired['id']}/complete", headers=other_client)
    await http.post(
        f"/api/v2/projects/{hired['id']}/review",
        json={"rating": 4, "text": "Good"},
        headers=other_client,
    )
    invite = (
        await http.post(
            "/api/v2/projects",
            json=project_body(visibility="invite_only", invited_experts=[person["id"]]),
            headers=other_client,
        )
    ).json()
    bidding = await own.post(f"/api/v2/projects/{invite['id']}/proposals", json=proposal_body())
    assert bidding.status_code == 201
    await deliver()
    failed_jobs = query(
        database_url, "SELECT count(*) FROM job_failures WHERE error ILIKE %s", f"%{EMAIL}%"
    )
    assert failed_jobs[0][0] >= 5
    return {
        "person": person,
        "partner": partner,
        "partner_headers": partner_headers,
        "done": done,
        "unhired": unhired,
        "pending": pending.json(),
        "hired": hired,
        "accepted_bid": mine.json(),
        "admin_headers": admin_headers,
    }


async def test_export_contains_the_rows_of_every_table_that_has_them(
    clients: tuple[AsyncClient, AsyncClient],
    database_url: str,
    sink: SmtpSink,
    deliver: Callable[[], Awaitable[None]],
) -> None:
    http, own = clients
    history = await build_history(http, own, database_url, sink, deliver)
    person_id = history["person"]["id"]

    response = await own.get("/api/v2/me/export")

    assert response.status_code == 200
    export = response.json()
    for table, rows in rows_about(database_url, person_id).items():
        for row in rows:
            assert exported(row, export["tables"].get(table, [])), (table, row)
    for table in (
        "accounts",
        "expert_applications",
        "expert_profiles",
        "projects",
        "project_invitations",
        "proposals",
        "reviews",
        "notifications",
        "account_sessions",
        "audit_log",
        "email_deliveries",
        "job_failures",
        "procrastinate_jobs",
        "procrastinate_events",
    ):
        assert export["tables"][table], f"the history should have rows in {table}"
    # Every email sent or refused to the person, and the failed attempts' error texts.
    deliveries = export["tables"]["email_deliveries"]
    assert {row["recipient"] for row in deliveries} == {EMAIL}
    assert {row["status"] for row in deliveries} == {"sent", "failed"}
    assert all(EMAIL in row["error"] for row in export["tables"]["job_failures"])
    exported_jobs = {row["id"] for row in export["tables"]["procrastinate_jobs"]}
    assert {row["job_id"] for row in export["tables"]["job_failures"]} <= exported_jobs
    assert {row["args"].get("account_id") for row in export["tables"]["procrastinate_jobs"]} == {
        None,
        person_id,
    }
    assert export["tables"]["accounts"][0]["email"] == EMAIL
    assert "password_hash" not in export["tables"]["accounts"][0]
    assert all("token_hash" not in row for row in export["tables"]["account_sessions"])
    assert any(row["ip"] == IP for row in export["tables"]["audit_log"])


async def test_erasure_leaves_no_personal_value_anywhere(
    clients: tuple[AsyncClient, AsyncClient],
    database_url: str,
    sink: SmtpSink,
    deliver: Callable[[], Awaitable[None]],
) -> None:
    http, own = clients
    history = await build_history(http, own, database_url, sink, deliver)
    person_id = history["person"]["id"]
    # The scan does find them before, in the job queue's tables too.
    assert {"email_deliveries", "job_failures"} <= {
        table for table, _, _ in personal_values_left(database_url)
    }

    before = snapshot(database_url)
    wrong = await own.request("DELETE", "/api/v2/me", json={"password": "not my password"})
    assert wrong.status_code == 403
    assert snapshot(database_url) == before

    erased = await own.request("DELETE", "/api/v2/me", json={"password": PASSWORD})

    assert erased.status_code == 204
    assert personal_values_left(database_url) == []
    # No job about the person is left to run or to read.
    assert query(
        database_url,
        "SELECT count(*) FROM procrastinate_jobs WHERE args->>'account_id' = %s",
        person_id,
    ) == [(0,)]
    # The queue runs on: the bidder on the deleted project hears it was cancelled, the
    # erased person gets nothing more, and nothing personal comes back.
    before_erasure = len(sink.received)
    await deliver()
    [cancelled] = sink.received[before_erasure:]
    assert cancelled.recipients == [history["partner"]["email"]]
    assert "The client cancelled" in cancelled.part("plain")
    assert personal_values_left(database_url) == []
    # Every session is revoked and the account can never log in again.
    assert (await own.get("/api/v2/auth/me")).status_code == 401
    relogin = await http.post("/api/v2/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert relogin.status_code == 401
    # Gone from the directory.
    assert (await http.get(f"/api/v2/experts/{person_id}")).status_code == 404
    # What counterparties keep stays, anonymised.
    assert query(
        database_url,
        "SELECT reviewer_id, rating, text FROM reviews WHERE project_id = %s",
        history["done"]["id"],
    ) == [(None, 5, "Solid work")]
    assert query(
        database_url,
        "SELECT status, price_amount::text, cover_letter FROM proposals WHERE id = %s",
        history["accepted_bid"]["id"],
    ) == [("accepted", "9000.00", "")]
    assert query(
        database_url, "SELECT status FROM projects WHERE id = %s", history["done"]["id"]
    ) == [("completed",)]
    partner_rating = await http.get(f"/api/v2/experts/{history['partner']['id']}")
    assert partner_rating.json()["rating"] == {"average": "5.00", "count": 1}
    # The open project nobody was hired for is gone; its bidder was told.
    assert query(
        database_url, "SELECT count(*) FROM projects WHERE id = %s", history["unhired"]["id"]
    ) == [(0,)]
    partner_inbox = await http.get("/api/v2/notifications", headers=history["partner_headers"])
    latest = partner_inbox.json()["data"][0]
    assert latest["kind"] == "proposal_declined"
    assert latest["payload"]["reason"] == "project_cancelled"
    # The audit log records the erasure, with no personal data.
    log = await http.get(
        "/api/v2/admin/audit-log",
        params={"action": "account.erased"},
        headers=history["admin_headers"],
    )
    entry = log.json()["data"][0]
    assert (entry["resource_id"], entry["ip"], entry["user_agent"]) == (person_id, None, None)
