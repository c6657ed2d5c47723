"""Outgoing httpx calls are client spans that send ``traceparent``: an alert webhook delivered
while a span is active shows in that span's trace, and the webhook receives the client span's
context (its own trace would continue ours)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chainconsult.infra.monitoring.alerts import AlertRecord, Escalation, Severity
from chainconsult.infra.tracing import active, start_tracing, stop_tracing
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
