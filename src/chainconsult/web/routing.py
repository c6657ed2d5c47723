"""How a page route is told from an API route: page routers are built here, with a route class
of their own, so that an error raised on a page renders as a page (errors.py) while the same
error on an API route stays a problem+json."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse
from starlette.types import Scope

from chainconsult.web import PAGE_STATIC_PATH

API_PREFIX = "/api"


class PageRoute(APIRoute):
    """A route that answers HTML."""


def page_router() -> APIRouter:
    """A router of pages: HTML answers, left out of the OpenAPI documents."""
    return APIRouter(
        route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse
    )


def wants_page(scope: Scope) -> bool:
    """Whether an error answer for this request is a page: the request reached a page route,
    or no route at all outside the API from a browser (its Accept names HTML). An API path
    never answers HTML."""
    path: str = scope.get("path", "")
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        return False
    route = scope.get("route")
    if isinstance(route, PageRoute):
        return True
    if route is not None:
        return False
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            return b"text/html" in value
    return False


def page_paths(routes: Iterable[Any]) -> Iterator[str]:
    """The paths of every page route of an app (included routers are walked)."""
    for route in routes:
        if isinstance(route, PageRoute):
            yield route.path
        elif hasattr(route, "original_router"):
            yield from page_paths(route.original_router.routes)


def page_prefixes(routes: Iterable[Any]) -> list[str]:
    """The path prefixes the pages live under (``/`` itself, ``/experts``...) and the static
    files': where the page security headers apply."""
    prefixes = {"/" + path.split("/")[1] for path in page_paths(routes)}
    return sorted(prefixes | {PAGE_STATIC_PATH})
