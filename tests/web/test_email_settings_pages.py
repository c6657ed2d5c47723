"""The email settings page (/account/emails), linked from the account page and from the
unsubscribe page: every optional email as a box, ticked unless turned off; saving turns off
what is unticked and back on what is ticked (a kind turned off by an unsubscribe link too),
in the store the unsubscribe links and the outbox use."""

from __future__ import annotations

import re
import uuid

from httpx import AsyncClient

from chainconsult.mail.preferences import OPTIONAL_EMAILS, unsubscribe_token
from tests.conftest import TEST_SECRET
from tests.market import query
from tests.web.conftest import form_token, post_form, register_on_page

PATH = "/account/emails"
EVERY_KIND = [email.kind for email in OPTIONAL_EMAILS]
_TICKED = re.compile(r'name="receive" value="([a-z_]+)" checked')


def ticked(page: str) -> list[str]:
    return _TICKED.findall(page)


def turned_off(database_url: str, account_id: str) -> set[str]:
    rows = query(database_url, "SELECT kind FROM email_opt_outs WHERE account_id = %s", account_id)
    return {kind for (kind,) in rows}


async def account_id(browser: AsyncClient) -> str:
    me = await browser.get("/api/v2/auth/me", headers={"Accept": "application/json"})
    return str(me.json()["id"])


async def test_a_person_turns_emails_off_and_back_on(
    browser: AsyncClient, database_url: str
) -> None:
    await register_on_page(browser, name="Mail Chooser")
    me = await account_id(browser)
    assert f'href="{PATH}"' in (await browser.get("/account")).text
    page = await browser.get(PATH)
    assert page.status_code == 200
    assert ticked(page.text) == EVERY_KIND  # everything on at first
    assert "Proposals on your projects: when an expert proposes on your project" in page.text

    keep = [kind for kind in EVERY_KIND if kind not in ("message_digest", "project_matched")]
    saved = await browser.post(PATH, data={"receive": keep, "csrf_token": form_token(page)})
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{PATH}?notice=saved"
    assert turned_off(database_url, me) == {"message_digest", "project_matched"}
    after = await browser.get(saved.headers["location"])
    assert 'id="notice"' in after.text
    assert ticked(after.text) == keep

    # Ticking one again turns it back on; an empty form turns every one off.
    again = await browser.post(
        PATH, data={"receive": [*keep, "project_matched"], "csrf_token": form_token(after)}
    )
    assert again.status_code == 303
    assert turned_off(database_url, me) == {"message_digest"}
    none = await browser.post(PATH, data={"csrf_token": form_token(after)})
    assert none.status_code == 303
    assert turned_off(database_url, me) == set(EVERY_KIND)
    assert ticked((await browser.get(PATH)).text) == []


async def test_a_kind_turned_off_by_its_link_shows_off_and_comes_back_on(
    browser: AsyncClient, database_url: str
) -> None:
    await register_on_page(browser, name="Link Follower")
    me = await account_id(browser)
    token = unsubscribe_token(TEST_SECRET.encode(), uuid.UUID(me), "proposal_received")
    done = await browser.post("/unsubscribe", params={"token": token})
    assert done.status_code == 200
    assert f'href="{PATH}"' in done.text
    page = await browser.get(PATH)
    assert "proposal_received" not in ticked(page.text)
    assert turned_off(database_url, me) == {"proposal_received"}

    saved = await browser.post(PATH, data={"receive": EVERY_KIND, "csrf_token": form_token(page)})
    assert saved.status_code == 303
    assert turned_off(database_url, me) == set()


async def test_the_settings_refuse_a_forged_form_and_strangers(
    browser: AsyncClient, database_url: str
) -> None:
    anonymous = await browser.get(PATH)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Faccount%2Femails"

    await register_on_page(browser, name="Form Forger")
    me = await account_id(browser)
    without_token = await browser.post(PATH, data={"receive": ["message_digest"]})
    assert without_token.status_code == 403
    unknown = await post_form(browser, PATH, {"receive": ["message_digest", "password_reset"]})
    assert unknown.status_code == 422
    assert "That is not an email you can turn on or off." in unknown.text
    assert 'id="f-receive-error"' in unknown.text
    assert turned_off(database_url, me) == set()
