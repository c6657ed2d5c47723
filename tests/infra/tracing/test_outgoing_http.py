"""Outgoing httpx calls are client spans that send ``traceparent``: an alert webhook delivered
while a span is active shows in that span's trace, and the webhook receives the client span's
context (its own trace would continue ours); a delivery sent later from the spool is in the
trace of the request that made it owed."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from chainconsult.app import create_app
from chainconsult.infra.monitoring.alerts import AlertRecord, Escalation, Severity
from chainconsult.infra.tracing import active, start_tracing, stop_tracing
from tests.conftest import make_settings
from tests.helpers import login, promote_to_admin, register, serving
from tests.infra.tracing.otlp import OtlpReceiver

CLIENT = 3


class Webhook:
    """A real HTTP server on loopback that keeps the headers of every POST."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                webhook.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    running = Webhook()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver().start()
    yield server
    server.stop()


async def test_a_webhook_delivery_is_a_client_span_that_sends_its_context(
    receiver: OtlpReceiver, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    assert start_tracing()
    try:
        tracing = active()
        assert tracing is not None
        escalation = Escalation(
            webhook_urls=[f"{webhook.url}/slack"],
            pagerduty_url=f"{webhook.url}/pagerduty",
            pagerduty_routing_key=None,
        )
        alert = AlertRecord(
            fingerprint="f" * 64, rule="high_error_rate", severity=Severity.high, summary="x"
        )
        alert.notified_channels = escalation.channels_for(alert.severity)
        with tracing.tracer.start_as_current_span("alert fired") as fired:
            await escalation.dispatch(alert, "trigger")
            await escalation.aclose()
    finally:
        stop_tracing()  # exports what is buffered

    trace_id = format(fired.get_span_context().trace_id, "032x")
    [client] = [s for s in receiver.spans if s.kind == CLIENT and s.trace_id == trace_id]
    assert client.parent_span_id == format(fired.get_span_context().span_id, "016x")
    assert client.name == "POST"
    # The instrumentation's default conventions (OTEL_SEMCONV_STABILITY_OPT_IN=http: stable).
    assert client.attributes["http.status_code"] == 200
    assert client.attributes["http.url"] == f"{webhook.url}/slack"
    [headers] = webhook.headers
    version, sent_trace, sent_parent, flags = headers["traceparent"].split("-")
    assert (version, sent_trace, sent_parent) == ("00", trace_id, client.span_id)
    assert int(flags, 16) & 1  # sampled


async def test_the_pagerduty_acknowledgement_is_in_the_trace_of_the_admins_request(
    database_url: str,
    tmp_path: Path,
    receiver: OtlpReceiver,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sent later by the delivery loop, from the spool: the delivery carries the context."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        PAGERDUTY_EVENTS_URL=f"{webhook.url}/pagerduty",
        PAGERDUTY_ROUTING_KEY="R0UTINGKEY0000000000000000000000",
    )
    alert_id = str(uuid.uuid4())
    async with serving(create_app(settings)) as http:
        account = await register(http)
        promote_to_admin(database_url, account["id"])
        headers = await login(http, account["email"])
        with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO alerts (id, fingerprint, rule, severity, status, summary, details, "
                "first_seen_at, last_seen_at, notified_channels) VALUES (%s, %s, "
                "'database_down', 'critical', 'firing', 'db down', '{}', now(), now(), %s)",
                (alert_id, uuid.uuid4().hex * 2, Jsonb(["pagerduty"])),
            )
        acked = await http.post(f"/api/v2/admin/alerts/{alert_id}/ack", headers=headers)
        assert acked.status_code == 200
        for _ in range(200):
            if webhook.headers:
                break
            await asyncio.sleep(0.05)
    # The lifespan's end exported the spans.

    [server] = [
        s
        for s in receiver.spans
        if s.attributes.get("chainconsult.request_id") == acked.headers["x-request-id"]
    ]
    [sent] = webhook.headers
    assert sent["traceparent"].split("-")[1] == server.trace_id
    [client] = [s for s in receiver.spans if s.kind == CLIENT and s.name == "POST"]
    assert client.trace_id == server.trace_id
    assert sent["traceparent"].split("-")[2] == client.span_id
