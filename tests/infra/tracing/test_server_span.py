"""The server span: a child of the caller's span when it sends one, nothing recorded for a
request the sampler leaves out (the caller's unsampled ``traceparent``), and no span at all
for probes and metric scrapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chainconsult.app import create_app
from tests.conftest import make_settings
from tests.helpers import serving
from tests.infra.tracing.otlp import OtlpReceiver

SERVER = 2
_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
_CALLER = "00f067aa0ba902b7"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver().start()
    yield server
    server.stop()


async def test_server_spans_follow_the_caller_and_leave_out_probes(
    database_url: str, tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    app = create_app(make_settings(database_url, tmp_path))
    unsampled_trace = "0af7651916cd43dd8448eb211c80319c"
    async with serving(app) as http:
        assert (await http.get("/livez")).status_code == 200
        assert (await http.get("/readyz")).status_code in {200, 503}
        left_out = await http.get(
            "/api/v2/experts", headers={"traceparent": f"00-{unsampled_trace}-{_CALLER}-00"}
        )
        assert left_out.status_code == 200
        traced = await http.get(
            "/api/v2/experts", headers={"traceparent": f"00-{_TRACE}-{_CALLER}-01"}
        )
        assert traced.status_code == 200
    # The lifespan's end exported what was buffered.

    servers = [s for s in receiver.spans if s.kind == SERVER]
    assert [(s.trace_id, s.parent_span_id, s.name) for s in servers] == [
        (_TRACE, _CALLER, "GET /api/v2/experts")
    ]
    [server] = servers
    assert server.attributes["chainconsult.request_id"] == traced.headers["x-request-id"]
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["url.path"] == "/api/v2/experts"
    assert not [s for s in receiver.spans if s.trace_id == unsampled_trace]
