"""The rate limit as a pure ASGI middleware: every request is counted before the application
runs, and every limited response says where the caller stands in ``RateLimit-Policy`` and
``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-10)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.http import send_problem
from chainconsult.infra.monitoring.metrics import rate_limit_decisions_total
from chainconsult.infra.ratelimit.limiter import Check, Decision
from chainconsult.infra.ratelimit.policies import (
    Identity,
    PolicySet,
    Quota,
    policy_header,
    ratelimit_header,
)
from chainconsult.infra.request_state import request_state
from chainconsult.infra.resources import resources_of
from chainconsult.infra.security.client_ip import client_network

log = structlog.get_logger(__name__)

Identify = Callable[[Scope], Awaitable[Identity | None]]
"""Resolves the caller of a request (bearer token or session cookie) to an account and its
plan; None for anonymous callers and for credentials that do not resolve."""

EXEMPT_POLICY = "trusted"
PROBE_POLICY = "probe"
_SAFE = frozenset({"GET", "HEAD"})


async def anonymous(scope: Scope) -> Identity | None:
    """The identify function when no accounts are wired in: everyone is counted by IP."""
    return None


class RateLimitMiddleware:
    """Runs after the client IP is known (``RequestState.client_ip``). TRUSTED_IPS
    (``RequestState.client_trusted``) pass uncounted, and so do GET and HEAD on
    ``probe_paths``: a load balancer polling readiness from one address must never read a 429
    as "node down", and those answers are cached and cheap. Preflights are answered by the
    CORS middleware outside this one and never reach it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policies: PolicySet,
        identify: Identify = anonymous,
        probe_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.policies = policies
        self.identify = identify
        self.probe_paths = probe_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = request_state(scope)
        if state.client_trusted:
            rate_limit_decisions_total.labels(EXEMPT_POLICY, "exempt").inc()
            await self.app(scope, receive, send)
            return
        if scope["method"] in _SAFE and scope["path"] in self.probe_paths:
            rate_limit_decisions_total.labels(PROBE_POLICY, "exempt").inc()
            await self.app(scope, receive, send)
            return
        client_ip = client_network(state.client_ip or _peer(scope))
        identity = await self._identify(scope)
        caller = self.policies.for_identity(identity)
        subject = identity.key if identity is not None else f"ip:{client_ip}"
        method = scope["method"]
        checks = [
            Check(quota, f"ip:{client_ip}", 1)
            for group in self.policies.groups_for(method, scope["path"])
            for quota in group.policy.quotas
        ]
        cost = self.policies.cost(method)
        # A write costs more, but never more than a whole quota, or it could never pass.
        checks += [Check(quota, subject, min(cost, quota.quota)) for quota in caller.quotas]
        # The lifespan's limiter (one per process, on its shared Redis pool).
        limiter = resources_of(scope["app"]).limiter
        decision = await limiter.decide(subject, checks)
        headers = _headers(decision)
        if not decision.allowed:
            assert decision.limited_by is not None
            policy = caller.name if decision.penalized else decision.limited_by.name
            rate_limit_decisions_total.labels(policy, "limited").inc()
            await self._refuse(scope, send, decision, policy, headers)
            return
        for check in checks:
            _allowed(check.quota.name).inc()

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_limits)

    async def _identify(self, scope: Scope) -> Identity | None:
        try:
            return await self.identify(scope)
        except Exception:
            # This middleware sits outside the problem handlers: a failing lookup (database
            # down) must not become a bare 500 here. Count the caller by IP; the route's own
            # authentication reports the failure properly.
            log.exception("ratelimit_identify_failed", path=scope.get("path"))
            return None

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        decision: Decision,
        policy: str,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        if decision.penalized:
            detail = (
                f"Requests keep exceeding the {policy!r} rate limit; all requests are refused "
                f"for {decision.retry_after} s."
            )
        else:
            detail = f"The {policy!r} rate limit is used up; retry in {decision.retry_after} s."
        await send_problem(
            scope,
            send,
            status=429,
            title="Too many requests",
            detail=detail,
            slug="rate-limited",
            headers={
                "Retry-After": str(decision.retry_after),
                **{name.decode(): value.decode() for name, value in headers},
            },
            policy=policy,
            retry_after=decision.retry_after,
        )


@functools.cache
def _allowed(policy: str) -> Counter:
    # One child per policy name, looked up once: labels() costs more than inc() itself.
    return rate_limit_decisions_total.labels(policy, "allowed")


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    if not decision.states:
        return []
    return [
        _policy_header(tuple([s.quota for s in decision.states])),
        (b"ratelimit", ratelimit_header(decision.states).encode()),
    ]


@functools.lru_cache(maxsize=256)
def _policy_header(quotas: tuple[Quota, ...]) -> tuple[bytes, bytes]:
    # The quotas of a request are one of a few fixed combinations (a tier's policy, plus an
    # endpoint group's): the same header every time.
    return (b"ratelimit-policy", policy_header(quotas).encode())
