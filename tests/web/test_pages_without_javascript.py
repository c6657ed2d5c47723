"""Every page works with JavaScript off: a shorter walk in a Chromium that runs no script,
through each kind of form (register, confirm the address from the mailed link, a refused
project form that keeps what was typed, a search, a proposal, a notification marked read,
accept, a file refused for its size and one attached, complete, review, log out)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver

from tests.helpers import PASSWORD
from tests.market import application_body
from tests.web.browser import (
    MAX_UPLOAD_BYTES,
    VERIFY_SUBJECT,
    Server,
    Visitor,
    chromium,
    running_server,
    screenshot_on_failure,
    sparse_file,
)

pytestmark = pytest.mark.slow
TITLE = "Port our vaults to Arbitrum"


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(database_url, tmp_path_factory.mktemp("nojs")) as running:
        yield running


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    with chromium(javascript=False) as browser:
        yield browser


@pytest.fixture
def visitor(
    request: pytest.FixtureRequest, driver: webdriver.Chrome, server: Server
) -> Iterator[Visitor]:
    visitor = Visitor(driver, server, check_accessibility=False)
    yield visitor
    screenshot_on_failure(request, visitor)


def approved_expert(server: Server, name: str) -> str:
    """An expert approved through the API (the JavaScript walk does it through the pages)."""
    email = f"expert-{uuid.uuid4().hex[:8]}@example.com"
    admin = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    server.create_admin(admin)
    with httpx.Client(base_url=server.base, timeout=30) as api:

        def bearer(who: str) -> dict[str, str]:
            answer = api.post("/api/v2/auth/login", json={"email": who, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        account = {"email": email, "password": PASSWORD, "display_name": name, "role": "expert"}
        assert api.post("/api/v2/auth/register", json=account).status_code == 201
        token = server.link(email, VERIFY_SUBJECT, "/verify-email").rsplit("token=", 1)[1]
        assert api.post("/api/v2/auth/verify-email", json={"token": token}).status_code == 204
        applied = api.post(
            "/api/v2/expert-applications", json=application_body(), headers=bearer(email)
        )
        assert applied.status_code == 201, applied.text
        decided = api.post(
            f"/api/v2/admin/expert-applications/{applied.json()['id']}/decision",
            json={"decision": "approve", "note": ""},
            headers=bearer(admin),
        )
        assert decided.status_code == 200, decided.text
    return email


def test_the_marketplace_works_without_javascript(
    visitor: Visitor, server: Server, tmp_path: Path
) -> None:
    page = visitor
    expert = approved_expert(server, "Grace Underwood")
    client = f"client-{uuid.uuid4().hex[:8]}@example.com"

    page.open("/")
    assert page.find("html").get_attribute("data-script") is None  # no script ran
    page.type("home-q", "Grace")
    page.submit(".search button")
    assert "Grace Underwood" in page.text("#experts")

    page.register(name="Nova Labs", email=client, role="client")
    page.confirm_email(client)  # a form post, as every step here
    page.open("/projects/new")
    page.type("f-title", TITLE)
    page.type("f-description", "Three vaults and their keeper bots, moving to Arbitrum.")
    page.type("f-budget-min", "3000")
    page.type("f-budget-max", "6000")
    page.type("f-deadline", "12312099")
    page.submit("#project-submit")  # no skill, no chain: refused beside those fields
    assert "There is a problem" in page.text("#error-summary")
    assert page.find("#f-skills-error").text
    assert page.find("#f-title").get_attribute("value") == TITLE
    page.tick("skills", "solidity")
    page.tick("chains", "arbitrum")
    page.submit("#project-submit")
    assert "Project posted" in page.text("#notice")
    project = page.driver.current_url.split("?")[0].removeprefix(server.base)

    page.log_in(expert)
    page.open(project)
    page.type("f-cover-letter", "I moved two vault systems to Arbitrum last year.")
    page.type("f-price-amount", "4500")
    page.type("f-estimated-days", "10")
    page.submit("#proposal-submit")
    assert "Proposal sent" in page.text("#notice")

    page.log_in(client)
    assert page.unread() == 1
    page.open("/notifications")
    page.submit("#notifications li.unread button")
    assert page.unread() == 0
    page.open(project)
    page.submit("#proposals button.accept")
    # No script to stop a file over the limit: the server refuses it with a page.
    page.submit("#proposals button.message")
    thread = page.driver.current_url.split("#")[0].removeprefix(server.base)
    huge = sparse_file(tmp_path / "huge.bin", MAX_UPLOAD_BYTES + 1024 * 1024)
    page.find("#f-file").send_keys(str(huge))
    page.submit("#upload-file")
    assert "Request body too large" in page.text("h1")
    assert "smaller file" in page.text()
    page.open(thread)
    notes = tmp_path / "handover.txt"
    notes.write_text("Keeper bot keys are rotated on Mondays.")
    page.find("#f-file").send_keys(str(notes))
    page.submit("#upload-file")
    assert "handover.txt" in page.text("#messages")
    page.open(project)
    page.submit("#complete-project")
    page.find('input[name="rating"][value="4"]').click()
    page.type("f-text", "Careful work, on time.")
    page.submit("#review-submit")
    assert "Careful work" in page.text("#review-text")
    page.submit("#logout")
    assert page.find("#login-link")
