"""A proposal, the platform's most frequent write, is one statement sent without a
transaction block: the project locked with the expert's standing, the proposal if every rule
holds, the owner's notification and its email job. Each statement (and BEGIN and COMMIT)
costs far more CPU in the ORM and the driver than its SQL does in PostgreSQL, and under load
each round trip is a turn of the event loop the request waits for, so a new one here should
be a decision. The statement writes all or nothing: when the unique index refuses the
proposal (a duplicate its standing check could not see), no notification or job is left
behind; a refused rule writes nothing either (test_forbidden_transitions.py)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import psycopg
import pytest
from httpx import AsyncClient
from sqlalchemy import event

from chainconsult.app import create_app
from chainconsult.infra.resources import resources_of
from chainconsult.models.projects import Project
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import notifying_from
from tests.conftest import make_settings
from tests.helpers import serving, statements_sent
from tests.market import (
    admin,
    approved_expert,
    client_account,
    libpq,
    project_body,
    proposal_body,
    query,
)


async def test_a_proposal_is_one_statement_without_begin_or_commit(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    # With Redis, as in production: the caller's login is read from it, not from the
    # database (without Redis every request reads it there: accounts/repository.py).
    app = create_app(make_settings(database_url, tmp_path, REDIS_URL=redis_url))
    async with serving(app) as http:
        admins = await admin(http, database_url)
        _, expert_headers = await approved_expert(http, admins, name="Ada")
        owner, owner_headers = await client_account(http, "Owner")
        project = await http.post("/api/v2/projects", json=project_body(), headers=owner_headers)
        assert project.status_code == 201, project.text
        # The caller's lookup is cached from here on: only the write itself is counted.
        assert (await http.get("/api/v2/auth/me", headers=expert_headers)).status_code == 200

        trace = tmp_path / "libpq.trace"
        with trace.open("w") as out, statements_sent(resources_of(app).engine) as sent:
            # libpq's log of the protocol messages: what psycopg sends on its own (BEGIN,
            # COMMIT) shows there and not in the statements SQLAlchemy sends.
            pool = resources_of(app).engine.sync_engine.pool
            event.listen(
                pool,
                "checkout",
                lambda dbapi, *_: dbapi.driver_connection.pgconn.trace(out.fileno()),
            )
            event.listen(
                pool, "checkin", lambda dbapi, *_: dbapi.driver_connection.pgconn.untrace()
            )
            proposed = await http.post(
                f"/api/v2/projects/{project.json()['id']}/proposals",
                json=proposal_body(),
                headers=expert_headers,
            )

    statements = [" ".join(statement.split()) for statement, _ in sent]
    assert proposed.status_code == 201, proposed.text
    assert len(statements) == 1, statements
    assert statements[0].startswith("WITH project AS (SELECT projects.id")
    assert "FOR UPDATE OF projects), proposal AS (INSERT INTO proposals" in statements[0]
    assert "proposal_received_notified AS (INSERT INTO notifications" in statements[0]
    assert "procrastinate_defer_jobs_v1" in statements[0]
    frontend = [
        line.split("\t")[3]
        for line in trace.read_text().splitlines()
        if line.split("\t")[1:2] == ["F"] and line.split("\t")[3] in {"Query", "Parse"}
    ]
    # The statement alone: no BEGIN, no COMMIT, no ping.
    assert frontend == ["Parse"] or frontend == ["Query"], trace.read_text()
    stored = query(
        database_url,
        "SELECT id, cover_letter, price_amount, status, created_at FROM proposals WHERE id = %s",
        proposed.json()["id"],
    )
    answer = proposed.json()
    assert len(stored) == 1
    assert stored[0][1] == answer["cover_letter"]
    assert str(stored[0][2]) == answer["price"]["amount"]
    assert stored[0][3] == answer["status"] == "pending"
    assert stored[0][4].isoformat().replace("+00:00", "Z") == answer["created_at"]
    # The owner's notice, built in SQL from the locked project, as notify() would write it.
    notices = query(
        database_url,
        "SELECT id, kind, payload FROM notifications WHERE recipient_id = %s",
        owner["id"],
    )
    assert [(kind, payload) for _, kind, payload in notices] == [
        (
            "proposal_received",
            {
                "project_id": project.json()["id"],
                "project_title": project.json()["title"],
                "proposal_id": answer["id"],
            },
        )
    ]
    jobs = query(
        database_url,
        "SELECT task_name FROM procrastinate_jobs WHERE args->>'notification_id' = %s",
        str(notices[0][0]),
    )
    assert jobs == [("notifications.send_email",)]


def test_a_notice_built_in_sql_must_carry_exactly_its_kinds_fields() -> None:
    with pytest.raises(ValueError, match="proposal_received payload needs"):
        notifying_from(
            NotificationKind.proposal_received,
            recipient=Project.client_id,
            payload={"project_id": Project.id},
            source=Project.__table__,
        )


async def _waiting_for_a_lock(database_url: str, timeout_s: float = 10) -> None:
    for _ in range(int(timeout_s / 0.02)):
        waiting = query(
            database_url,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        if waiting[0][0]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no statement waited for the project's row lock")


async def test_a_duplicate_only_the_unique_index_sees_is_409_and_writes_nothing(
    client: AsyncClient, database_url: str
) -> None:
    admins = await admin(client, database_url)
    expert, expert_headers = await approved_expert(client, admins, name="Ada")
    owner, owner_headers = await client_account(client, "Owner")
    project = await client.post("/api/v2/projects", json=project_body(), headers=owner_headers)
    project_id = project.json()["id"]
    jobs_before = query(database_url, "SELECT count(*) FROM procrastinate_jobs")[0][0]

    async with await psycopg.AsyncConnection.connect(libpq(database_url)) as holder:
        # Hold the project's row lock, as a concurrent proposal by the same expert would.
        await holder.execute("SELECT 1 FROM projects WHERE id = %s FOR UPDATE", (project_id,))
        proposing = asyncio.ensure_future(
            client.post(
                f"/api/v2/projects/{project_id}/proposals",
                json=proposal_body(),
                headers=expert_headers,
            )
        )
        await _waiting_for_a_lock(database_url)
        # The other proposal lands while ours waits: its standing check, on the snapshot
        # taken before the wait, cannot see it.
        await holder.execute(
            "INSERT INTO proposals (id, project_id, expert_id, cover_letter, price_amount, "
            "price_currency, estimated_days, status) "
            "VALUES (%s, %s, %s, 'the one that won the lock', 100, 'USD', 3, 'pending')",
            (uuid.uuid4(), project_id, expert["id"]),
        )
        await holder.commit()
        refused = await proposing

    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == "You already have an active proposal on this project."
    stored = query(
        database_url, "SELECT cover_letter FROM proposals WHERE project_id = %s", project_id
    )
    assert stored == [("the one that won the lock",)]
    owner_notices = query(
        database_url, "SELECT count(*) FROM notifications WHERE recipient_id = %s", owner["id"]
    )
    assert owner_notices == [(0,)]
    assert query(database_url, "SELECT count(*) FROM procrastinate_jobs")[0][0] == jobs_before
