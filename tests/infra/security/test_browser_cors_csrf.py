"""CORS and CSRF as a real browser enforces them: headless Chromium (Debian's) loads pages
from an allowed origin and from another one, and calls a real `chainconsult serve`.

All origins are on localhost with different ports: one *site* (so the SameSite=Lax session
cookie goes along, as it would for app.example.com calling api.example.com) but different
*origins* (so CORS decides who may read the answers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.edge_support import StartServers, free_port, server_env
from tests.helpers import PASSWORD

pytestmark = pytest.mark.slow


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><meta charset=utf-8><title>page</title><p>page"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def page_origins() -> Iterator[tuple[str, str]]:
    """Two static page servers: (allowed origin, other origin)."""
    started = []
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Page)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    yield tuple(f"http://localhost:{s.server_address[1]}" for s in started)  # type: ignore[misc]
    for server in started:
        server.shutdown()
        server.server_close()


# Runs in the page: one fetch, reported as what the page's script can see of it.
_FETCH = """
const [url, init, done] = arguments;
fetch(url, init).then(
  async (r) => done({ok: true, status: r.status, body: await r.text(),
                     csrfCookie: (document.cookie.match(/(?:^|; )csrf_token=([^;]*)/) || [])[1]}),
  (e) => done({ok: false, error: String(e)}),
);
"""


def _fetch(driver: Any, url: str, **init: Any) -> dict[str, Any]:
    result: dict[str, Any] = driver.execute_async_script(_FETCH, url, init)
    return result


def test_allowed_origin_uses_the_api_with_credentials_and_another_origin_is_blocked(
    servers: StartServers,
    database_url: str,
    tmp_path: Path,
    browser: Any,
    page_origins: tuple[str, str],
) -> None:
    allowed, other = page_origins
    (server,) = servers(
        server_env(database_url, tmp_path, ALLOWED_ORIGINS=allowed, RATE_LIMIT_AUTH="100/minute"), 1
    )
    api = f"http://localhost:{server.port}/api/v2"
    created = httpx.post(
        f"{api}/auth/register",
        json={"email": "browser@example.com", "password": PASSWORD, "display_name": "B"},
    )
    assert created.status_code == 201, created.text
    json_post = {
        "method": "POST",
        "credentials": "include",
        "headers": {"Content-Type": "application/json"},
    }

    browser.get(allowed + "/")
    logged_in = _fetch(
        browser,
        f"{api}/auth/login",
        body=json.dumps({"email": "browser@example.com", "password": PASSWORD}),
        **json_post,
    )
    me = _fetch(browser, f"{api}/auth/me", credentials="include")
    no_token = _fetch(browser, f"{api}/auth/logout", method="POST", credentials="include")

    browser.get(other + "/")
    blocked_read = _fetch(browser, f"{api}/auth/me", credentials="include")
    # A forgery attempt that needs no CORS at all: a simple cross-origin POST riding on the
    # cookie. Its answer is opaque to the page; the server must refuse it all the same.
    forged = _fetch(
        browser, f"{api}/auth/logout", method="POST", mode="no-cors", credentials="include"
    )

    browser.get(allowed + "/")
    still_logged_in = _fetch(browser, f"{api}/auth/me", credentials="include")
    token = still_logged_in["csrfCookie"]
    with_token = _fetch(
        browser,
        f"{api}/auth/logout",
        method="POST",
        credentials="include",
        headers={"X-CSRF-Token": token},
    )
    after_logout = _fetch(browser, f"{api}/auth/me", credentials="include")

    assert logged_in["status"] == 200, logged_in
    assert me["status"] == 200, me
    assert json.loads(me["body"])["email"] == "browser@example.com"
    assert no_token["status"] == 403, no_token
    assert json.loads(no_token["body"])["reason"] == "csrf"
    assert blocked_read == {"ok": False, "error": "TypeError: Failed to fetch"}
    # Sent with the cookie but without the token; the page cannot even see an opaque answer
    # (Cross-Origin-Resource-Policy: same-origin), and the session survives it.
    assert forged == {"ok": False, "error": "TypeError: Failed to fetch"}
    assert still_logged_in["status"] == 200, still_logged_in
    assert token
    assert with_token["status"] == 204, with_token
    assert after_logout["status"] == 401
