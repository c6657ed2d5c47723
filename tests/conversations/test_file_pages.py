"""Attaching a file from the conversation page: a multipart form with the page's form token,
through the API's upload rules (limit, sniffed type, cleaned name, participants only). The
file shows in the thread with a download link for both participants; an over-size, empty or
token-less upload is refused with a page that says why, and nothing is stored."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx import AsyncClient, Response

from chainconsult.app import create_app
from tests.conftest import make_settings
from tests.conversations.story import Thread, proposed_thread
from tests.conversations.test_files import PNG
from tests.conversations.test_pages import log_in
from tests.helpers import serving
from tests.market import query
from tests.web.conftest import form_token, register_on_page

LIMIT = 64 * 1024
_DOWNLOAD = re.compile(r'href="(/api/v2/files/[0-9a-f-]{36})" download>([^<]*)</a>')


@pytest.fixture
def files_root(tmp_path: Path) -> Path:
    return tmp_path / "files"


@pytest.fixture
async def browser(
    database_url: str, tmp_path: Path, files_root: Path
) -> AsyncIterator[AsyncClient]:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        MAX_UPLOAD_BYTES=str(LIMIT),
        STORAGE_URL=f"file://{files_root}",
    )
    async with serving(create_app(settings), headers={"Accept": "text/html"}) as http:
        yield http


def stored(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


async def attach(
    browser: AsyncClient, thread: Thread, name: str, content: bytes, *, token: str | None = None
) -> tuple[str, Response]:
    """Post the thread page's upload form as a browser does; returns the page's token too."""
    page = await browser.get(f"/conversations/{thread.id}")
    assert page.status_code == 200, page.text[:500]
    token = form_token(page) if token is None else token
    answer = await browser.post(
        f"/conversations/{thread.id}/files",
        data={"csrf_token": token},
        files={"file": (name, content, "text/plain")},
    )
    return token, answer


async def test_a_participant_attaches_a_file_that_both_can_download(
    browser: AsyncClient, database_url: str, files_root: Path
) -> None:
    thread = await proposed_thread(browser, database_url)
    await log_in(browser, thread.expert["email"])
    page = await browser.get(f"/conversations/{thread.id}")
    assert 'enctype="multipart/form-data"' in page.text
    assert f'action="/conversations/{thread.id}/files"' in page.text
    assert "Up to 64 KiB." in page.text

    answer = await browser.post(
        f"/conversations/{thread.id}/files",
        data={"csrf_token": form_token(page)},
        files={"file": ("../../report<final>.txt", PNG, "text/plain")},
    )
    assert answer.status_code == 303, answer.text[:2000]
    assert answer.headers["location"] == f"/conversations/{thread.id}#latest"
    assert len(stored(files_root)) == 1
    # The API's rules held: the name cleaned, the type read from the bytes, the hash kept.
    [(name, content_type, sha256)] = query(
        database_url, "SELECT name, content_type, sha256 FROM conversation_files"
    )
    assert (name, content_type) == ("report_final_.txt", "image/png")
    assert sha256 == hashlib.sha256(PNG).hexdigest()

    for who in (thread.expert, thread.client):
        await log_in(browser, who["email"])
        thread_page = await browser.get(f"/conversations/{thread.id}")
        [(link, shown)] = _DOWNLOAD.findall(thread_page.text)
        assert shown == "report_final_.txt"
        assert "(67 bytes, image/png)" in thread_page.text
        download = await browser.get(link)
        assert download.status_code == 200
        assert download.content == PNG
        assert download.headers["content-disposition"].startswith("attachment;")

    # Someone else neither downloads it nor uploads into the thread.
    browser.cookies.clear()
    await register_on_page(browser, name="Nosy Neighbour")
    assert (await browser.get(link)).status_code == 404
    account = await browser.get("/account")
    intruding = await browser.post(
        f"/conversations/{thread.id}/files",
        data={"csrf_token": form_token(account)},
        files={"file": ("x.txt", b"hello", "text/plain")},
    )
    assert intruding.status_code == 404
    assert intruding.headers["content-type"].startswith("text/html")
    assert len(stored(files_root)) == 1


async def test_an_over_size_upload_is_refused_with_a_page_and_nothing_is_stored(
    browser: AsyncClient, database_url: str, files_root: Path
) -> None:
    thread = await proposed_thread(browser, database_url)
    await log_in(browser, thread.client["email"])

    # Just over the limit: the thread again, saying why beside the form.
    token, over = await attach(browser, thread, "big.bin", os.urandom(LIMIT + 1))
    assert over.status_code == 413
    assert over.headers["content-type"].startswith("text/html")
    assert 'id="error-summary"' in over.text
    assert "The file is larger than 64 KiB (65536 bytes)" in over.text
    assert 'id="upload-form"' in over.text

    # Far over: the body guard stops reading and answers with an error page.
    far = await browser.post(
        f"/conversations/{thread.id}/files",
        data={"csrf_token": token},
        files={"file": ("huge.bin", os.urandom(LIMIT * 4), "application/octet-stream")},
    )
    assert far.status_code == 413
    assert far.headers["content-type"].startswith("text/html")
    assert 'id="problem-detail"' in far.text
    assert "Go back and send a smaller file" in far.text

    assert stored(files_root) == []
    assert query(database_url, "SELECT count(*) FROM conversation_messages") == [(0,)]
    # At the limit it is accepted.
    _, exactly = await attach(browser, thread, "limit.bin", os.urandom(LIMIT))
    assert exactly.status_code == 303


async def test_the_upload_form_needs_its_token_and_a_file(
    browser: AsyncClient, database_url: str, files_root: Path
) -> None:
    thread = await proposed_thread(browser, database_url)
    await log_in(browser, thread.expert["email"])

    _, forged = await attach(browser, thread, "a.txt", b"hello", token="not-the-token")
    assert forged.status_code == 403
    assert "reload the page and send the form again" in forged.text

    # A form sent with no file chosen: browsers send an empty part without a name.
    _, empty = await attach(browser, thread, "", b"")
    assert empty.status_code == 422
    assert 'id="f-file-error"' in empty.text
    assert "choose a file to upload" in empty.text

    page = await browser.get(f"/conversations/{thread.id}")
    not_multipart = await browser.post(
        f"/conversations/{thread.id}/files", data={"csrf_token": form_token(page)}
    )
    assert not_multipart.status_code == 422
    assert 'id="f-file-error"' in not_multipart.text

    browser.cookies.clear()
    anonymous = await browser.post(
        f"/conversations/{thread.id}/files", files={"file": ("a.txt", b"hi", "text/plain")}
    )
    assert anonymous.status_code == 401
    assert stored(files_root) == []
