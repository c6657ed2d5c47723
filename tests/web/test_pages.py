"""The pages as a browser meets them, over HTTP: HTML for pages and problem+json for the API
whatever the Accept header, errors as pages with their request id, form refusals beside their
fields with what was typed kept, and the same rules as the API."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.mail.preferences import UNSUBSCRIBE_PATH
from chainconsult.web.routing import PageRoute, page_paths
from tests.helpers import PASSWORD, serving
from tests.market import admin, approved_expert, query
from tests.web.conftest import admin_on_page, form_token, post_form, register_on_page


def _page_posts(routes: Iterable[Any]) -> Iterator[str]:
    for route in routes:
        if isinstance(route, PageRoute) and "POST" in route.methods:
            yield route.path
        elif hasattr(route, "original_router"):
            yield from _page_posts(route.original_router.routes)


async def test_home_page_is_html_with_a_csp_that_allows_only_our_own_files(
    browser: AsyncClient,
) -> None:
    response = await browser.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert '<link rel="stylesheet" href="/static/site.css">' in response.text
    style = await browser.get("/static/site.css")
    assert style.status_code == 200
    assert "prefers-color-scheme: dark" in style.text


async def test_an_api_path_answers_problem_json_even_to_a_browser(browser: AsyncClient) -> None:
    missing = await browser.get("/api/v2/no-such-thing")
    refused = await browser.get("/api/v2/notifications")

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


async def test_an_unknown_page_is_an_html_404_with_the_title_and_request_id(
    browser: AsyncClient,
) -> None:
    response = await browser.get("/no-such-page")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in response.text
    assert f'<code id="request-id">{response.headers["x-request-id"]}</code>' in response.text


async def test_a_page_that_needs_a_login_sends_the_visitor_to_log_in_and_back(
    browser: AsyncClient,
) -> None:
    email = await register_on_page(browser)
    await post_form(browser, "/logout", {}, token_from="/account")

    away = await browser.get("/projects/new?invite=x")
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=%2Fprojects%2Fnew%3Finvite%3Dx"
    back = await post_form(
        browser,
        "/login",
        {"email": email, "password": PASSWORD, "next": "/projects/new"},
        token_from=away.headers["location"],
    )
    assert back.status_code == 303
    assert back.headers["location"] == "/projects/new"
    assert back.cookies.get("session")


async def test_login_never_sends_the_visitor_to_another_site(browser: AsyncClient) -> None:
    email = await register_on_page(browser)
    await post_form(browser, "/logout", {}, token_from="/account")

    response = await post_form(
        browser, "/login", {"email": email, "password": PASSWORD, "next": "//evil.example/x"}
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_a_wrong_password_is_said_on_the_login_form_keeping_the_email(
    browser: AsyncClient,
) -> None:
    email = await register_on_page(browser)
    await post_form(browser, "/logout", {}, token_from="/account")

    response = await post_form(browser, "/login", {"email": email, "password": "wrong" * 4})

    assert response.status_code == 401
    assert "Wrong email or password." in response.text
    assert f'value="{email}"' in response.text
    assert "wrongwrong" not in response.text


async def test_registration_errors_show_beside_their_fields_with_what_was_typed(
    browser: AsyncClient,
) -> None:
    response = await post_form(
        browser,
        "/register",
        {"email": "not-an-email", "password": "short", "display_name": "Grace", "role": "client"},
    )

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert re.search(r'id="f-email-error">.*@-sign', response.text, re.S)
    assert re.search(r'id="f-password-error">.*at least 12', response.text, re.S)
    assert 'aria-invalid="true"' in response.text
    assert 'value="not-an-email"' in response.text
    assert 'value="Grace"' in response.text
    assert 'value="short"' not in response.text  # a password is never echoed


async def test_a_taken_email_is_said_beside_the_email_field(browser: AsyncClient) -> None:
    email = await register_on_page(browser)
    await post_form(browser, "/logout", {}, token_from="/account")

    response = await post_form(
        browser,
        "/register",
        {"email": email, "password": PASSWORD, "display_name": "Twin", "role": "client"},
    )

    assert response.status_code == 409
    assert re.search(r'id="f-email-error">.*already exists', response.text, re.S)


async def test_every_form_post_without_its_token_is_refused_with_a_page(
    settings: Settings, browser: AsyncClient, database_url: str
) -> None:
    """Every page route that takes a POST, logged in as an admin (so no other check stops it
    first), with the session cookie but no csrf_token field."""
    await admin_on_page(browser, database_url)
    posts = sorted(_page_posts(create_app(settings).routes))
    assert {"/login", "/register", "/logout", "/projects/new", "/experts/apply"} <= set(posts)
    # One-click unsubscribe (RFC 8058) is posted by mail clients, with no session or form:
    # the signed token in its URL is its credential, which a forging site does not have.
    posts.remove(UNSUBSCRIBE_PATH)
    for path in posts:
        concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = await browser.post(concrete, data={"note": "x"})
        assert response.status_code == 403, (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), path
        assert "must send the csrf_token cookie" in response.text, path
        assert response.headers["x-request-id"] in response.text, path


async def test_a_token_of_another_session_is_refused(browser: AsyncClient) -> None:
    await register_on_page(browser)
    stale = form_token(await browser.get("/account"))
    await post_form(browser, "/logout", {}, token_from="/account")
    await register_on_page(browser)

    response = await browser.post("/experts/apply", data={"csrf_token": stale})

    assert response.status_code == 403


async def test_a_csrf_cookie_that_is_not_ours_gets_a_fresh_one(browser: AsyncClient) -> None:
    """Bytes beyond ASCII (as a sibling site could set them) are simply not our token."""
    page = await browser.get("/login", headers={"Cookie": b"csrf_token=a.\xc3\xa9"})

    assert page.status_code == 200
    assert page.cookies.get("csrf_token") == form_token(page)


async def test_a_project_form_refused_by_the_service_keeps_the_input(
    browser: AsyncClient,
) -> None:
    await register_on_page(browser)

    response = await post_form(
        browser,
        "/projects/new",
        {
            "title": "Audit the vault",
            "description": "Two contracts, 600 lines of Solidity, Foundry tests.",
            "skills": ["solidity"],
            "chains": ["ethereum"],
            "budget.min": "9000",
            "budget.max": "5000",
            "budget.currency": "USD",
            "deadline": "2001-01-01",
            "visibility": "public",
        },
    )

    assert response.status_code == 422
    assert re.search(r'id="f-budget-error">.*max must not be below min', response.text, re.S)
    assert 'value="Audit the vault"' in response.text
    assert 'value="solidity" checked' in response.text


async def test_an_invite_only_project_is_a_404_page_to_an_uninvited_expert(
    browser: AsyncClient, client: AsyncClient, database_url: str
) -> None:
    await register_on_page(browser)
    posted = await post_form(
        browser,
        "/projects/new",
        {
            "title": "Private audit",
            "description": "A private audit for a small team of three people.",
            "skills": ["solidity"],
            "chains": ["ethereum"],
            "budget.min": "1000",
            "budget.max": "2000",
            "budget.currency": "USD",
            "deadline": "2099-01-01",
            "visibility": "invite_only",
        },
    )
    assert posted.status_code == 303, posted.text
    project_path = posted.headers["location"].split("?")[0]
    browser.cookies.clear()
    await approved_expert(browser, await admin(client, database_url))

    response = await browser.get(project_path)

    assert response.status_code == 404
    assert "<h1>Not found</h1>" in response.text


async def test_the_account_page_downloads_the_export_and_deletes_with_the_password(
    browser: AsyncClient,
) -> None:
    email = await register_on_page(browser, name="Leaving Lou")

    export = await browser.get("/account/export")
    assert export.status_code == 200
    assert export.headers["content-disposition"] == (
        'attachment; filename="chainconsult-export.json"'
    )
    assert export.json()["tables"]["accounts"][0]["email"] == email

    wrong = await post_form(
        browser, "/account/delete", {"password": "not my password"}, token_from="/account"
    )
    assert wrong.status_code == 403
    assert re.search(r'id="f-password-error">.*does not match', wrong.text, re.S)

    erased = await post_form(
        browser, "/account/delete", {"password": PASSWORD}, token_from="/account"
    )
    assert erased.status_code == 303
    assert erased.headers["location"] == "/?notice=erased"
    assert "Your account was deleted" in (await browser.get("/?notice=erased")).text
    again = await post_form(browser, "/login", {"email": email, "password": PASSWORD})
    assert again.status_code == 401


async def test_a_header_link_appears_once_its_page_exists(
    settings: Settings, database_url: str
) -> None:
    """Pages join the header by being mounted, nothing else."""
    async with serving(create_app(settings)) as http:
        await register_on_page(http)
        assert 'href="/conversations"' in (await http.get("/account")).text
    without = create_app(settings)
    without.router.routes = [
        route
        for route in without.router.routes
        if not any(path.startswith("/conversations") for path in page_paths([route]))
    ]
    async with serving(without) as http:
        await register_on_page(http)
        assert 'href="/conversations"' not in (await http.get("/account")).text


async def test_only_a_page_with_a_form_gives_an_anonymous_visitor_a_cookie(
    browser: AsyncClient,
) -> None:
    """A cookie would keep the visitor's next public reads from the cached-read shortcut."""
    home = await browser.get("/")
    directory = await browser.get("/experts")
    login = await browser.get("/login")

    assert "set-cookie" not in home.headers
    assert "set-cookie" not in directory.headers
    assert login.cookies.get("csrf_token") == form_token(login)


