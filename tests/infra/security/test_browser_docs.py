"""The API docs pages work in a real browser with no CDN in reach and under their strict CSP:
headless Chromium loads each page from a real `chainconsult serve`, Swagger UI renders the
operations of that version's document, the browser reports no blocked resource, and "Try it
out" works for a cookie session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.edge_support import ServerProcess, server_env
from tests.helpers import PASSWORD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def origin(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `chainconsult serve` for the module: its tests only read, or write an account of
    their own (and every test's rows are deleted after it)."""
    tmp_path = tmp_path_factory.mktemp("docs")
    # The module's page loads add up: no test may meet the limits the others spent.
    limits = {"RATE_LIMIT_ANONYMOUS": "100000/minute", "RATE_LIMIT_AUTH": "100000/minute"}
    env = server_env(database_url, tmp_path, **limits)
    with ServerProcess(env, tmp_path / "server.log") as server:
        yield server.url


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/api/v2/docs", "/api/v2/experts"),
        ("/api/v1/docs", "/api/v1/experts"),
        ("/api/docs", "/api/v2/experts"),
    ],
)
def test_docs_page_renders_its_version_from_local_assets(
    origin: str, browser: Any, path: str, operation: str
) -> None:
    browser.get(origin + path)
    WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock [data-path]"))
    )

    paths = [
        e.get_attribute("data-path")
        for e in browser.find_elements(By.CSS_SELECTOR, ".opblock [data-path]")
    ]
    # Deprecated operations (all of v1) render with their own class but the same data-path.
    assert operation in paths
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(url.startswith(origin) for url in loaded), loaded
    assert any(url.endswith("/swagger-ui-bundle.js") for url in loaded)
    problems = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]
    ]
    assert problems == []


def _wait_for(browser: Any, selector: str) -> Any:
    return WebDriverWait(browser, 20).until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, selector))
    )


def test_try_it_out_writes_with_the_cookie_session_of_a_login_on_the_page(
    origin: str, browser: Any
) -> None:
    """Logged in through the page (the session and CSRF cookies set, no Authorize), a write
    run with "Try it out" passes the CSRF check: logout answers 204, not 403 csrf."""
    account = {"email": "docs@example.com", "password": PASSWORD, "display_name": "Docs"}
    assert httpx.post(f"{origin}/api/v2/auth/register", json=account).status_code == 201
    browser.get(origin + "/api/v2/docs")
    operation = '.opblock-post:has([data-path="/api/v2/auth/logout"])'
    _wait_for(browser, f"{operation} .opblock-summary-control")
    logged_in = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch('/api/v2/auth/login', {
            method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({email: arguments[0], password: arguments[1]}),
        }).then((response) => done(response.status));
        """,
        account["email"],
        account["password"],
    )
    assert logged_in == 200

    browser.find_element(By.CSS_SELECTOR, f"{operation} .opblock-summary-control").click()
    _wait_for(browser, f"{operation} .try-out__btn").click()
    _wait_for(browser, f"{operation} .execute").click()
    status = WebDriverWait(browser, 20).until(
        lambda driver: (
            driver.find_element(
                By.CSS_SELECTOR,
                f"{operation} .live-responses-table tr.response .response-col_status",
            ).text
        )
    )

    assert status.split()[0] == "204"
    # The session really ended: the cookie no longer logs in.
    me = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch('/api/v2/auth/me').then((response) => done(response.status));
        """
    )
    assert me == 401
