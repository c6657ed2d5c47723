"""The /status dashboard in a real headless Chromium against a real server: an admin logs in,
sees health, traffic numbers and an active alert, acknowledges it, and the acknowledgement is
stored. A screenshot goes to test-artifacts/."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import TEST_SECRET, missing_service
from tests.helpers import PASSWORD, promote_to_admin
from tests.infra.monitoring.test_multiprocess_metrics import free_port

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`chainconsult serve` whose REDIS_URL points at a port nothing listens on: Redis is
    configured but down, which raises a real (medium) redis_fallback alert."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        DATABASE_URL=database_url.replace("+psycopg", ""),
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        CHAINCONSULT_DATA_DIR=str(tmp_path / "var"),
        CHAINCONSULT_ENV="test",
        SECRET_KEY=TEST_SECRET,
        LOG_LEVEL="WARNING",
        LOG_TO_DATABASE="true",
        ALERT_EVALUATION_INTERVAL="0.3",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "chainconsult", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("chainconsult serve did not become ready")
        time.sleep(0.2)
    try:
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        missing_service("Chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_firing_alert(database_url: str, rule: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT id FROM alerts WHERE rule = %s AND status = 'firing'", (rule,)
            ).fetchone()
            if row is not None:
                return str(row[0])
            time.sleep(0.1)
    raise AssertionError(f"no firing {rule} alert within {timeout} s")


def test_admin_acknowledges_an_alert_on_the_status_page(
    server: str, browser: webdriver.Chrome, database_url: str
) -> None:
    email = "ops-admin@example.com"
    registered = httpx.post(
        f"{server}/api/v2/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": "Ops", "role": "client"},
    )
    assert registered.status_code == 201, registered.text
    admin_id = registered.json()["id"]
    promote_to_admin(database_url, admin_id)
    alert_id = wait_for_firing_alert(database_url, "redis_fallback")
    wait = WebDriverWait(browser, 15)

    browser.get(f"{server}/status")
    wait.until(expected_conditions.visibility_of_element_located((By.ID, "login-form")))
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()

    wait.until(expected_conditions.presence_of_element_located((By.ID, "panels")))
    # Health: degraded, because Redis is configured but unreachable.
    assert browser.find_element(By.CSS_SELECTOR, "#overall-status .value").text == "warn"
    checks = browser.find_element(By.ID, "health-checks").text
    assert "postgres:responseTime" in checks
    assert "unreachable: cache and rate limits use in-process memory" in checks

    # Metrics: the tiles show measured numbers (requests were served), not placeholders.
    def tile(name: str) -> str:
        return str(browser.find_element(By.CSS_SELECTOR, f"#{name} .value").text)

    assert float(tile("request-rate").replace(",", "")) > 0
    assert re.fullmatch(r"[\d,]+\.\d ms", tile("latency-p95")), tile("latency-p95")
    assert re.fullmatch(r"\d+\.\d %", tile("error-rate")), tile("error-rate")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-alert-id="{alert_id}"]')
    assert "redis_fallback" in row.text
    assert "medium" in row.text

    row.find_element(By.CSS_SELECTOR, "button.ack").click()
    wait.until(
        expected_conditions.text_to_be_present_in_element(
            (By.CSS_SELECTOR, f'tr[data-alert-id="{alert_id}"]'), "acknowledged"
        )
    )
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "status-dashboard.png"))

    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        stored = conn.execute(
            "SELECT acknowledged_at, acknowledged_by FROM alerts WHERE id = %s", (alert_id,)
        ).fetchone()
    assert stored is not None
    assert stored[0] is not None
    assert str(stored[1]) == admin_id
