"""Two-factor login and wallets through the pages: set-up on /account/security, the code
step of /login, and linking a wallet on /account/wallets with a pasted signed message."""

from __future__ import annotations

import html
import re

from httpx import AsyncClient

from tests.accounts.identity_support import TotpClock, code_at
from tests.accounts.identity_support import totp_clock as totp_clock
from tests.accounts.siwe_support import sign, siwe_text, wallet_key
from tests.helpers import PASSWORD
from tests.web.conftest import form_token, post_form, register_on_page


def _text_of(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]+)<', page)
    assert found is not None, element_id
    return html.unescape(found.group(1))


async def test_two_factor_set_up_and_login_through_the_pages(
    browser: AsyncClient, totp_clock: TotpClock
) -> None:
    email = await register_on_page(browser)
    security = await browser.get("/account/security")
    assert security.status_code == 200
    assert "Two-factor login is <strong>off</strong>" in security.text

    started = await post_form(
        browser, "/account/security/2fa/setup", {}, token_from="/account/security"
    )
    assert started.status_code == 200
    secret = _text_of(started.text, "totp-secret")
    assert _text_of(started.text, "totp-uri").startswith("otpauth://totp/")

    wrong = await post_form(
        browser, "/account/security/2fa/confirm", {"code": "000000"}, token_from="/account/security"
    )
    assert wrong.status_code == 403
    assert "does not match" in wrong.text
    confirmed = await post_form(
        browser,
        "/account/security/2fa/confirm",
        {"code": code_at(secret, totp_clock)},
        token_from="/account/security",
    )
    assert confirmed.status_code == 200
    assert len(re.findall(r"<li><code>[a-z0-9]{5}-[a-z0-9]{5}</code></li>", confirmed.text)) == 10
    # Shown once: the page shows only how many are left afterwards.
    again = await browser.get("/account/security")
    assert "Recovery codes left: 10" in again.text
    assert "<li><code>" not in again.text

    await post_form(browser, "/logout", {}, token_from="/account")
    password_step = await post_form(browser, "/login", {"email": email, "password": PASSWORD})
    assert password_step.status_code == 200
    assert 'id="mfa-form"' in password_step.text
    assert "session" not in browser.cookies
    token = re.search(r'name="mfa_token" value="([^"]+)"', password_step.text)
    assert token is not None

    totp_clock.next_step()
    refused = await browser.post(
        "/login/mfa",
        data={
            "mfa_token": token.group(1),
            "code": "111111",
            "csrf_token": form_token(password_step),
        },
    )
    assert refused.status_code == 401
    assert "wrong or was used" in refused.text
    logged_in = await browser.post(
        "/login/mfa",
        data={
            "mfa_token": token.group(1),
            "code": code_at(secret, totp_clock),
            "csrf_token": form_token(refused),
            "next": "/account",
        },
    )
    assert logged_in.status_code == 303
    assert logged_in.headers["location"] == "/account"
    assert (await browser.get("/account")).status_code == 200


async def test_link_and_unlink_a_wallet_on_the_wallets_page(browser: AsyncClient) -> None:
    await register_on_page(browser)
    key = wallet_key(0xFACE)
    page = await browser.get("/account/wallets")
    assert page.status_code == 200
    assert 'id="wallet-list-empty"' in page.text
    nonce = _text_of(page.text, "siwe-nonce")

    message = siwe_text(key.address, nonce, uri="http://127.0.0.1:8000/account/wallets")
    forged = await browser.post(
        "/account/wallets",
        data={
            "message": message.replace("\n", "\r\n"),
            "signature": sign(wallet_key(0xBAD), message),
            "csrf_token": form_token(page),
        },
    )
    assert forged.status_code == 401
    assert "not the named address" in forged.text

    linked = await browser.post(
        "/account/wallets",
        data={
            "message": message.replace("\n", "\r\n"),
            "signature": sign(key, message),
            "csrf_token": form_token(page),
        },
    )
    assert linked.status_code == 303
    listed = await browser.get("/account/wallets")
    assert key.address in listed.text

    removed = await post_form(
        browser, "/account/wallets/remove", {"address": key.address}, token_from="/account/wallets"
    )
    assert removed.status_code == 303
    assert 'id="wallet-list-empty"' in (await browser.get("/account/wallets")).text
