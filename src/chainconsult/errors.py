"""Errors that carry their own HTTP status (defined in infra/http_errors.py, re-exported here for
the domains), and the one place that turns any error into an RFC 9457
``application/problem+json`` response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from chainconsult.infra.db.faults import UNAVAILABLE, classify
from chainconsult.infra.http import PROBLEM_BASE, ProblemResponse, problem_body
from chainconsult.infra.http_errors import (
    BadRequest,
    ChainconsultError,
    CommitOutcomeUnknown,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    field_error,
)
from chainconsult.infra.security.body import BodyReadTimeout
from chainconsult.web.problems import problem_page
from chainconsult.web.routing import wants_page

__all__ = [
    "BadRequest",
    "ChainconsultError",
    "CommitOutcomeUnknown",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "field_error",
    "install_problem_handlers",
]


def _pointer(loc: Sequence[Any]) -> tuple[str, str]:
    # FastAPI locations start with where the value came from: body, query, path, header.
    where = str(loc[0]) if loc else "body"
    rest = [str(part) for part in loc[1:]]
    if where == "body":
        return "#/" + "/".join(rest), where
    return "/".join(rest) or where, where


def _answer(
    request: Request,
    body: dict[str, Any],
    *,
    status_code: int,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The problem as problem+json, or as a page for a request to a page (web/routing.py)."""
    if wants_page(request.scope):
        return problem_page(request, body, status_code=status_code, headers=headers or {})
    return ProblemResponse(body, status_code=status_code, headers=headers)


async def _problem_from_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChainconsultError)
    return _answer(
        request,
        problem_body(
            request.scope,
            status=exc.status_code,
            title=exc.title,
            detail=exc.detail,
            type_=PROBLEM_BASE + exc.slug,
            **exc.extensions,
        ),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _problem_from_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        return _answer(
            request,
            problem_body(
                request.scope,
                status=400,
                title="Malformed JSON",
                detail="The request body is not valid JSON.",
                type_=PROBLEM_BASE + "malformed-json",
            ),
            status_code=400,
        )
    items = []
    for error in errors:
        pointer, where = _pointer(error.get("loc", ()))
        item: dict[str, Any] = {
            "detail": str(error.get("msg", "invalid")).removeprefix("Value error, "),
            "type": error.get("type", "value_error"),
        }
        if where == "body":
            item["pointer"] = pointer
        else:
            item["parameter"] = pointer
            item["in"] = where
        items.append(item)
    return _answer(
        request,
        problem_body(
            request.scope,
            status=422,
            title=InvalidInput.title,
            detail=f"{len(items)} field(s) failed validation.",
            type_=PROBLEM_BASE + InvalidInput.slug,
            errors=items,
        ),
        status_code=422,
    )


_HTTP_SLUGS = {
    400: BadRequest.slug,
    404: NotFound.slug,
    405: "method-not-allowed",
    408: BodyReadTimeout.slug,
    413: PayloadTooLarge.slug,
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str | None:
    """Every method the request's path answers to. Starlette's 405 names only the first
    route that matched the path, while GET and POST of one path are often two routes."""
    allowed = []
    for method in _METHODS:
        # HEAD is answered as GET (infra.http.HeadAsGetMiddleware).
        probe = {**request.scope, "method": "GET" if method == "HEAD" else method}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed) or None


async def _problem_from_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    titles = {
        400: BadRequest.title,
        404: "Not found",
        405: "Method not allowed",
        408: BodyReadTimeout.title,
        413: PayloadTooLarge.title,
    }
    detail = exc.detail if isinstance(exc.detail, str) else "The request cannot be served."
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No resource at {request.url.path}."
    return _answer(
        request,
        problem_body(
            request.scope,
            status=exc.status_code,
            title=titles.get(exc.status_code, "HTTP error"),
            detail=detail,
            type_=PROBLEM_BASE + _HTTP_SLUGS.get(exc.status_code, "http-error"),
        ),
        status_code=exc.status_code,
        headers=headers,
    )


async def _problem_from_database(request: Request, exc: Exception) -> Response:
    # Only transient faults are registered here (see install_problem_handlers), so a fault
    # the classifier does not know is still a database outage, not a bug.
    fault = classify(exc) or UNAVAILABLE
    return _answer(
        request,
        problem_body(
            request.scope,
            status=503,
            title=fault.title,
            detail=fault.detail,
            type_=PROBLEM_BASE + fault.slug,
        ),
        status_code=503,
        headers={"Retry-After": str(fault.retry_after_seconds)},
    )


async def _problem_from_data_error(request: Request, exc: Exception) -> Response:
    # SQLSTATE class 22 (data exception) and the driver's own refusals before sending: a value
    # the database cannot hold, which validation let through (a NUL character in text, a
    # number beyond a column's range). The request's transaction has rolled back.
    message = str(getattr(exc, "orig", exc))
    detail = (
        "Text must not contain NUL (\\u0000) characters."
        if "NUL" in message
        else "A value in the request cannot be stored (out of range or malformed)."
    )
    return _answer(
        request,
        problem_body(
            request.scope,
            status=422,
            title=InvalidInput.title,
            detail=detail,
            type_=PROBLEM_BASE + InvalidInput.slug,
            errors=[],
        ),
        status_code=422,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DataError, _problem_from_data_error)
    app.add_exception_handler(ChainconsultError, _problem_from_error)
    # Transient database faults: lost connections, restarts, pool and statement timeouts,
    # unretried serialization failures. Integrity and programming errors stay 500s (bugs).
    for transient in (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
    ):
        app.add_exception_handler(transient, _problem_from_database)
    app.add_exception_handler(RequestValidationError, _problem_from_validation)
    app.add_exception_handler(StarletteHTTPException, _problem_from_http)
