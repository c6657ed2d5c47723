"""Fixtures of the page tests: a client of the app that keeps cookies like a browser, and the
steps a person takes through the pages (register, log in), reading the form token from the
page as a browser's form would send it."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient, Response

from chainconsult.app import create_app
from chainconsult.config import Settings
from tests.helpers import PASSWORD, promote_to_admin, register, serving

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(page: Response | str) -> str:
    html = page if isinstance(page, str) else page.text
    found = _TOKEN.search(html)
    assert found is not None, "no csrf_token field on the page"
    return found.group(1)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, for the screenshot-on-failure fixtures."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
async def browser(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A client of the pages: keeps cookies, sends Accept: text/html, follows no redirect."""
    async with serving(create_app(settings), headers={"Accept": "text/html"}) as http:
        yield http


async def post_form(
    client: AsyncClient, path: str, data: dict[str, Any], *, token_from: str | None = None
) -> Response:
    """Post ``data`` with the form token of the page at ``token_from`` (default: ``path``)."""
    page = await client.get(token_from or path)
    assert page.status_code in (200, 422), (page.status_code, page.text[:500])
    return await client.post(path, data={**data, "csrf_token": form_token(page)})


async def register_on_page(
    client: AsyncClient, *, role: str = "client", name: str = "Page User"
) -> str:
    """Register through /register (which also logs in); returns the email."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    response = await post_form(
        client,
        "/register",
        {"email": email, "password": PASSWORD, "display_name": name, "role": role},
    )
    assert response.status_code == 303, response.text[:2000]
    return email


async def admin_on_page(client: AsyncClient, database_url: str) -> str:
    """An admin (what `create-admin` makes of an account), logged in through /login."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    account = await register(client, email=email, name="Admin")
    promote_to_admin(database_url, account["id"])
    response = await post_form(client, "/login", {"email": email, "password": PASSWORD})
    assert response.status_code == 303, response.text[:2000]
    return email
