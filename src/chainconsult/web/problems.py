"""A problem (RFC 9457) shown as a page, for errors raised on page routes (errors.py decides
which): its title, detail, field errors and request id, with the status of the problem. A GET
that needs a login is sent to the login page instead, and comes back after it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from chainconsult.infra.security.csrf import CSRF_COOKIE
from chainconsult.web.layout import Person, Viewer, html_response, render_html

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
    person = request.scope.get("state", {}).get("principal")
    if person is None or not hasattr(person, "display_name"):
        return None
    person_: Person = person
    return Viewer(person_, request.cookies.get(CSRF_COOKIE, ""), unread=None)


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
