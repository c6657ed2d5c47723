"""Tracing is decided by the OTEL_* variables alone and is off by default, with nothing of it
installed; a job carries its trace context and runs wherever tracing is off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import String, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.app import create_app
from chainconsult.infra.jobs import JobResources, defer, defer_each, deferring_each
from chainconsult.infra.tracing import (
    TracingConfig,
    TracingMiddleware,
    active,
    add_trace_ids,
    start_tracing,
    stop_tracing,
    tracing_config,
)
from tests.conftest import make_settings
from tests.infra.jobs import tasks
from tests.infra.jobs.conftest import drain, jobs
from tests.infra.tracing.otlp import OtlpReceiver

_LABELS = select(func.unnest(bindparam("labels", type_=ARRAY(String()))).label("label")).cte()
_ONE_JOB_PER_LABEL = deferring_each(tasks.record, _LABELS, {"label": _LABELS.c.label})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"OTEL_SERVICE_NAME": "api", "OTEL_TRACES_SAMPLER": "always_on"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "console"}, ("console",)),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None),
    ],
)
def test_tracing_is_on_only_when_an_exporter_is_configured(
    environ: dict[str, str], expected: tuple[str, ...] | None
) -> None:
    assert tracing_config(environ) == (TracingConfig(expected) if expected else None)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver().start()
    yield server
    server.stop()


def test_off_by_default_nothing_is_installed(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(make_settings(database_url, tmp_path, LOG_LEVEL="INFO"))

    assert active() is None
    assert TracingMiddleware not in [m.cls for m in app.user_middleware]
    # The processor stays in the chain (see test_log_trace_ids.py) and adds nothing.
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}


async def test_a_job_carries_the_trace_and_runs_on_a_worker_without_tracing(
    receiver: OtlpReceiver,
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
) -> None:
    tasks.reset()
    assert start_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
    tracing = active()
    assert tracing is not None
    try:
        with tracing.tracer.start_as_current_span("request") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            async with sessionmaker() as session, session.begin():
                await defer(session, tasks.record, label="one")
                await defer_each(session, _ONE_JOB_PER_LABEL, {"labels": ["two", "three"]})
    finally:
        stop_tracing()

    carried = [
        job["args"]["_trace"]["traceparent"]
        for job in jobs(database_url, "tests.record")
        if job["args"]["label"] in ("one", "two", "three")
    ]
    assert [parent.split("-")[1] for parent in carried] == [trace_id] * 3
    await drain(job_resources)
    assert {"one", "two", "three"} <= {label for label, _ in tasks.started}


async def test_jobs_deferred_without_tracing_carry_no_trace(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session, session.begin():
        await defer(session, tasks.record, label="untraced-1")
        await defer_each(session, _ONE_JOB_PER_LABEL, {"labels": ["untraced-2"]})

    assert [
        job["args"]
        for job in jobs(database_url, "tests.record")
        if job["args"]["label"].startswith("untraced")
    ] == [{"label": "untraced-1"}, {"label": "untraced-2"}]
