"""The account lifecycle pages through a browser-free client: forgot and reset a password from
the mailed link, confirm an address, and the security page (sessions, password change).
Errors show beside their fields; every form carries its csrf_token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.app import create_app
from chainconsult.config import Settings
from tests.accounts.mailed import deliver, mail_settings_for, messages, token_in
from tests.helpers import PASSWORD, serving
from tests.infra.jobs.conftest import job_settings, sessionmaker
from tests.smtp import SmtpSink
from tests.web.conftest import form_token, post_form, register_on_page

__all__ = ["job_settings", "sessionmaker"]

NEW_PASSWORD = "another long passphrase for the page"


@pytest.fixture
def mail_settings(database_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return mail_settings_for(database_url, tmp_path, sink, REQUIRE_VERIFIED_EMAIL="true")


@pytest.fixture
async def browser(mail_settings: Settings) -> AsyncIterator[AsyncClient]:
    async with serving(create_app(mail_settings), headers={"Accept": "text/html"}) as http:
        yield http


async def test_the_login_page_links_to_the_forgotten_password_page(browser: AsyncClient) -> None:
    login = await browser.get("/login")
    assert 'href="/forgot-password"' in login.text
    forgot = await browser.get("/forgot-password")
    assert forgot.status_code == 200
    assert forgot.headers["content-type"].startswith("text/html")
    assert form_token(forgot)


async def test_a_password_is_reset_from_the_forgot_page_and_the_mailed_link(
    browser: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    email = await register_on_page(browser)
    await post_form(browser, "/logout", {}, token_from="/account")

    bad = await post_form(browser, "/forgot-password", {"email": "not an address"})
    assert bad.status_code == 422
    assert re.search(r'id="f-email-error"', bad.text)
    sent = await post_form(browser, "/forgot-password", {"email": email})
    assert sent.status_code == 202
    assert 'id="notice"' in sent.text

    await deliver(mail_settings, sessionmaker)
    [mail] = messages(sink, email, "Reset your chainconsult password")
    token = token_in(mail, "/reset-password")
    page = f"/reset-password?token={token}"

    short = await post_form(
        browser, "/reset-password", {"token": token, "new_password": "short"}, token_from=page
    )
    assert short.status_code == 422
    assert re.search(r'id="f-new-password-error"', short.text)
    done = await post_form(
        browser, "/reset-password", {"token": token, "new_password": NEW_PASSWORD}, token_from=page
    )
    assert done.status_code == 200
    assert "Your password was changed" in done.text
    used = await post_form(
        browser, "/reset-password", {"token": token, "new_password": NEW_PASSWORD}, token_from=page
    )
    assert used.status_code == 400
    assert "invalid, has expired or was already used" in used.text

    old = await post_form(browser, "/login", {"email": email, "password": PASSWORD})
    assert old.status_code == 401
    new = await post_form(browser, "/login", {"email": email, "password": NEW_PASSWORD})
    assert new.status_code == 303


async def test_the_mailed_link_confirms_the_address_on_the_page(
    browser: AsyncClient,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    email = await register_on_page(browser)
    security = await browser.get("/account/security")
    assert "not confirmed yet" in security.text

    await deliver(mail_settings, sessionmaker)
    [mail] = messages(sink, email, "Confirm your email address for chainconsult")
    token = token_in(mail, "/verify-email")
    page = f"/verify-email?token={token}"
    # Opening the link alone changes nothing: a mail scanner may fetch it.
    assert (await browser.get(page)).status_code == 200
    assert "not confirmed yet" in (await browser.get("/account/security")).text

    done = await post_form(browser, "/verify-email", {"token": token}, token_from=page)
    assert done.status_code == 200
    assert "your address is confirmed" in done.text
    assert "is <strong>confirmed</strong>" in (await browser.get("/account/security")).text


async def test_the_security_page_lists_sessions_ends_them_and_changes_the_password(
    browser: AsyncClient, mail_settings: Settings
) -> None:
    email = await register_on_page(browser)
    async with serving(create_app(mail_settings), headers={"Accept": "text/html"}) as other:
        logged_in = await post_form(other, "/login", {"email": email, "password": PASSWORD})
        assert logged_in.status_code == 303

        page = await browser.get("/account/security")
        assert page.status_code == 200
        assert page.text.count('action="/account/sessions/') == 3  # two sessions, end-others
        assert "(this one)" in page.text

        wrong = await post_form(
            browser,
            "/account/security/password",
            {"current_password": "wrong password", "new_password": NEW_PASSWORD},
            token_from="/account/security",
        )
        assert wrong.status_code == 403
        assert re.search(
            r'id="f-current-password-error">.*current password is wrong', wrong.text, re.S
        )

        changed = await post_form(
            browser,
            "/account/security/password",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            token_from="/account/security",
        )
        assert changed.status_code == 303
        assert changed.headers["location"] == "/account/security?notice=password-changed"
        # The other browser's session ended; this one goes on.
        assert (await other.get("/account/security")).status_code in (303, 401)
        after = await browser.get("/account/security?notice=password-changed")
        assert "other sessions were logged out" in after.text
        assert after.text.count('action="/account/sessions/') == 1

        ended = await post_form(
            browser,
            re.findall(r'action="(/account/sessions/[^"/]+/end)"', after.text)[0],
            {},
            token_from="/account/security",
        )
        assert ended.status_code == 303
        assert ended.headers["location"] == "/login"
        assert (await browser.get("/account/security")).status_code in (303, 401)
