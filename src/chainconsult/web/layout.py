"""The page layout: who the page is rendered for (as the header shows them), the navigation,
and turning a template into a response. Knows nothing of the marketplace's rules."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp

from chainconsult.web import templates
from chainconsult.web.routing import page_paths

NO_STORE = "no-store"
"""Pages about a person, and pages with a form token: never kept by any cache."""
HTML = "text/html; charset=utf-8"

Audience = Literal["anyone", "member", "admin"]


@dataclass(frozen=True, slots=True)
class NavEntry:
    path: str
    label: str
    audience: Audience


NAVIGATION = (
    NavEntry("/experts", "Experts", "anyone"),
    NavEntry("/projects", "Projects", "member"),
    NavEntry("/conversations", "Messages", "member"),
    NavEntry("/notifications", "Notifications", "member"),
    NavEntry("/account", "Account", "member"),
    NavEntry("/admin/applications", "Admin", "admin"),
)
"""The header's links, in order. An entry shows only once its page route exists, so a page
added later (conversations) appears in the header by being mounted."""

ADMIN_NAVIGATION = (
    NavEntry("/admin/applications", "Applications", "admin"),
    NavEntry("/admin/users", "Users", "admin"),
    NavEntry("/admin/audit-log", "Audit log", "admin"),
    NavEntry("/status", "Status", "admin"),
)


class Person(Protocol):
    """What the header shows of a logged-in visitor (accounts' Principal has it)."""

    @property
    def display_name(self) -> str: ...
    @property
    def is_admin(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a page is rendered for; None for an anonymous visitor."""

    person: Person
    csrf_token: str
    """For the header's log-out form (and every form of the page)."""
    unread: int | None
    """Unread notifications, shown beside their link; None where not counted (error pages)."""


_available: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()


def _page_paths_of(app: ASGIApp) -> frozenset[str]:
    found = _available.get(app)
    if found is None:
        found = frozenset(page_paths(getattr(app, "routes", ())))
        _available[app] = found
    return found


def navigation(app: ASGIApp, viewer: Viewer | None) -> list[NavEntry]:
    available = _page_paths_of(app)
    allowed: set[Audience] = {"anyone"}
    if viewer is not None:
        allowed.add("member")
        if viewer.person.is_admin:
            allowed.add("admin")
    return [e for e in NAVIGATION if e.audience in allowed and e.path in available]


def admin_navigation(app: ASGIApp) -> list[NavEntry]:
    available = _page_paths_of(app) | {"/status"}
    return [entry for entry in ADMIN_NAVIGATION if entry.path in available]


def render_html(
    request: Request, name: str, context: Mapping[str, Any], *, viewer: Viewer | None
) -> str:
    """A template rendered in the layout, for ``viewer``."""
    app = request.scope["app"]
    template = templates.env.get_template(name)
    return template.render(
        {
            **context,
            "viewer": viewer,
            "navigation": navigation(app, viewer),
            "admin_navigation": admin_navigation(app),
            "current_path": request.url.path,
        }
    )


def html_response(
    body: str | bytes,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    cache_control: str = NO_STORE,
) -> HTMLResponse:
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    response.headers["Cache-Control"] = cache_control
    return response
