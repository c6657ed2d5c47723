"""Where an alert goes: critical to PagerDuty (Events API v2) and the webhooks, high to the
webhooks (Slack incoming-webhook JSON), medium and low to the dashboard only. A resolution
(and a PagerDuty acknowledgement) goes to the channels the alert went to.

Deliveries run as tasks beside the evaluator and retry with backoff (stamina). They never wait
on the database, so a database-down page goes out while PostgreSQL is down. PagerDuty's
``dedup_key`` is the alert fingerprint, so two nodes triggering the same alert open one
incident. (Once job support lands, non-critical webhook deliveries can become jobs; until then
they retry in-process.)"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, Literal

import httpx
import stamina
import structlog

from chainconsult.infra.monitoring.alerts._model import AlertRecord, AlertStatus, Severity

log = structlog.get_logger("chainconsult.alerts")
Action = Literal["trigger", "resolve", "acknowledge"]
PAGERDUTY = "pagerduty"
WEBHOOK = "webhook"
_PD_SEVERITY = {
    Severity.critical: "critical",
    Severity.high: "error",
    Severity.medium: "warning",
    Severity.low: "info",
}
_EMOJI = {"trigger": ":rotating_light:", "resolve": ":white_check_mark:", "acknowledge": ":eyes:"}


def slack_payload(alert: AlertRecord, action: Action, *, source: str) -> dict[str, Any]:
    """Slack incoming-webhook JSON (also accepted by Mattermost, Rocket.Chat and Teams'
    Slack-compatible endpoints): ``text`` for notifications, ``blocks`` for the message."""
    state = {"trigger": "FIRING", "resolve": "RESOLVED", "acknowledge": "ACKNOWLEDGED"}[action]
    headline = f"[{state}] [{alert.severity.value.upper()}] {alert.summary}"
    facts = [
        f"*rule* `{alert.rule}`",
        f"*source* {source}",
        f"*first seen* {alert.first_seen_at.isoformat(timespec='seconds')}",
    ]
    if alert.resolved_at is not None:
        facts.append(f"*resolved* {alert.resolved_at.isoformat(timespec='seconds')}")
    return {
        "text": f"{_EMOJI[action]} {headline}",
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{_EMOJI[action]} *{headline}*"},
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(facts)}]},
        ],
    }


def pagerduty_payload(
    alert: AlertRecord, action: Action, *, routing_key: str, source: str
) -> dict[str, Any]:
    """An Events API v2 event; trigger carries the payload, resolve and acknowledge only the
    dedup key."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": alert.fingerprint,
    }
    if action == "trigger":
        event["payload"] = {
            "summary": alert.summary[:1024],
            "source": source,
            "severity": _PD_SEVERITY[alert.severity],
            "timestamp": alert.first_seen_at.isoformat(),
            "component": alert.rule.split("_", 1)[0],
            "group": "chainconsult",
            "class": alert.rule,
            "custom_details": alert.details,
        }
        event["client"] = "chainconsult"
    return event


class Escalation:
    def __init__(
        self,
        *,
        webhook_urls: list[str],
        pagerduty_url: str,
        pagerduty_routing_key: str | None,
        http: httpx.AsyncClient | None = None,
        attempts: int = 5,
        timeout_s: float = 30.0,
    ) -> None:
        self.webhook_urls = webhook_urls
        self.pagerduty_url = pagerduty_url
        self.routing_key = pagerduty_routing_key
        self._http = http
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.source = socket.gethostname()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def http(self) -> httpx.AsyncClient:
        """The client alerts go out on, made for the first alert delivered: building one loads
        the CA bundle into an SSL context (about 7 MB of memory in every API worker), and
        most processes never send an alert."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        return self._http

    def channels_for(self, severity: Severity) -> list[str]:
        channels = []
        if severity is Severity.critical and self.routing_key:
            channels.append(PAGERDUTY)
        if severity in {Severity.critical, Severity.high} and self.webhook_urls:
            channels.append(WEBHOOK)
        return channels

    def dispatch(self, alert: AlertRecord, action: Action) -> None:
        """Send in the background to ``alert.notified_channels``."""
        for channel in alert.notified_channels:
            if channel == PAGERDUTY and self.routing_key:
                body = pagerduty_payload(
                    alert, action, routing_key=self.routing_key, source=self.source
                )
                self._spawn(self.pagerduty_url, body, alert, action)
            elif channel == WEBHOOK and action != "acknowledge":
                for url in self.webhook_urls:
                    self._spawn(
                        url, slack_payload(alert, action, source=self.source), alert, action
                    )

    def _spawn(self, url: str, body: dict[str, Any], alert: AlertRecord, action: Action) -> None:
        task = asyncio.create_task(self._deliver(url, body, alert, action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, url: str, body: dict[str, Any], alert: AlertRecord, action: Action
    ) -> None:
        try:
            async for attempt in stamina.retry_context(
                on=httpx.HTTPError,
                attempts=self.attempts,
                timeout=self.timeout_s,
                wait_initial=0.2,
                wait_max=5.0,
            ):
                with attempt:
                    response = await self.http.post(url, json=body)
                    response.raise_for_status()
        except httpx.HTTPError as exc:
            log.error(
                "alert_delivery_failed",
                rule=alert.rule,
                action=action,
                target=httpx.URL(url).host,
                error=type(exc).__name__,
            )
        else:
            log.info("alert_delivered", rule=alert.rule, action=action, target=httpx.URL(url).host)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Let deliveries in flight finish (on shutdown), then give up on the rest."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in set(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def aclose(self) -> None:
        await self.drain()
        if self._http is not None:
            await self._http.aclose()


def acknowledgeable(alert: AlertRecord) -> bool:
    return alert.status is AlertStatus.firing and PAGERDUTY in alert.notified_channels
