"""A problem (RFC 9457) shown as a page, for errors raised on page routes (errors.py decides
which): its title, detail, field errors and request id, with the status of the problem. A GET
that needs a login is sent to the login page instead, and comes back after it."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.http import PROBLEM_JSON
from chainconsult.infra.request_state import request_state
from chainconsult.infra.security.csrf import CSRF_COOKIE
from chainconsult.web.layout import Viewer, html_response, render_html
from chainconsult.web.routing import API_PREFIX, wants_page

SAFE_METHODS = frozenset({"GET", "HEAD"})
LOGIN_PATH = "/login"


def login_redirect(request: Request) -> RedirectResponse:
    """To the login page, which comes back to this page after the login."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"{LOGIN_PATH}?next={quote(here, safe='')}", status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def _viewer(request: Request) -> Viewer | None:
    # What the edge already resolved, without another lookup: the database may be the problem.
    person: Any = request_state(request.scope).principal
    if person is None or not hasattr(person, "display_name"):
        return None
    return Viewer(person, request.cookies.get(CSRF_COOKIE, ""), unread=None)


def problem_page(
    request: Request, body: Mapping[str, Any], *, status_code: int, headers: Mapping[str, str]
) -> Response:
    if status_code == 401 and request.method in SAFE_METHODS:
        return login_redirect(request)
    errors = [
        {
            "where": str(error.get("pointer") or error.get("parameter") or "").removeprefix("#/"),
            "detail": error.get("detail", ""),
        }
        for error in body.get("errors", ()) or ()
        if isinstance(error, Mapping)
    ]
    html = render_html(
        request, "error.html", {"problem": body, "errors": errors}, viewer=_viewer(request)
    )
    return html_response(html, status_code=status_code, headers=headers)


class ProblemPages:
    """A problem answered by a middleware before any route ran (429 rate limit, 413 body too
    large, 408 slow body, a blocked address's 403) becomes a page for a browser's request
    outside the API, as errors.py does for the routes' own errors (``wants_page``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        body = bytearray()

        async def relay(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                if headers.get("content-type", "").startswith(PROBLEM_JSON) and wants_page(scope):
                    held = message
                    return
            elif message["type"] == "http.response.body" and held is not None:
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._as_page(scope, receive, send, held, bytes(body))
                return
            await send(message)

        await self.app(scope, receive, relay)

    @staticmethod
    async def _as_page(
        scope: Scope, receive: Receive, send: Send, start: Message, body: bytes
    ) -> None:
        kept = {
            name: value
            for name, value in Headers(raw=start["headers"]).items()
            if name not in {"content-type", "content-length"}
        }
        # A HEAD's problem arrives without its body: the page is made from the status.
        status = HTTPStatus(start["status"])
        problem = orjson.loads(body) if body else {"status": status, "title": status.phrase}
        page = problem_page(Request(scope), problem, status_code=status, headers=kept)
        await page(scope, receive, send)
