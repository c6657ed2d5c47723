"""Sheds a login while the process's login gate is full, before its body is read or routed.

Such a login would be answered 503 login-busy by the gate anyway (``LoginGate.admitted``), but
only after the body guard, routing, the body's parsing and validation, the request's database
session and the problem handler: most of the event-loop CPU of a refused login, taken from
other users' requests, and a burst's refusals outnumber its checks twenty to one
(docs/decisions/0047-busy-logins-shed-before-routing.md). The answer is the gate's own
(``login_busy``). Installed just inside the rate limit: metrics, request id and logging,
security headers, the client-IP blocklist, CORS, API versions and the rate limit (which counts
the attempt first) wrap it exactly as they wrap the route, and the metrics label is the
route's template."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from chainconsult.accounts.endpoints import login
from chainconsult.accounts.throttle import LoginGate, login_busy
from chainconsult.infra.http import send_problem
from chainconsult.infra.monitoring.http_metrics import RouteLabel


class LoginBusyShortcut:
    def __init__(self, app: ASGIApp, *, gate: LoginGate, path: str, wait_seconds: float) -> None:
        self.app = app
        self.gate = gate
        self.path = path
        self.label = RouteLabel(path)
        self.wait_seconds = wait_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The gate first: while it has room, other requests pay one attribute check.
        if (
            self.gate.full
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == self.path
        ):
            scope["route"] = self.label
            busy = login_busy(self.wait_seconds)
            await send_problem(
                scope,
                send,
                status=busy.status_code,
                title=busy.title,
                detail=busy.detail,
                slug=busy.slug,
                headers=busy.headers,
                **busy.extensions,
            )
            return
        await self.app(scope, receive, send)


def install_login_shortcut(app: FastAPI, wait_seconds: float) -> None:
    app.add_middleware(
        LoginBusyShortcut,
        gate=app.state.login_gate,
        # The API route's own path (v1 and unversioned logins arrive here rewritten onto it).
        path=str(app.url_path_for(login.__name__)),
        wait_seconds=wait_seconds,
    )
