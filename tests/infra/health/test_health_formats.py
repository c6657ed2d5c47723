"""The health formats: draft-inadarei-api-health-check for v2, the v1 shape."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import jsonschema
import pytest
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.infra.health.checks import Check, HealthReport, PoolState
from chainconsult.infra.health.formats import draft_body
from tests.conftest import make_settings
from tests.helpers import serving

# draft-inadarei-api-health-check-06, sections 3 and 4, as a JSON Schema.
_CHECK_ITEM = {
    "type": "object",
    "properties": {
        "componentId": {"type": "string"},
        "componentType": {"type": "string"},
        "observedValue": {},
        "observedUnit": {"type": "string"},
        "status": {"enum": ["pass", "fail", "warn"]},
        "affectedEndpoints": {"type": "array", "items": {"type": "string"}},
        "time": {"type": "string", "format": "date-time"},
        "output": {"type": "string"},
        "links": {"type": "object"},
    },
    "required": ["status"],
}
DRAFT_SCHEMA = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"enum": ["pass", "fail", "warn"]},
        "version": {"type": "string"},
        "releaseId": {"type": "string"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "output": {"type": "string"},
        "checks": {
            "type": "object",
            "propertyNames": {"pattern": "^[^:]+(:[^:]+)?$"},
            "additionalProperties": {"type": "array", "items": _CHECK_ITEM},
        },
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
        "serviceId": {"type": "string"},
        "description": {"type": "string"},
    },
}
EVERY_CHECK = {
    "postgres:responseTime",
    "postgres:connections",
    "redis:responseTime",
    "cache:hitRate",
    "jobs:queueDepth",
    "jobs:oldestAge",
    "jobs:failedLastHour",
    "jobs:workerHeartbeatAge",
    "process:memory",
    "process:cpu",
    "disk:utilization",
}


def validate_draft(body: object) -> None:
    jsonschema.validate(body, DRAFT_SCHEMA, format_checker=jsonschema.FormatChecker())


async def test_v2_health_follows_the_draft_with_every_check(client: AsyncClient) -> None:
    response = await client.get("/api/v2/health")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json"
    body = response.json()
    validate_draft(body)
    assert set(body["checks"]) == EVERY_CHECK
    # No Redis configured: degraded, never failed.
    assert body["status"] == "warn"
    assert body["checks"]["postgres:responseTime"][0]["status"] == "pass"
    assert body["checks"]["redis:responseTime"][0]["status"] == "warn"
    assert "redis not configured" in body["notes"]


def numbers_in(body: object, path: str = "") -> dict[str, float]:
    """Every number in a JSON document, by its path (``checks.postgres:connections.0.x``)."""
    if isinstance(body, dict):
        items: Iterable[tuple[object, object]] = body.items()
    elif isinstance(body, list):
        items = enumerate(body)
    elif isinstance(body, int | float) and not isinstance(body, bool):
        return {path: body}
    else:
        return {}
    found: dict[str, float] = {}
    for key, value in items:
        found |= numbers_in(value, f"{path}.{key}" if path else str(key))
    return found


@pytest.mark.parametrize("path", ["/api/health", "/api/v1/health", "/api/v2/health"])
async def test_public_health_tells_each_check_status_but_no_number_but_uptime(
    client: AsyncClient, database_url: str, path: str
) -> None:
    """Pool use, response times, cache hit rate and queue depth would be a live gauge for an
    attacker; the contract's uptime is the one number the public shapes keep."""
    _put_jobs_in_the_queue(database_url)
    await client.get("/api/v2/experts")  # a cache lookup: the hit rate has a value

    response = await client.get(path)

    assert response.status_code == 200
    body = response.json()
    assert set(numbers_in(body)) <= {"uptime", "uptime_seconds"}
    if path == "/api/v2/health":
        for [check] in body["checks"].values():
            assert set(check) == {"componentId", "componentType", "status", "time"}
    if path == "/api/v1/health":
        assert body["services"]["database"] == {"status": "up"}
        assert body["services"]["jobs"] == {"status": "up"}


@pytest.fixture
async def trusted_client(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncClient]:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, TRUSTED_IPS="127.0.0.1")
    async with serving(create_app(settings)) as http:
        yield http


async def test_detailed_health_reads_the_job_tables(
    trusted_client: AsyncClient, database_url: str
) -> None:
    _put_jobs_in_the_queue(database_url)

    response = await trusted_client.post("/api/health")

    checks = response.json()["checks"]
    assert checks["jobs:queueDepth"][0]["observedValue"] == 2
    assert 89 <= checks["jobs:oldestAge"][0]["observedValue"] < 120
    assert checks["jobs:failedLastHour"][0]["observedValue"] == 1
    assert checks["jobs:failedLastHour"][0]["status"] == "warn"
    assert checks["jobs:workerHeartbeatAge"][0]["observedValue"] < 60
    assert checks["postgres:responseTime"][0]["observedUnit"] == "ms"
    assert checks["process:memory"][0]["observedValue"] > 0


def _put_jobs_in_the_queue(database_url: str) -> None:
    """Two jobs waiting (the oldest for 90 s), one failed, one worker."""
    import psycopg

    libpq = database_url.replace("+psycopg", "")
    with psycopg.connect(libpq, autocommit=True) as conn:
        # Rows as procrastinate writes them: its insert and update triggers add the events.
        conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) VALUES "
            "('default', 'send_email', '{}', 'todo'), ('default', 'send_email', '{}', 'todo'), "
            "('low', 'reindex', '{}', 'todo');"
            "UPDATE procrastinate_events SET at = now() - interval '90 seconds' "
            "WHERE job_id = (SELECT min(id) FROM procrastinate_jobs);"
            "UPDATE procrastinate_jobs SET status = 'doing' WHERE task_name = 'reindex';"
            "UPDATE procrastinate_jobs SET status = 'failed' WHERE task_name = 'reindex';"
            "INSERT INTO procrastinate_workers DEFAULT VALUES;"
        )


async def test_v1_health_has_the_v1_shape(client: AsyncClient) -> None:
    response = await client.get("/api/v1/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] in {"healthy", "degraded", "unhealthy"}
    assert body["status"] == "degraded"  # no Redis
    dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    services = body["services"]
    assert services["database"]["status"] == "up"
    assert services["redis"]["status"] == "not_configured"
    assert services["jobs"]["status"] == "up"
    assert services["cache"]["backend"] == "memory"


def test_a_failing_check_makes_the_draft_status_fail() -> None:
    now = dt.datetime.now(dt.UTC)
    report = HealthReport(
        checks=(
            Check("postgres:responseTime", "datastore", "fail", None, "ms", "unreachable"),
            Check("redis:responseTime", "datastore", "warn", None, "ms", "not configured"),
        ),
        at=now,
        database_ok=False,
        redis_configured=False,
        redis_ok=None,
        pool=PoolState(
            size=5, checked_out=0, overflow=0, capacity=15, exhausted_for_s=0, stays_exhausted=False
        ),
        jobs=None,
        process={"rss_bytes": 1.0, "cpu_percent": 0.0, "open_fds": 3.0},
        memory_ratio=0.5,
        disk_ratio=0.5,
    )

    body = draft_body(report, uptime_s=1.0)

    validate_draft(body)
    assert body["status"] == "fail"
    assert "database unreachable" in body["notes"]
