"""Alert listing and acknowledgement, and the numbers the status dashboard shows."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.errors import NotFound
from chainconsult.infra.db.session import after_commit
from chainconsult.infra.health.checks import HealthReport
from chainconsult.infra.monitoring.alerts import AlertRecord, acknowledgeable
from chainconsult.infra.monitoring.lifespan import Monitoring
from chainconsult.infra.monitoring.models import Alert
from chainconsult.infra.pagination import by_creation
from chainconsult.models.base import utcnow
from chainconsult.operations.repository import AlertRepository
from chainconsult.operations.schemas import AlertList, AlertResponse

log = structlog.get_logger("chainconsult.alerts")
SLOW_PANEL_TIMEOUT_S = 1.0


_NEWEST_FIRST = by_creation("alerts", lambda alert: (alert.first_seen_at.isoformat(), alert.id))


class AlertService:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = AlertRepository(session)
        self.session = session

    async def page(
        self, *, status: str | None, severity: str | None, limit: int, cursor: str | None
    ) -> AlertList:
        rows = await self.repository.page(
            status=status, severity=severity, limit=limit + 1, cursor=_NEWEST_FIRST.after(cursor)
        )
        return _NEWEST_FIRST.page(AlertList, rows, limit, AlertResponse.model_validate)

    async def acknowledge(
        self, *, alert_id: uuid.UUID, account_id: uuid.UUID, monitoring: Monitoring
    ) -> Alert:
        """Idempotent: acknowledging twice keeps the first acknowledgement. A paged alert is
        also acknowledged in PagerDuty once the transaction commits."""
        alert = await self.repository.get_for_update(alert_id)
        if alert is None:
            raise NotFound("No alert with this id.")
        if alert.acknowledged_at is None:
            alert.acknowledged_at = utcnow()
            alert.acknowledged_by = account_id
            await self.session.flush()
            log.info("alert_acknowledged", rule=alert.rule, alert_id=str(alert.id))
            record = AlertRecord.from_row(alert)
            if acknowledgeable(record):

                async def tell_pagerduty() -> None:
                    await monitoring.escalation.dispatch(record, "acknowledge")

                after_commit(self.session, tell_pagerduty)
        return alert


@dataclass(frozen=True, slots=True)
class DashboardData:
    report: HealthReport
    request_rate: float
    p95_ms: float | None
    error_rate: float | None
    cache_hit_rate: float | None
    window_s: float
    queue_depth: int | None
    alerts: list[Alert]
    failed_jobs: list[dict[str, Any]]
    slow_queries: list[dict[str, Any]]
    problems: list[Any]
    unavailable: list[str]


async def _optional(
    name: str, unavailable: list[str], provider: Any, *args: Any
) -> list[dict[str, Any]]:
    if provider is None:
        return []
    try:
        result: list[dict[str, Any]] = await asyncio.wait_for(provider(*args), SLOW_PANEL_TIMEOUT_S)
    except Exception:
        unavailable.append(name)
        return []
    return result


async def dashboard_data(session: AsyncSession, monitoring: Monitoring) -> DashboardData:
    report = await monitoring.health.report()
    traffic = monitoring.evaluator.cluster_traffic
    unavailable: list[str] = []
    providers = monitoring.providers
    failed_jobs = await _optional("failed jobs", unavailable, providers.failed_jobs, 10)
    slow = await _optional("slow queries", unavailable, providers.slow_queries, 10)
    repository = AlertRepository(session)
    alerts = list(await repository.page(status="firing", severity=None, limit=50, cursor=None))
    problems = list(await repository.recent_problems(15))
    p95 = traffic.latency_quantile(0.95)
    return DashboardData(
        report=report,
        request_rate=traffic.request_rate,
        p95_ms=p95 * 1000 if p95 is not None else None,
        error_rate=traffic.error_rate,
        cache_hit_rate=traffic.cache_hit_rate,
        window_s=traffic.seconds,
        queue_depth=report.jobs.depth
        if report.jobs is not None and report.jobs.installed
        else None,
        alerts=alerts,
        failed_jobs=failed_jobs,
        slow_queries=slow,
        problems=problems,
        unavailable=unavailable,
    )
