"""axe-core on the thread page's upload form (with a file in the thread, and refusing an
empty upload) and on the email settings pages (as shown, saved, and refusing a forged
choice), rendered by the app and checked in Chromium as the browser walk checks its pages."""

from __future__ import annotations

from pathlib import Path

from httpx import AsyncClient

from tests.conversations.story import proposed_thread
from tests.conversations.test_pages import log_in
from tests.web.browser import axe_violations
from tests.web.conftest import form_token, post_form


async def test_the_upload_form_and_the_email_settings_pass_axe(
    browser: AsyncClient, database_url: str, tmp_path: Path
) -> None:
    thread = await proposed_thread(browser, database_url)
    await log_in(browser, thread.expert["email"])
    path = f"/conversations/{thread.id}"
    attached = await browser.post(
        f"{path}/files",
        data={"csrf_token": form_token(await browser.get(path))},
        files={"file": ("notes.txt", b"audit notes", "text/plain")},
    )
    assert attached.status_code == 303
    with_file = await browser.get(path)
    empty = await browser.post(
        f"{path}/files",
        data={"csrf_token": form_token(with_file)},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert empty.status_code == 422

    settings = await browser.get("/account/emails")
    saved = await post_form(browser, "/account/emails", {"receive": ["review_received"]})
    assert saved.status_code == 303
    refused = await post_form(browser, "/account/emails", {"receive": ["welcome"]})
    assert refused.status_code == 422

    pages = {
        "thread-with-file": with_file.text,
        "thread-upload-refused": empty.text,
        "email-settings": settings.text,
        "email-settings-saved": (await browser.get(saved.headers["location"])).text,
        "email-settings-refused": refused.text,
    }
    assert axe_violations(pages, tmp_path) == []
