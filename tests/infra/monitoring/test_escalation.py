"""Deliveries to real HTTP receivers: retries through a receiver's bad moment, routing by
severity, and the PagerDuty acknowledgement when an admin acknowledges a paged alert."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from httpx import AsyncClient
from psycopg.types.json import Jsonb

from chainconsult.app import create_app
from chainconsult.infra.monitoring.alerts import AlertRecord, Escalation, Severity
from tests.conftest import make_settings
from tests.helpers import login, promote_to_admin, register, serving
from tests.infra.monitoring.receiver import Receiver, http_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as running:
        yield running


def escalation_to(receiver: Receiver) -> Escalation:
    return Escalation(
        webhook_urls=[f"{receiver.base_url}/slack"],
        pagerduty_url=f"{receiver.base_url}/pagerduty",
        pagerduty_routing_key="R0UTINGKEY0000000000000000000000",
    )


async def test_a_delivery_retries_until_the_receiver_accepts(receiver: Receiver) -> None:
    receiver.failures_left = 2
    escalation = escalation_to(receiver)
    alert = AlertRecord(
        fingerprint="f" * 64, rule="high_error_rate", severity=Severity.high, summary="errors"
    )
    alert.notified_channels = escalation.channels_for(alert.severity)

    await escalation.dispatch(alert, "trigger")
    await escalation.aclose()

    assert receiver.attempts == 3
    assert [m["text"] for m in receiver.at("/slack")] == [":rotating_light: [FIRING] [HIGH] errors"]


async def test_severity_decides_the_channels(receiver: Receiver) -> None:
    escalation = escalation_to(receiver)
    without_pager = Escalation(
        webhook_urls=[], pagerduty_url=f"{receiver.base_url}/pagerduty", pagerduty_routing_key=None
    )

    assert escalation.channels_for(Severity.critical) == ["pagerduty", "webhook"]
    assert escalation.channels_for(Severity.high) == ["webhook"]
    assert escalation.channels_for(Severity.medium) == []
    assert escalation.channels_for(Severity.low) == []
    assert without_pager.channels_for(Severity.critical) == []
    await escalation.aclose()
    await without_pager.aclose()


@pytest.fixture
async def paging_client(
    database_url: str, receiver: Receiver, tmp_path: Path
) -> AsyncIterator[AsyncClient]:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        PAGERDUTY_EVENTS_URL=f"{receiver.base_url}/pagerduty",
        PAGERDUTY_ROUTING_KEY="R0UTINGKEY0000000000000000000000",
    )
    app = create_app(settings)
    async with serving(app) as http:
        yield http


async def test_acknowledging_a_paged_alert_acknowledges_it_in_pagerduty(
    paging_client: AsyncClient, receiver: Receiver, database_url: str
) -> None:
    account = await register(paging_client)
    promote_to_admin(database_url, account["id"])
    headers = await login(paging_client, account["email"])
    alert_id, fingerprint = str(uuid.uuid4()), uuid.uuid4().hex * 2
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO alerts (id, fingerprint, rule, severity, status, summary, details, "
            "first_seen_at, last_seen_at, notified_channels) VALUES "
            "(%s, %s, 'database_down', 'critical', 'firing', 'db down', '{}', now(), now(), %s)",
            (alert_id, fingerprint, Jsonb(["pagerduty", "webhook"])),
        )

    response = await paging_client.post(f"/api/v2/admin/alerts/{alert_id}/ack", headers=headers)

    assert response.status_code == 200
    event = await asyncio.to_thread(
        receiver.wait_for, "/pagerduty", lambda e: e["event_action"] == "acknowledge", 10.0
    )
    assert event["dedup_key"] == fingerprint
    assert "payload" not in event
