"""Where an alert goes: critical to PagerDuty (Events API v2) and the webhooks, high to the
webhooks (Slack incoming-webhook JSON), medium and low to the dashboard only. A resolution
(and a PagerDuty acknowledgement) goes to the channels the alert went to.

A notification is owed in the host's spool (``_spool``) before it is sent, and sent by a task
beside the evaluator until the target accepts it, with backoff, for up to a day: a restart or a
receiver's bad hour delays a resolve, never loses it. Sending never waits on the database, so a
database-down page goes out while PostgreSQL is down. PagerDuty's ``dedup_key`` is the alert
fingerprint, so two hosts triggering the same alert open one incident."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import structlog

from chainconsult.infra.monitoring.alerts._model import (
    Action,
    AlertRecord,
    AlertStatus,
    Severity,
)
from chainconsult.infra.monitoring.alerts._spool import AlertSpool, Delivery, SpoolState, snapshot
from chainconsult.infra.tracing import continued_trace, trace_carrier

log = structlog.get_logger("chainconsult.alerts")
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
        spool: AlertSpool | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        attempt_timeout_s: float = 5.0,
        backoff_s: tuple[float, float] = (0.2, 300.0),
        give_up_after_s: float = 86_400.0,
    ) -> None:
        self.webhook_urls = webhook_urls
        self.pagerduty_url = pagerduty_url
        self.routing_key = pagerduty_routing_key
        self.spool = spool or AlertSpool(None)
        self._http = http
        self.clock = clock
        self.attempt_timeout_s = attempt_timeout_s
        self.backoff_s = backoff_s
        """First wait after a failed attempt and the longest; the wait doubles in between."""
        self.give_up_after_s = give_up_after_s
        self.source = socket.gethostname()
        self._targets = {PAGERDUTY: pagerduty_url} | {
            _webhook_target(url): url for url in webhook_urls
        }
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def http(self) -> httpx.AsyncClient:
        """The client alerts go out on, made for the first alert delivered: building one loads
        the CA bundle into an SSL context (about 7 MB of memory in every API worker), and
        most processes never send an alert."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.attempt_timeout_s))
        return self._http

    def channels_for(self, severity: Severity) -> list[str]:
        channels = []
        if severity is Severity.critical and self.routing_key:
            channels.append(PAGERDUTY)
        if severity in {Severity.critical, Severity.high} and self.webhook_urls:
            channels.append(WEBHOOK)
        return channels

    def deliveries_for(self, alert: AlertRecord, action: Action) -> list[Delivery]:
        """One delivery per target of ``alert.notified_channels`` (each webhook URL is one)."""
        targets = []
        for channel in alert.notified_channels:
            if channel == PAGERDUTY and self.routing_key:
                targets.append(PAGERDUTY)
            elif channel == WEBHOOK and action != "acknowledge":
                targets.extend(_webhook_target(url) for url in self.webhook_urls)
        now = self.clock()
        copy = snapshot(alert)
        trace = trace_carrier()
        return [
            Delivery(copy, action, target, created_at=now, due_at=now, trace=trace)
            for target in targets
        ]

    def owe(self) -> None:
        """Deliveries were added to the spool: send them now."""
        self._wake.set()

    async def dispatch(self, alert: AlertRecord, action: Action) -> None:
        """Owe ``action`` on every channel of ``alert`` and send it."""
        deliveries = self.deliveries_for(alert, action)
        if deliveries:
            await self.spool.change(lambda state: state.deliveries.extend(deliveries))
            self.owe()

    async def run(self, idle_s: float = 10.0) -> None:
        """Send what is owed until stopped; also look every ``idle_s`` for what other processes
        of the host owe and could not send (they crashed, or stopped before it was done)."""
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                pause = await self.deliver_due()
            except Exception:
                log.exception("alert_delivery_pass_failed")
                pause = idle_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle_s if pause is None else min(pause, idle_s)):
                    await self._wake.wait()

    async def deliver_due(self) -> float | None:
        """Send every delivery that is due (each once); the seconds until the next one is due,
        None when nothing is owed."""
        now = self.clock()
        until = now + self.attempt_timeout_s * 2

        def claim(state: SpoolState) -> tuple[list[Delivery], float | None]:
            return state.claim(now, until), state.next_due()

        claimed, next_due = await self.spool.change(claim)
        if claimed:
            sent = await asyncio.gather(*(self._send(delivery) for delivery in claimed))
            settled = self.clock()
            outcomes = {
                delivery.id: self._retry_at(delivery, settled, ok)
                for delivery, ok in zip(claimed, sent, strict=True)
            }

            def settle(state: SpoolState) -> float | None:
                state.settle(outcomes)
                return state.next_due()

            next_due = await self.spool.change(settle)
        return None if next_due is None else max(0.0, next_due - self.clock())

    def _retry_at(self, delivery: Delivery, now: float, ok: bool) -> float | None:
        if ok:
            return None
        if now - delivery.created_at >= self.give_up_after_s:
            log.error(
                "alert_delivery_abandoned",
                rule=delivery.alert.rule,
                action=delivery.action,
                attempts=delivery.attempts + 1,
            )
            return None
        first, longest = self.backoff_s
        return now + min(longest, first * 2.0**delivery.attempts)

    async def _send(self, delivery: Delivery) -> bool:
        """True when the delivery is done with: accepted, or refused for good (a 4xx other
        than 408 and 429: sending it again cannot help), or its target is no longer set up."""
        alert, action = delivery.alert, delivery.action
        url = self._targets.get(delivery.target)
        if url is None or (delivery.target == PAGERDUTY and not self.routing_key):
            log.warning("alert_delivery_dropped", rule=alert.rule, reason="target no longer set")
            return True
        if delivery.target == PAGERDUTY:
            assert self.routing_key is not None
            body = pagerduty_payload(
                alert, action, routing_key=self.routing_key, source=self.source
            )
        else:
            body = slack_payload(alert, action, source=self.source)
        target = httpx.URL(url).host
        try:
            with continued_trace(delivery.trace):
                response = await self.http.post(url, json=body, timeout=self.attempt_timeout_s)
        except httpx.HTTPError as exc:
            log.warning(
                "alert_delivery_failed",
                rule=alert.rule,
                action=action,
                target=target,
                error=type(exc).__name__,
            )
            return False
        if response.is_success:
            log.info("alert_delivered", rule=alert.rule, action=action, target=target)
            return True
        permanent = response.is_client_error and response.status_code not in {408, 429}
        log.warning(
            "alert_delivery_failed",
            rule=alert.rule,
            action=action,
            target=target,
            status=response.status_code,
            permanent=permanent,
        )
        return permanent

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Send what is owed for up to ``timeout_s`` (on shutdown, and in tests); what is left
        stays owed in the spool for the next process."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                # Waiting for a retry's due time, not for an event.
                while (pause := await self.deliver_due()) is not None:  # noqa: ASYNC110
                    await asyncio.sleep(max(pause, 0.01))

    async def stop(self, task: asyncio.Task[None] | None = None) -> None:
        self._stopping.set()
        self._wake.set()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def aclose(self) -> None:
        await self.stop()
        await self.drain()
        if self._http is not None:
            await self._http.aclose()


def _webhook_target(url: str) -> str:
    """A webhook's name in the spool: its URL is a secret and is not written there."""
    return f"{WEBHOOK}:{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def acknowledgeable(alert: AlertRecord) -> bool:
    return alert.status is AlertStatus.firing and PAGERDUTY in alert.notified_channels
