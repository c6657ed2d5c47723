"""What the browser tests share: a real `chainconsult serve` (with its job worker, sending
email to an SMTP sink, and the product's default REQUIRE_VERIFIED_EMAIL=true), headless
Chromium through selenium, the links a person opens from their email, axe-core's
accessibility check of each page, and screenshots under test-artifacts/ when a test fails:
the page it failed on and the key pages of the walk up to there."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from chainconsult.infra.settings.backups import StorageSettings
from chainconsult.web import PAGE_STATIC_PATH, STATIC_DIR
from tests.conftest import TEST_SECRET, missing_service
from tests.helpers import PASSWORD
from tests.smtp import Received, SmtpSink, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=en-US",
    "--window-size=1280,1000",
)
SERIOUS = frozenset({"serious", "critical"})
WAIT_S = 15
MAIL_WAIT_S = 30
"""An email goes out through the server's job worker: on a busy machine, seconds later."""
MAX_UPLOAD_BYTES: int = StorageSettings.model_fields["max_upload_bytes"].default
"""The product's default, which the walks' server keeps."""
VERIFY_SUBJECT = "Confirm your email address for chainconsult"
RESET_SUBJECT = "Reset your chainconsult password"


def _gone(element: WebElement) -> Callable[[WebDriver], bool]:
    """The page holding ``element`` was replaced. Selenium's staleness_of, except that a node
    caught while Chromium swaps documents ("does not belong to the document") counts too."""

    def check(_driver: WebDriver) -> bool:
        try:
            element.is_enabled()
        except (StaleElementReferenceException, WebDriverException):
            return True
        return False

    return check


