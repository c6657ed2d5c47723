"""The expert directory and profile pages: the API's search (relevance and its highlight, shown
as markup that can only ever be <mark>), its filters and pagination, and for anonymous
visitors the API's caching: ETag, 304, and no query at all for a repeat."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.resources import resources_of
from tests.experts.test_directory import add_expert
from tests.helpers import serving, statements_sent
from tests.market import admin, approved_expert
from tests.web.conftest import register_on_page


@pytest.fixture
async def app_and_browser(settings: Settings) -> AsyncIterator[tuple[object, AsyncClient]]:
    app = create_app(settings)
    async with serving(app, headers={"Accept": "text/html"}) as http:
        yield app, http


@pytest.fixture
async def same_app_client(
    app_and_browser: tuple[object, AsyncClient],
) -> AsyncIterator[AsyncClient]:
    """An API client of the browser's own app: without Redis, another process's write shows
    only once its local cache entry expires, and this test is about the same process."""
    browser = app_and_browser[1]
    async with AsyncClient(transport=browser._transport, base_url="http://testserver") as http:
        yield http


async def test_a_name_and_bio_with_markup_are_escaped_and_only_mark_is_markup(
    browser: AsyncClient, client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    expert, _ = await approved_expert(
        client,
        admin_headers,
        name="<script>alert(1)</script> Eve",
        headline="Solidity auditor <img src=x onerror=alert(2)>",
        bio="Audits of <script>steal()</script> lending protocols & AMMs, since 2017.",
    )

    page = await browser.get("/experts?q=lending")

    assert page.status_code == 200
    html = page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Eve" in html
    [highlight] = re.findall(r'class="highlight">(.*?)</p>', html)
    assert "<mark>lending</mark>" in highlight
    assert "steal()&lt;/script&gt;" in highlight
    assert re.sub(r"</?mark>", "", highlight).count("<") == 0
    assert "Solidity auditor &lt;img src=x onerror=alert(2)&gt;" in html
    assert "<script>alert" not in html
    assert "<script>steal" not in html
    assert "<img src=x" not in html
    profile = await browser.get(f"/experts/{expert['id']}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Eve" in profile.text
    assert "<script>alert" not in profile.text


async def test_the_directory_page_filters_and_pages_like_the_api(
    browser: AsyncClient, database_url: str
) -> None:
    for number in range(21):
        add_expert(database_url, name=f"Solid {number:02d}", approved_minutes=number)
    add_expert(database_url, name="Vyper Vera", skills=("vyper",))

    first = await browser.get("/experts?skill=solidity")
    only_vyper = await browser.get("/experts?skill=vyper")

    assert first.text.count('class="expert card"') == 20
    assert "Vyper Vera" not in first.text
    assert only_vyper.text.count('class="expert card"') == 1
    assert 'value="vyper" checked' in only_vyper.text
    next_url = first.text.split('rel="next" id="next-page"')[0].rsplit('href="', 1)[1]
    second = await browser.get(next_url.split('"')[0].replace("&amp;", "&"))
    assert second.text.count('class="expert card"') == 1
    assert 'id="first-page"' in second.text


async def test_blank_filter_fields_lead_to_one_url_per_search(browser: AsyncClient) -> None:
    response = await browser.get("/experts?q=&skill=solidity&min_rating=&sort=")

    assert response.status_code == 303
    assert response.headers["location"] == "/experts?skill=solidity"


async def test_a_refused_filter_is_said_beside_it_with_what_was_typed(
    browser: AsyncClient,
) -> None:
    response = await browser.get("/experts?min_rating=9&q=audit")

    assert response.status_code == 422
    assert 'id="f-min-rating-error"' in response.text
    assert "less than or equal to 5" in response.text
    assert 'value="audit"' in response.text


async def test_an_anonymous_directory_page_is_cached_with_an_etag_and_revalidated(
    app_and_browser: tuple[object, AsyncClient], same_app_client: AsyncClient, database_url: str
) -> None:
    client = same_app_client
    app, browser = app_and_browser
    admin_headers = await admin(client, database_url)
    await approved_expert(client, admin_headers, name="Cached Carla")

    first = await browser.get("/experts")
    with statements_sent(resources_of(app).engine) as sent:  # type: ignore[arg-type]
        again = await browser.get("/experts")
        unchanged = await browser.get("/experts", headers={"If-None-Match": first.headers["etag"]})

    assert first.status_code == 200
    assert "Cached Carla" in first.text
    assert first.headers["cache-control"] == "public, no-cache"
    assert "Cookie" in first.headers["vary"]
    assert again.text == first.text
    assert again.headers["etag"] == first.headers["etag"]
    assert unchanged.status_code == 304
    assert sent == []
    assert "content-security-policy" in again.headers
    # A change to the directory shows on the next request.
    await approved_expert(client, admin_headers, name="Newcomer Nia")
    assert "Newcomer Nia" in (await browser.get("/experts")).text


async def test_a_cached_page_reads_no_directory_data_for_a_visitor_with_a_form_cookie(
    app_and_browser: tuple[object, AsyncClient], same_app_client: AsyncClient, database_url: str
) -> None:
    """A visitor who has seen a form (the login page) sends its token cookie, so the cached-read
    shortcut leaves the request to the route: there, the cached page is answered without
    reading (and decoding) the directory data it was rendered from."""
    client = same_app_client
    app, browser = app_and_browser
    await approved_expert(client, await admin(client, database_url), name="Cookie Cleo")
    cache = resources_of(app).cache
    await browser.get("/login")
    assert browser.cookies.get("csrf_token")

    first = await browser.get("/experts")
    data_reads = cache.stats()["experts.list"].hits + cache.stats()["experts.list"].misses
    page_hits = cache.stats()["pages.experts.list"].hits
    again = await browser.get("/experts")

    assert again.status_code == 200
    assert again.text == first.text
    assert "Cookie Cleo" in again.text
    assert cache.stats()["pages.experts.list"].hits == page_hits + 1
    stats = cache.stats()["experts.list"]
    assert stats.hits + stats.misses == data_reads


async def test_an_anonymous_profile_page_is_cached_with_an_etag(
    browser: AsyncClient, client: AsyncClient, database_url: str
) -> None:
    expert, _ = await approved_expert(client, await admin(client, database_url), name="Pia")

    first = await browser.get(f"/experts/{expert['id']}")
    unchanged = await browser.get(
        f"/experts/{expert['id']}", headers={"If-None-Match": first.headers["etag"]}
    )

    assert first.status_code == 200
    assert "Pia" in first.text
    assert unchanged.status_code == 304


async def test_an_unknown_expert_is_a_404_page_every_time(
    browser: AsyncClient, client: AsyncClient, database_url: str
) -> None:
    """The profile is read inside the cached page's load: its 404 is not cached as a page."""
    expert, _ = await approved_expert(client, await admin(client, database_url), name="Rae")
    unknown = f"/experts/{uuid.uuid4()}"

    first, again = await browser.get(unknown), await browser.get(unknown)
    known = await browser.get(f"/experts/{expert['id']}")

    for missing in (first, again):
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert "etag" not in missing.headers
    assert known.status_code == 200
    assert "Rae" in known.text


async def test_a_logged_in_visitor_gets_a_personal_page_never_cached(
    browser: AsyncClient, client: AsyncClient, database_url: str
) -> None:
    await approved_expert(client, await admin(client, database_url), name="Quinn")
    await register_on_page(browser, name="Logged In Lee")

    page = await browser.get("/experts")

    assert page.status_code == 200
    assert "Logged In Lee" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "etag" not in page.headers