async def test_a_registration_whose_login_must_wait_says_the_account_is_made(
    settings: Settings, database_url: str
) -> None:
    throttled = settings.model_copy(
        update={
            "login_throttle": settings.login_throttle.model_copy(
                update={"ip_free_failures": 1, "ip_lockout_failures": 2}
            )
        }
    )
    async with serving(create_app(throttled), headers={"Accept": "text/html"}) as browser:
        for _ in range(2):
            wrong = {"email": "nobody@example.com", "password": "not the password"}
            await post_form(browser, "/login", wrong)
        email = f"late-{uuid.uuid4().hex[:8]}@example.com"
        fields = {"email": email, "password": PASSWORD, "display_name": "Late", "role": "client"}
        made = await post_form(browser, "/register", fields)
        again = await post_form(browser, "/register", fields)

    assert made.status_code == 429
    assert "Your account is created" in made.text
    assert "retry-after" in made.headers
    assert query(database_url, "SELECT count(*) FROM accounts WHERE email = %s", email) == [(1,)]
    assert "already" in again.text


async def test_refusals_made_before_any_route_are_pages_for_a_browser(
    settings: Settings,
) -> None:
    limited = settings.model_copy(
        update={
            "rate_limits": settings.rate_limits.model_copy(update={"anonymous": "2/minute"}),
            "security": settings.security.model_copy(update={"max_body_bytes": 1024}),
        }
    )
    async with (
        serving(create_app(limited), headers={"Accept": "text/html"}) as browser,
        serving(create_app(limited), client=("127.0.0.9", 50000)) as api,
    ):
        too_large = await browser.post("/register", content=b"x" * 4096)
        pages = [await browser.get("/experts") for _ in range(3)]
        head = await browser.head("/experts")
        api_answers = [await api.get("/api/v2/experts") for _ in range(3)]

    for refused, status in [(too_large, 413), (pages[-1], 429)]:
        assert refused.status_code == status
        assert refused.headers["content-type"] == "text/html; charset=utf-8"
        assert f"Error {status}" in refused.text
        assert refused.headers["x-request-id"] in refused.text
    assert "retry-after" in pages[-1].headers
    assert (head.status_code, head.headers["content-type"]) == (429, "text/html; charset=utf-8")
    assert head.content == b""
    assert "style-src 'self'" in pages[-1].headers["content-security-policy"]
    # The API keeps its problems whatever the client accepts.
    assert api_answers[-1].status_code == 429
    assert api_answers[-1].headers["content-type"] == "application/problem+json"


async def test_an_admin_ends_every_session_of_a_user_from_the_users_page(
    browser: AsyncClient, settings: Settings, database_url: str
) -> None:
    await admin_on_page(browser, database_url)
    async with serving(create_app(settings), headers={"Accept": "text/html"}) as user:
        email = await register_on_page(user)
        assert (await user.get("/account")).status_code == 200

        found = await browser.get("/admin/users", params={"email": email})
        assert 'id="end-sessions"' in found.text
        account_id = re.search(r'action="/admin/users/([0-9a-f-]+)/sessions/end"', found.text)
        assert account_id is not None
        ended = await browser.post(
            f"/admin/users/{account_id.group(1)}/sessions/end",
            data={"csrf_token": form_token(found)},
        )
        assert ended.status_code == 303
        assert "notice=sessions-ended" in ended.headers["location"]
        assert (await user.get("/account")).status_code in (303, 401)