@dataclass
class Server:
    base: str
    sink: SmtpSink
    database_url: str
    data_dir: Path

    def create_admin(self, email: str) -> None:
        """`chainconsult create-admin`, as an operator would run it."""
        result = subprocess.run(
            [sys.executable, "-m", "chainconsult", "create-admin", email, "--password-stdin"],
            input=PASSWORD + "\n",
            env=_server_env(self.database_url, self.sink, self.base, self.data_dir),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    def mail(self, to: str, subject: str, timeout: float = MAIL_WAIT_S) -> Received:
        """The email with ``subject`` to ``to``, waiting for the worker to send it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.sink.messages_to(to):
                if message.message["Subject"] == subject:
                    return message
            time.sleep(0.05)
        got = [m.message["Subject"] for m in self.sink.messages_to(to)]
        raise AssertionError(f"no email {subject!r} to {to} within {timeout} s; got {got}")

    def link(self, to: str, subject: str, path: str) -> str:
        """The one link to this server's ``path`` (with its query) in that email's text."""
        text = self.mail(to, subject).part("plain")
        found = re.findall(re.escape(self.base + path) + r"(?:\?[^\s>]*)?", text)
        assert len(found) == 1, f"links to {path} in {subject!r}: {found}"
        return str(found[0])


def _server_env(database_url: str, sink: SmtpSink, base: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url.replace("+psycopg", ""),
        CHAINCONSULT_DATA_DIR=str(data_dir),
        CHAINCONSULT_ENV="test",
        SECRET_KEY=TEST_SECRET,
        LOG_LEVEL="WARNING",
        PUBLIC_URL=base,
        EMAIL_SERVICE="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port),
        SMTP_TLS="none",
        SMTP_FROM="chainconsult <no-reply@chainconsult.example>",
        RATE_LIMIT_AUTH="100000/minute",
        RATE_LIMIT_ANONYMOUS="100000/minute",
        RATE_LIMIT_FREE="100000/minute",
        RATE_LIMIT_PRO="100000/minute",
        RATE_LIMIT_ENTERPRISE="100000/minute",
        # The product's default, whatever the environment of the test process says: people in
        # the browser confirm their address from the mailed link before they post or apply.
        REQUIRE_VERIFIED_EMAIL="true",
    )
    return env


@contextmanager
def running_server(database_url: str, data_dir: Path) -> Iterator[Server]:
    """`chainconsult serve --with-worker` on a free port, its email going to an SMTP sink."""
    sink = SmtpSink().start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "chainconsult", "serve", "--port", str(port), "--with-worker"],
        env=_server_env(database_url, sink, base, data_dir),
        stdout=subprocess.DEVNULL,
    )
    try:
        # Generous: on a busy 2-core machine a cold start of serve and its worker is slow.
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("chainconsult serve did not become ready")
            time.sleep(0.1)
        yield Server(base, sink, database_url, data_dir)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        sink.stop()


@contextmanager
def chromium(*, javascript: bool = True) -> Iterator[webdriver.Chrome]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        missing_service("Chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def served(page: str, head: str = "") -> str:
    """A page as the browser gets it, loading its CSS and scripts from the static directory."""
    page = page.replace(f'"{PAGE_STATIC_PATH}/', f'"{STATIC_DIR.as_uri()}/')
    return page.replace("</head>", head + "</head>", 1)


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that takes no room on disk, for uploads over a limit."""
    with path.open("wb") as file:
        file.truncate(size)
    return path


def serious_findings(driver: WebDriver, where: str) -> list[str]:
    """axe-core's serious and critical findings on the page the driver shows."""
    driver.execute_script(AXE.read_text())
    found: list[dict[str, Any]] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations), e => done([{id: 'axe-error', impact: 'critical',"
        " help: String(e), nodes: []}]));"
    )
    return [
        f"{where}: {v['id']} ({v['impact']}): {v.get('help')} "
        f"{[node.get('target') for node in v.get('nodes', [])][:3]}"
        for v in found
        if v.get("impact") in SERIOUS
    ]


def axe_violations(pages: dict[str, str], tmp_path: Path) -> list[str]:
    """axe-core's serious and critical findings on each page as served (its own CSS and
    scripts loaded from the static directory), as the browser walk checks its pages."""
    found: list[str] = []
    with chromium() as driver:
        for name, page in pages.items():
            file = tmp_path / f"{name}.html"
            file.write_text(served(page))
            driver.get(file.as_uri())
            found += serious_findings(driver, name)
    return found


def screenshot_on_failure(request: pytest.FixtureRequest, visitor: Visitor) -> None:
    """After a failed test, in test-artifacts/: the page it was on (PNG and HTML), and the key
    pages the visitor had kept before it (``Visitor.keep``), numbered in the order seen."""
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    stem = ARTIFACTS / request.node.name
    visitor.driver.save_screenshot(str(stem.with_suffix(".png")))
    stem.with_suffix(".html").write_text(visitor.driver.page_source)
    for number, (name, png) in enumerate(visitor.key_pages, start=1):
        (ARTIFACTS / f"{request.node.name}-{number:02d}-{name}.png").write_bytes(png)


@dataclass
class Visitor:
    """One person at the browser: goes to pages, fills forms, and has each page checked."""

    driver: webdriver.Chrome
    server: Server
    check_accessibility: bool = True
    violations: list[str] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    key_pages: list[tuple[str, bytes]] = field(default_factory=list)
    """Screenshots (PNG) of the walk's key pages, written out only if the test fails."""

    @property
    def wait(self) -> WebDriverWait[webdriver.Chrome]:
        return WebDriverWait(self.driver, WAIT_S, poll_frequency=0.05)

    def open(self, path: str) -> None:
        self.driver.get(self.server.base + path)
        self.arrived()

    def follow(self, url: str) -> None:
        """Open a link from an email, as a click in a mail client does."""
        assert url.startswith(self.server.base + "/"), url
        self.driver.get(url)
        self.arrived()

    def keep(self, name: str) -> None:
        """Screenshot the page now on screen, for the artifacts of a failed test."""
        self.key_pages.append((name, self.driver.get_screenshot_as_png()))

    def confirm_email(self, email: str) -> None:
        """Open the emailed confirmation link and confirm the address (the link's page only
        shows a button: a mail scanner that fetches links must not spend the token)."""
        self.follow(self.server.link(email, VERIFY_SUBJECT, "/verify-email"))
        self.submit("#verify-submit")
        assert "your address is confirmed" in self.text("#notice")

    def in_new_tab(self, steps: Callable[[], None]) -> None:
        """Run ``steps`` in a tab of their own (a link opened from the mail client beside the
        page being filled in), then close it and come back to this page. A failed step
        leaves its tab in front, for the screenshot."""
        here = self.driver.current_window_handle
        self.driver.switch_to.new_window("tab")
        steps()
        self.driver.close()
        self.driver.switch_to.window(here)

    def arrived(self) -> None:
        """A page has loaded: check it (once per kind of page). Selenium itself waits for the
        load of a page it navigates to; a click's page is awaited by ``submit``."""
        self.find("main")
        self.audit()

    def audit(self) -> None:
        if not self.check_accessibility:
            return
        page = self.driver.execute_script("return location.pathname")
        kind = "/".join("{id}" if len(part) == 36 else part for part in page.split("/"))
        if kind in self.checked:
            return
        self.checked.add(kind)
        self.violations += serious_findings(self.driver, page)

    def find(self, selector: str) -> WebElement:
        return self.wait.until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector))
        )

    def text(self, selector: str = "main") -> str:
        return str(self.find(selector).text)

    def type(self, field_id: str, value: str) -> None:
        element = self.find(f"#{field_id}")
        element.clear()
        element.send_keys(value)

    def choose(self, field_id: str, value: str) -> None:
        Select(self.find(f"#{field_id}")).select_by_value(value)

    def tick(self, name: str, *values: str) -> None:
        for value in values:
            box = self.find(f'input[name="{name}"][value="{value}"]')
            if not box.is_selected():
                box.click()

    def submit(self, button_selector: str) -> None:
        """Click a form's button and wait for the page it leads to."""
        old = self.find("html")
        self.find(button_selector).click()
        self.wait.until(_gone(old))
        self.arrived()

    def click_link(self, text: str) -> None:
        old = self.find("html")
        self.find("main").find_element(By.LINK_TEXT, text).click()
        self.wait.until(_gone(old))
        self.arrived()

    def log_in(self, email: str, password: str = PASSWORD) -> None:
        self.driver.delete_all_cookies()
        self.open("/login")
        self.type("f-email", email)
        self.type("f-password", password)
        self.submit("#login-submit")

    def register(self, *, name: str, email: str, role: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/")
        old = self.find("html")
        self.find("#register-link").click()
        self.wait.until(_gone(old))
        self.arrived()
        self.type("f-display-name", name)
        self.type("f-email", email)
        self.type("f-password", PASSWORD)
        self.find(f'input[name="role"][value="{role}"]').click()
        self.submit("#register-submit")

    def unread(self) -> int:
        badges = self.driver.find_elements(By.ID, "unread-count")
        if not badges:
            return 0
        return int(re.sub(r"\D", "", badges[0].get_attribute("textContent") or ""))
