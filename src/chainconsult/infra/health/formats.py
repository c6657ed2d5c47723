"""The shapes health is reported in: draft-inadarei-api-health-check (v2, brief and detailed)
and the v1 ``{status: healthy|degraded|unhealthy, timestamp, services}`` shape.

The public shapes (every GET) say only the status of each check: response times, pool use, cache
hit rate, queue depth and host figures would be a live gauge for an attacker (how close the
pool is to exhaustion, whether an attack is biting). Their numbers are in the detailed report
(POST /api/health, admins and TRUSTED_IPS), which is the only caller of ``detailed=True``."""

from __future__ import annotations

from typing import Any

from chainconsult import __version__
from chainconsult.infra.health.checks import Check, HealthReport

SERVICE_ID = "chainconsult"
_V1_STATUS = {"pass": "healthy", "warn": "degraded", "fail": "unhealthy"}


def _check_body(check: Check, time_iso: str, *, detailed: bool) -> dict[str, Any]:
    component = check.key.split(":", 1)[0]
    body: dict[str, Any] = {
        "componentId": component,
        "componentType": check.component_type,
        "status": check.status,
        "time": time_iso,
    }
    if not detailed:
        return body
    if check.observed_value is not None:
        body["observedValue"] = check.observed_value
    if check.observed_unit is not None:
        body["observedUnit"] = check.observed_unit
    if check.output:
        body["output"] = check.output
    if check.detail:
        body["detail"] = check.detail
    return body


def draft_body(
    report: HealthReport, *, uptime_s: float, detailed: bool = False, with_checks: bool = True
) -> dict[str, Any]:
    time_iso = report.at.isoformat().replace("+00:00", "Z")
    body: dict[str, Any] = {
        "status": report.status,
        "version": __version__.split(".")[0],
        "releaseId": __version__,
        "serviceId": SERVICE_ID,
        "description": "chainconsult API",
        "uptime": round(uptime_s, 3),
        "notes": report.notes,
    }
    if report.status != "pass":
        body["output"] = "; ".join(report.notes) or "a check is not passing"
    if with_checks:
        checks: dict[str, list[dict[str, Any]]] = {}
        for check in report.checks:
            checks.setdefault(check.key, []).append(_check_body(check, time_iso, detailed=detailed))
        body["checks"] = checks
    body["links"] = {"about": "/api/v2/docs"}
    return body


def v1_body(report: HealthReport, *, uptime_s: float) -> dict[str, Any]:
    """Public, so states only (see above)."""
    if not report.redis_configured:
        redis_state = "not_configured"
    else:
        redis_state = "up" if report.redis_ok else "down"
    jobs = report.jobs
    return {
        "status": _V1_STATUS[report.status],
        "timestamp": report.at.isoformat().replace("+00:00", "Z"),
        "version": __version__,
        "uptime_seconds": round(uptime_s, 3),
        "services": {
            "database": {"status": "up" if report.database_ok else "down"},
            "redis": {"status": redis_state},
            "cache": {"backend": "redis" if report.redis_ok else "memory"},
            "jobs": {"status": "not_installed" if jobs is None or not jobs.installed else "up"},
        },
    }
