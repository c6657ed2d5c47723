"""Transactional enqueue: a job deferred in a request exists if and only if the request's
transaction commits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import APIRouter
from httpx import AsyncClient
from procrastinate import App
from procrastinate.testing import InMemoryConnector
from sqlalchemy import String, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.errors import Conflict
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.db.writes import transaction_wrote
from chainconsult.infra.jobs import DeferOptions, defer, defer_each, defer_many, deferring_each
from chainconsult.models import Account
from tests.helpers import count_rows, serving
from tests.infra.jobs.conftest import jobs
from tests.infra.jobs.tasks import record

router = APIRouter()

_LABELS = select(func.unnest(bindparam("labels", type_=ARRAY(String()))).label("label")).cte()
_ONE_JOB_PER_LABEL = deferring_each(record, _LABELS, {"label": _LABELS.c.label})


@router.post("/test/defer")
async def defer_then_maybe_fail(
    session: DbSession, label: str, fail: bool = False
) -> dict[str, int | None]:
    job_id = await defer(session, record, label=label)
    if fail:
        raise Conflict("forced failure after the job was deferred")
    return {"job_id": job_id}


@router.post("/test/defer-locked")
async def defer_twice_with_a_queueing_lock(session: DbSession, email: str) -> dict[str, object]:
    first = await defer(session, record, DeferOptions(queueing_lock="digest"), label="one")
    second = await defer(session, record, DeferOptions(queueing_lock="digest"), label="two")
    # The request's own writes carry on after the refused second job.
    session.add(Account(email=email, password_hash="x", display_name="Locked"))
    await session.flush()
    return {"first": first, "second": second}


@router.post("/test/defer-only")
async def defer_and_report_the_write(session: DbSession, batch: bool) -> dict[str, bool]:
    """A unit of work whose only write is a job: it must still count as a write, so a COMMIT
    lost afterwards is reported as an unknown outcome instead of being replayed."""
    if batch:
        await defer_many(session, record, [{"label": "a"}, {"label": "b"}])
    else:
        await defer(session, record, label="a")
    return {"wrote": transaction_wrote(session)}


@router.post("/test/defer-each")
async def defer_one_per_row(session: DbSession, fail: bool = False) -> dict[str, object]:
    ids = await defer_each(session, _ONE_JOB_PER_LABEL, {"labels": ["a", "b", "c"]})
    if fail:
        raise Conflict("forced failure after the jobs were deferred")
    return {"job_ids": ids, "wrote": transaction_wrote(session)}


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    app = create_app(settings)
    app.include_router(router)
    async with serving(app) as http:
        yield http


async def test_a_request_that_fails_after_deferring_leaves_no_job(
    app_client: AsyncClient, database_url: str
) -> None:
    response = await app_client.post("/test/defer", params={"label": "doomed", "fail": True})

    assert response.status_code == 409
    assert jobs(database_url, "tests.record") == []


async def test_a_committed_request_always_has_its_job(
    app_client: AsyncClient, database_url: str
) -> None:
    ids = []
    for n in range(20):
        response = await app_client.post("/test/defer", params={"label": f"kept-{n}"})
        assert response.status_code == 200
        ids.append(response.json()["job_id"])

    rows = jobs(database_url, "tests.record")
    assert [row["id"] for row in rows] == ids
    assert [row["args"] for row in rows] == [{"label": f"kept-{n}"} for n in range(20)]
    assert {row["status"] for row in rows} == {"todo"}
    assert {(row["queue_name"], row["priority"]) for row in rows} == {("low", 0)}


async def test_defer_each_queues_one_job_per_row_in_the_callers_transaction(
    app_client: AsyncClient, database_url: str
) -> None:
    failed = await app_client.post("/test/defer-each", params={"fail": True})
    assert failed.status_code == 409
    assert jobs(database_url, "tests.record") == []

    response = await app_client.post("/test/defer-each")

    assert response.status_code == 200, response.text
    rows = jobs(database_url, "tests.record")
    assert response.json() == {"job_ids": [row["id"] for row in rows], "wrote": True}
    assert sorted(row["args"]["label"] for row in rows) == ["a", "b", "c"]
    assert [row["args"] for row in rows] == [{"label": row["args"]["label"]} for row in rows]
    assert {(row["queue_name"], row["priority"], row["status"]) for row in rows} == {
        ("low", 0, "todo")
    }


def test_defer_each_refuses_a_task_with_a_queueing_lock() -> None:
    """A waiting duplicate would abort the whole statement, rows included."""
    other = App(connector=InMemoryConnector())

    @other.task(name="tests.locked", queueing_lock="digest")
    async def locked(label: str) -> None:
        del label

    with pytest.raises(ValueError, match="queueing lock"):
        deferring_each(locked, _LABELS, {"label": _LABELS.c.label})


async def test_a_queueing_lock_conflict_skips_the_job_without_aborting_the_request(
    app_client: AsyncClient, database_url: str
) -> None:
    response = await app_client.post("/test/defer-locked", params={"email": "l@example.com"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["first"], int)
    assert body["second"] is None
    assert [row["args"] for row in jobs(database_url, "tests.record")] == [{"label": "one"}]
    assert count_rows(database_url, "accounts") == 1


async def test_registration_defers_the_welcome_email_in_its_transaction(
    client: AsyncClient, database_url: str
) -> None:
    created = await client.post(
        "/api/v2/auth/register",
        json={"email": "ada@example.com", "password": "x" * 12, "display_name": "Ada"},
    )
    duplicate = await client.post(
        "/api/v2/auth/register",
        json={"email": "ADA@example.com", "password": "x" * 12, "display_name": "Ada 2"},
    )

    assert created.status_code == 201
    assert duplicate.status_code == 409
    welcome = jobs(database_url, "accounts.send_welcome_email")
    assert [row["args"] for row in welcome] == [{"account_id": created.json()["id"]}]
    assert welcome[0]["queue_name"] == "default"


@pytest.mark.parametrize("batch", [False, True], ids=["defer", "defer_many"])
async def test_deferring_counts_as_a_write_of_the_transaction(
    app_client: AsyncClient, batch: bool
) -> None:
    response = await app_client.post("/test/defer-only", params={"batch": batch})

    assert response.status_code == 200
    assert response.json() == {"wrote": True}
