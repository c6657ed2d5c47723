"""GET /api/v2/admin/alerts and POST /api/v2/admin/alerts/{id}/ack."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
from httpx import AsyncClient
from psycopg.types.json import Jsonb

from tests.helpers import login, promote_to_admin, register


def insert_alert(
    database_url: str,
    *,
    rule: str,
    severity: str = "high",
    status: str = "firing",
    minutes_ago: int = 0,
) -> str:
    alert_id = str(uuid.uuid4())
    seen = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO alerts (id, fingerprint, rule, severity, status, summary, details, "
            "first_seen_at, last_seen_at, notified_channels) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                alert_id,
                uuid.uuid4().hex,
                rule,
                severity,
                status,
                f"{rule} happened",
                Jsonb({"value": 1}),
                seen,
                seen,
                Jsonb(["webhook"]),
            ),
        )
    return alert_id


async def admin(client: AsyncClient, database_url: str) -> tuple[str, dict[str, str]]:
    account = await register(client)
    promote_to_admin(database_url, account["id"])
    return account["id"], await login(client, account["email"])


async def test_alerts_list_firing_newest_first_with_cursor(
    client: AsyncClient, database_url: str
) -> None:
    _, headers = await admin(client, database_url)
    newest = insert_alert(database_url, rule="high_error_rate", minutes_ago=1)
    older = insert_alert(database_url, rule="high_latency_p95", minutes_ago=5)
    insert_alert(database_url, rule="disk_filling", severity="low", status="resolved")

    first = await client.get("/api/v2/admin/alerts", params={"limit": 1}, headers=headers)
    assert first.status_code == 200
    page = first.json()
    assert [alert["id"] for alert in page["data"]] == [newest]
    assert page["data"][0]["status"] == "firing"
    assert page["data"][0]["notified_channels"] == ["webhook"]
    second = await client.get(
        "/api/v2/admin/alerts",
        params={"limit": 1, "cursor": page["next_cursor"]},
        headers=headers,
    )
    assert [alert["id"] for alert in second.json()["data"]] == [older]
    assert second.json()["next_cursor"] is None

    every = await client.get("/api/v2/admin/alerts", params={"status": "all"}, headers=headers)
    assert len(every.json()["data"]) == 3
    low = await client.get(
        "/api/v2/admin/alerts", params={"severity": "low", "status": "all"}, headers=headers
    )
    assert [alert["rule"] for alert in low.json()["data"]] == ["disk_filling"]


async def test_alerts_list_rejects_bad_filters_with_problems(
    client: AsyncClient, database_url: str
) -> None:
    _, headers = await admin(client, database_url)

    bad_status = await client.get(
        "/api/v2/admin/alerts", params={"status": "open"}, headers=headers
    )
    bad_cursor = await client.get("/api/v2/admin/alerts", params={"cursor": "%%%"}, headers=headers)

    assert bad_status.status_code == 422
    assert bad_status.headers["content-type"] == "application/problem+json"
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["parameter"] == "cursor"


async def test_alerts_are_for_admins_only(client: AsyncClient) -> None:
    account = await register(client)
    headers = await login(client, account["email"])
    client.cookies.clear()  # login also set the session cookie

    assert (await client.get("/api/v2/admin/alerts")).status_code == 401
    assert (await client.get("/api/v2/admin/alerts", headers=headers)).status_code == 403


async def test_acknowledging_stores_who_and_when_once(
    client: AsyncClient, database_url: str
) -> None:
    admin_id, headers = await admin(client, database_url)
    alert_id = insert_alert(database_url, rule="brute_force_spike")

    first = await client.post(f"/api/v2/admin/alerts/{alert_id}/ack", headers=headers)
    again = await client.post(f"/api/v2/admin/alerts/{alert_id}/ack", headers=headers)

    assert first.status_code == 200
    assert first.json()["acknowledged_by"] == admin_id
    assert again.json()["acknowledged_at"] == first.json()["acknowledged_at"]
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        row = conn.execute(
            "SELECT acknowledged_by FROM alerts WHERE id = %s", (alert_id,)
        ).fetchone()
    assert row is not None
    assert str(row[0]) == admin_id


async def test_acknowledging_an_unknown_alert_is_404(
    client: AsyncClient, database_url: str
) -> None:
    _, headers = await admin(client, database_url)

    response = await client.post(f"/api/v2/admin/alerts/{uuid.uuid4()}/ack", headers=headers)
    malformed = await client.post("/api/v2/admin/alerts/not-a-uuid/ack", headers=headers)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert malformed.status_code == 422


async def test_cookie_acknowledgement_needs_the_csrf_header(
    client: AsyncClient, database_url: str
) -> None:
    account = await register(client)
    promote_to_admin(database_url, account["id"])
    logged_in = await client.post(
        "/api/v2/auth/login",
        json={"email": account["email"], "password": "correct horse battery staple"},
    )
    assert logged_in.status_code == 200
    alert_id = insert_alert(database_url, rule="high_error_rate")

    without = await client.post(f"/api/v2/admin/alerts/{alert_id}/ack")
    with_header = await client.post(
        f"/api/v2/admin/alerts/{alert_id}/ack",
        headers={"X-CSRF-Token": client.cookies["csrf_token"]},
    )

    assert without.status_code == 403
    assert with_header.status_code == 200
