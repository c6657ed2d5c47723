"""One visit to a page: who is visiting (the API's session cookie, resolved by the API's own
lookup), the CSRF token their forms carry (the API's token and rule: accounts/auth.py), and
rendering for them. Page handlers take ``Visit`` (anyone), ``MemberVisit`` (a login) or
``AdminVisit``; form posts take ``Posted*`` variants, which refuse a form without its token
before the handler runs.

What a page of accounts shows from a domain above it (the header's unread count, the account
page's expert application) is handed over by app.py as ``PageSources``: accounts imports no
domain above it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from markupsafe import escape
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from chainconsult.accounts.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    csrf_subject,
    principal_for_credential,
)
from chainconsult.accounts.mfa import ensure_admin
from chainconsult.accounts.service import Principal
from chainconsult.config import settings_of
from chainconsult.errors import Unauthorized
from chainconsult.infra.db.session import DbSession, not_committed
from chainconsult.infra.request_state import request_state
from chainconsult.infra.resources import resources_of
from chainconsult.infra.security.tokens import csrf_token_valid, new_csrf_token
from chainconsult.web.layout import Viewer, html_response, render_html

FORM_TOKEN_FIELD = "csrf_token"  # noqa: S105 - a field name, not a secret
_FORM_TOKEN_NAMED = f"the form's {FORM_TOKEN_FIELD} field (reload the page and send it again)"


@dataclass(frozen=True, slots=True)
class PageSources:
    """Reads of the domains above accounts that its pages show, each by account id."""

    unread_notifications: Callable[[AsyncSession, uuid.UUID], Awaitable[int]]
    """The header's count (notifications.service.count_unread)."""
    expert_application: Callable[[AsyncSession, uuid.UUID], Awaitable[Any]]
    """The account page's latest expert application, or None; the template reads its
    revision and status (applications.service.latest_application)."""


def use_page_sources(app: FastAPI, sources: PageSources) -> None:
    app.state.page_sources = sources


@dataclass
class PageVisit:
    request: Request
    session: AsyncSession
    principal: Principal | None
    _csrf_token: str | None = field(default=None, init=False)
    _new_csrf_token: bool = field(default=False, init=False)

    @property
    def sources(self) -> PageSources:
        sources: PageSources = self.request.app.state.page_sources
        return sources

    @property
    def member(self) -> Principal:
        if self.principal is None:
            raise Unauthorized()
        return self.principal

    @property
    def csrf_token(self) -> str:
        """The token this visitor's forms carry: the CSRF cookie's when it is valid for them,
        else a new one, which the response sets as the cookie."""
        if self._csrf_token is None:
            secret = resources_of(self.request).secret_key
            subject = csrf_subject(self.principal)
            cookie = self.request.cookies.get(CSRF_COOKIE, "")
            if cookie and csrf_token_valid(secret, subject, cookie):
                self._csrf_token = cookie
            else:
                self._csrf_token = new_csrf_token(secret, subject)
                self._new_csrf_token = True
        return self._csrf_token

    async def viewer(self) -> Viewer | None:
        if self.principal is None:
            return None
        unread = await self.sources.unread_notifications(self.session, self.principal.account_id)
        return Viewer(self.principal, self.csrf_token, unread)

    async def render(
        self,
        name: str,
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        """The template in the layout, for this visitor; never cached (it names them, or
        carries their form token)."""
        html = render_html(
            self.request,
            name,
            {**context, "csrf_token": _FormToken(self)},
            viewer=await self.viewer(),
        )
        response = html_response(html, status_code=status_code, headers=headers)
        self.keep_token(response)
        return response

    def keep_token(self, response: Response) -> None:
        """Set the CSRF cookie on ``response`` when this visit made a new token."""
        if not self._new_csrf_token or self._csrf_token is None:
            return
        settings = settings_of(self.request)
        response.set_cookie(
            CSRF_COOKIE,
            self._csrf_token,
            # Before login: for this browser session; the login sets one for its own life.
            max_age=settings.security.session_ttl_seconds if self.principal else None,
            httponly=False,
            secure=settings.app.is_production,
            samesite="lax",
            path="/",
        )

    async def undo(self) -> None:
        """Roll back what a refused write left in the request's session, so the page that
        says so can still be rendered (and nothing of the write is committed)."""
        await not_committed(self.session)
        await self.session.rollback()


class _FormToken:
    """The visit's CSRF token, made only when a template prints it: a page without a form
    (the home page, the directory) sets no cookie, so the visitor's next public read can
    still be answered by the CachedReadShortcut, which skips requests with cookies."""

    def __init__(self, visit: PageVisit) -> None:
        self.visit = visit

    def __str__(self) -> str:
        return self.visit.csrf_token

    def __html__(self) -> str:
        return str(escape(self.visit.csrf_token))


async def _principal(request: Request) -> Principal | None:
    # The edge middleware resolved a session cookie (or bearer token) already (accounts/
    # identity.py); a cookie it could not resolve (expired, revoked) is an anonymous visit.
    cached = request_state(request.scope).principal
    if isinstance(cached, Principal):
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    principal = await principal_for_credential(request.app, token)
    if principal is not None:
        request_state(request.scope).principal = principal
    return principal


async def _visit(request: Request, session: DbSession) -> PageVisit:
    return PageVisit(request, session, await _principal(request))


async def _member_visit(request: Request, session: DbSession) -> PageVisit:
    visit = await _visit(request, session)
    if visit.principal is None:
        raise Unauthorized()
    return visit


async def _admin_visit(request: Request, session: DbSession) -> PageVisit:
    visit = await _member_visit(request, session)
    ensure_admin(visit.member)
    return visit


@dataclass
class PostedForm:
    visit: PageVisit
    form: FormData


def check_form_token(visit: PageVisit, form: FormData) -> None:
    """The API's CSRF rule for a posted form (403 without its token); a handler that parses
    its own body (a file upload) calls it, the ``Posted*`` dependencies do for the rest."""
    token = form.get(FORM_TOKEN_FIELD)
    check_csrf(
        visit.request,
        visit.principal,
        token if isinstance(token, str) else "",
        where=_FORM_TOKEN_NAMED,
    )


async def _checked_form(request: Request, visit: PageVisit) -> PostedForm:
    form = await request.form()
    check_form_token(visit, form)
    return PostedForm(visit, form)


async def _posted(request: Request, session: DbSession) -> PostedForm:
    return await _checked_form(request, await _visit(request, session))


async def _member_posted(request: Request, session: DbSession) -> PostedForm:
    return await _checked_form(request, await _member_visit(request, session))


async def _admin_posted(request: Request, session: DbSession) -> PostedForm:
    return await _checked_form(request, await _admin_visit(request, session))


Visit = Annotated[PageVisit, Depends(_visit)]
MemberVisit = Annotated[PageVisit, Depends(_member_visit)]
AdminVisit = Annotated[PageVisit, Depends(_admin_visit)]
Posted = Annotated[PostedForm, Depends(_posted)]
MemberPosted = Annotated[PostedForm, Depends(_member_posted)]
AdminPosted = Annotated[PostedForm, Depends(_admin_posted)]
