"""The API docs pages work in a real browser with no CDN in reach and under their strict CSP:
headless Chromium loads each page from a real `chainconsult serve`, Swagger UI renders the
operations of that version's document, and the browser reports no blocked resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.edge_support import StartServers, server_env

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/api/v2/docs", "/api/v2/experts"),
        ("/api/v1/docs", "/api/v1/experts"),
        ("/api/docs", "/api/v2/experts"),
    ],
)
def test_docs_page_renders_its_version_from_local_assets(
    servers: StartServers,
    database_url: str,
    tmp_path: Path,
    browser: Any,
    path: str,
    operation: str,
) -> None:
    (server,) = servers(server_env(database_url, tmp_path), 1)
    origin = f"http://127.0.0.1:{server.port}"

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
