"""One proposal request is one trace: its HTTP server span, the SQL and Redis spans under it,
and the span of the email job it deferred with that job's SMTP send; every log line of the
request and of the job carries the trace id. Exported over OTLP/HTTP to a real receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chainconsult.app import create_app
from chainconsult.infra.monitoring.logging import flush_logs
from chainconsult.infra.resources import resources_of
from chainconsult.infra.tracing import active
from chainconsult.schedules import worker_resources
from tests.conftest import make_settings
from tests.helpers import serving
from tests.infra.jobs.conftest import FAST_JOBS, drain
from tests.infra.tracing.otlp import OtlpReceiver, ReceivedSpan
from tests.market import admin, approved_expert, client_account, project_body, proposal_body
from tests.smtp import SmtpSink

SERVER, CLIENT, CONSUMER = 2, 3, 5


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver().start()
    yield server
    server.stop()


def _descends_from(span: ReceivedSpan, ancestor: ReceivedSpan, spans: list[ReceivedSpan]) -> bool:
    by_id = {s.span_id: s for s in spans}
    current: ReceivedSpan | None = span
    while current is not None and current.parent_span_id:
        if current.parent_span_id == ancestor.span_id:
            return True
        current = by_id.get(current.parent_span_id)
    return False


def _log_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


async def test_a_proposal_request_is_one_trace_down_to_its_email_smtp_send(
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    receiver: OtlpReceiver,
    sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "chainconsult-test")
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=redis_url,
        LOG_LEVEL="INFO",
        EMAIL_SERVICE="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port),
        SMTP_TLS="none",
        **FAST_JOBS,
    )
    app = create_app(settings)
    async with serving(app) as http:
        admin_headers = await admin(http, database_url)
        _, expert = await approved_expert(http, admin_headers)
        owner, client = await client_account(http)
        posted = await http.post("/api/v2/projects", json=project_body(), headers=client)
        assert posted.status_code == 201, posted.text
        resources = worker_resources(settings, resources_of(app).sessionmaker)
        await drain(resources)  # the earlier steps' emails, out of the way
        flush_logs()
        capsys.readouterr()

        sent = await http.post(
            f"/api/v2/projects/{posted.json()['id']}/proposals",
            json=proposal_body(),
            headers=expert,
        )
        assert sent.status_code == 201, sent.text
        await drain(resources)
    # The lifespan's end wrote the last log lines, flushed the spans and stopped tracing.
    out = capsys.readouterr().out
    assert active() is None

    request_id = sent.headers["x-request-id"]
    [server] = [
        s
        for s in receiver.spans
        if s.kind == SERVER and s.attributes.get("chainconsult.request_id") == request_id
    ]
    assert server.service == "chainconsult-test"
    assert server.name == "POST /api/v2/projects/{project_id}/proposals"
    assert server.attributes["http.response.status_code"] == 201
    trace = [s for s in receiver.spans if s.trace_id == server.trace_id]
    below = [s for s in trace if _descends_from(s, server, trace)]
    assert [s for s in below if s.attributes.get("db.system") == "postgresql"], trace
    assert [s for s in below if s.attributes.get("db.system") == "redis"], trace
    [job] = [s for s in below if s.name == "job notifications.send_email"]
    assert job.kind == CONSUMER
    [smtp] = [s for s in trace if s.name == "smtp send"]
    assert smtp.kind == CLIENT
    assert smtp.parent_span_id == job.span_id or _descends_from(smtp, job, trace)
    assert smtp.attributes["server.port"] == sink.port
    subjects = [str(mail.message["Subject"]) for mail in sink.messages_to(owner["email"])]
    assert [s for s in subjects if s.startswith("New proposal")], subjects

    lines = _log_lines(out)
    of_request = [line for line in lines if line.get("request_id") == request_id]
    assert [line["event"] for line in of_request if line["event"] == "request"] == ["request"]
    assert {line.get("trace_id") for line in of_request} == {server.trace_id}
    [email_sent] = [
        line
        for line in lines
        if line["event"] == "email_sent" and str(line["subject"]).startswith("New proposal")
    ]
    # The job's own lines carry its trace too, even when the email transport's logger was
    # first used before tracing started (an earlier test in this process).
    assert email_sent["trace_id"] == server.trace_id
    assert email_sent["span_id"] in {s.span_id for s in trace}
