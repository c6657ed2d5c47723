"""The conversation pages: the list with unread counts, a thread with a plain form to post
(the API's text rules, shown beside the field), reading a thread marks it read, and the page
of someone else's thread is a 404 page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.config import Settings
from tests.conversations.story import proposed_thread, say
from tests.conversations.test_conversation_api import unread_of
from tests.helpers import PASSWORD, serving
from tests.web.conftest import form_token, post_form, register_on_page


@pytest.fixture
async def browser(settings: Settings) -> AsyncIterator[AsyncClient]:
    async with serving(create_app(settings), headers={"Accept": "text/html"}) as http:
        yield http


async def log_in(browser: AsyncClient, email: str) -> None:
    browser.cookies.clear()
    answer = await post_form(browser, "/login", {"email": email, "password": PASSWORD})
    assert answer.status_code == 303, answer.text[:500]


async def test_two_people_converse_through_the_pages(
    browser: AsyncClient, database_url: str
) -> None:
    thread = await proposed_thread(browser, database_url)
    await say(browser, thread, thread.expert_headers, "Hello <b>client</b>")
    await log_in(browser, thread.client["email"])

    listing = await browser.get("/conversations")
    assert listing.status_code == 200
    assert listing.headers["content-type"].startswith("text/html")
    assert f'href="/conversations/{thread.id}"' in listing.text
    assert f'data-unread="{thread.id}"' in listing.text

    page = await browser.get(f"/conversations/{thread.id}")
    assert page.status_code == 200
    # Text, never markup; and reading the page marked the thread read.
    assert "Hello &lt;b&gt;client&lt;/b&gt;" in page.text
    assert await unread_of(browser, thread.client_headers) == {thread.id: 0}

    posted = await browser.post(
        f"/conversations/{thread.id}",
        data={"body": "Thanks, see you Monday.", "csrf_token": form_token(page)},
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == f"/conversations/{thread.id}#latest"
    assert await unread_of(browser, thread.expert_headers) == {thread.id: 1}
    again = await browser.get(f"/conversations/{thread.id}")
    assert "Thanks, see you Monday." in again.text

    refused = await browser.post(
        f"/conversations/{thread.id}",
        data={"body": "bell\x07", "csrf_token": form_token(again)},
    )
    assert refused.status_code == 422
    assert 'id="f-body-error"' in refused.text
    assert "bell" in refused.text  # what was typed stays in the form


async def test_an_expert_opens_the_thread_from_the_project_page(
    browser: AsyncClient, database_url: str
) -> None:
    thread = await proposed_thread(browser, database_url)
    await log_in(browser, thread.expert["email"])
    project = await browser.get(f"/projects/{thread.project_id}")
    assert "Message the client" in project.text
    opened = await browser.post(
        "/conversations",
        data={"project_id": thread.project_id, "csrf_token": form_token(project)},
    )
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/conversations/{thread.id}"


async def test_someone_elses_thread_is_a_404_page(browser: AsyncClient, database_url: str) -> None:
    thread = await proposed_thread(browser, database_url)
    browser.cookies.clear()
    await register_on_page(browser, name="Nosy Neighbour")
    page = await browser.get(f"/conversations/{thread.id}")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    listing = await browser.get("/conversations")
    assert "No conversations yet" in listing.text
