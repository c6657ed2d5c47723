"""The whole marketplace in headless Chromium, as three people, against a real server with its
job worker, an SMTP sink and the product's default REQUIRE_VERIFIED_EMAIL=true: a client
registers, is refused posting until they confirm their address from the mailed link, then
posts a project; an expert registers, confirms, and applies; an admin (made by `chainconsult
create-admin`) approves; the expert finds the project and proposes; the client accepts,
writes to the expert in their thread and attaches a file (which the expert downloads),
completes and reviews; the expert, having forgotten the password, sets a new one through the
emailed link and logs in with it. Notifications (the header's unread count and the
notifications page) and emails appear at each step, and axe-core finds no serious or
critical accessibility violation on any page visited."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from tests.helpers import PASSWORD
from tests.web.browser import (
    MAX_UPLOAD_BYTES,
    RESET_SUBJECT,
    Server,
    Visitor,
    chromium,
    running_server,
    screenshot_on_failure,
    sparse_file,
)

pytestmark = pytest.mark.slow
TITLE = "Audit our lending vaults"
NEW_PASSWORD = "a new passphrase after a long holiday"
SCOPE = "Vaults A to D at commit 1a2b3c; the oracle adapter is out of scope."


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(database_url, tmp_path_factory.mktemp("walk")) as running:
        yield running


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def visitor(
    request: pytest.FixtureRequest, driver: webdriver.Chrome, server: Server
) -> Iterator[Visitor]:
    visitor = Visitor(driver, server)
    yield visitor
    screenshot_on_failure(request, visitor)


def test_a_client_an_expert_and_an_admin_use_the_marketplace(
    visitor: Visitor, server: Server, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    client, expert, admin = (f"{who}-{tag}@example.com" for who in ("client", "expert", "admin"))
    page = visitor

    # A client registers from the home page; posting waits until the address is confirmed.
    page.register(name="Acme Labs", email=client, role="client")
    assert page.find("html").get_attribute("data-script") == "on"  # our script runs (CSP)
    assert page.driver.current_url.endswith("/projects/new")
    page.keep("client-registered")
    welcome = server.mail(client, "Welcome to chainconsult, Acme Labs").part("plain")
    assert f"{server.base}/projects/new" in welcome
    page.type("f-title", TITLE)
    page.type("f-description", "Four vault contracts, 1,400 lines of Solidity, Foundry tests.")
    page.tick("skills", "solidity", "smart-contract-audit")
    page.tick("chains", "ethereum")
    page.type("f-budget-min", "5000")
    page.type("f-budget-max", "12000")
    page.choose("f-budget-currency", "USD")
    page.type("f-deadline", "12312099")
    page.submit("#project-submit")
    assert "Confirm your email address first" in page.text("#error-summary")
    assert page.find("#f-title").get_attribute("value") == TITLE  # what was typed is kept
    page.keep("client-refused-unverified")

    # The client opens the emailed link beside the form, confirms, and posts again.
    page.in_new_tab(lambda: page.confirm_email(client))
    page.submit("#project-submit")
    assert "Project posted" in page.text("#notice")
    assert page.text("#project-status") == "Open"
    page.keep("client-project-posted")
    project_url = page.driver.current_url.split("?")[0]

    # An expert registers, confirms the address from the email, and applies.
    page.register(name="Ada Quillfeather", email=expert, role="expert")
    assert page.driver.current_url.endswith("/experts/apply")
    page.confirm_email(expert)
    page.keep("expert-confirmed")
    # The welcome email's link leads back to the application form.
    page.follow(server.link(expert, "Welcome to chainconsult, Ada Quillfeather", "/experts/apply"))
    page.type("f-headline", "Solidity auditor for lending protocols")
    page.type("f-bio", "Eight years of smart contract audits: lending markets, vaults, AMMs.")
    page.tick("skills", "solidity", "smart-contract-audit")
    page.tick("chains", "ethereum", "arbitrum")
    page.type("f-hourly-rate-amount", "180")
    page.type("f-years-experience", "8")
    page.type("f-portfolio-links", "https://github.com/example/audits")
    page.submit("#apply-submit")
    assert "Application sent" in page.text("#notice")
    assert "Submitted" in page.text("#applications")
    page.keep("expert-applied")

    # An admin approves, with a note.
    server.create_admin(admin)
    page.log_in(admin)
    page.open("/admin/applications")
    card = page.find("#applications li")
    assert "Solidity auditor for lending protocols" in card.text
    card.find_element("css selector", "textarea").send_keys("Strong audit portfolio.")
    page.submit("#applications li button.approve")
    assert "Application approved" in page.text("#notice")
    page.keep("admin-approved")
    page.open("/admin/users?email=" + expert)
    assert "Expert" in page.text("#user")
    page.open("/admin/audit-log")
    assert "expert_application.approved" in page.text("#audit-log")

    # The expert sees the decision, finds the project and proposes.
    page.log_in(expert)
    assert page.unread() == 1
    server.mail(expert, "Your expert application was approved")
    page.open("/notifications")
    assert "Your expert application was approved" in page.text("#notifications")
    page.submit("#notifications li.unread button")
    assert page.unread() == 0
    page.open("/projects")
    page.click_link(TITLE)
    page.type("f-cover-letter", "I audited three lending protocols with this exact design.")
    page.type("f-price-amount", "9000")
    page.type("f-estimated-days", "14")
    page.submit("#proposal-submit")
    assert "Proposal sent" in page.text("#notice")
    assert "Pending" in page.text("#proposals")
    page.keep("expert-proposed")

    # The client is told, accepts, completes and reviews.
    page.log_in(client)
    assert page.unread() == 1
    assert "Ada Quillfeather" in server.mail(client, f'New proposal on "{TITLE}"').part("plain")
    page.open("/notifications")
    page.click_link(TITLE)
    assert page.driver.current_url.split("?")[0] == project_url
    assert "Ada Quillfeather" in page.text("#proposals")
    page.submit("#proposals button.accept")
    assert page.text("#project-status") == "In progress"
    # In their thread the client writes and attaches the scope; a file over the limit is
    # refused by the page before it is sent.
    page.submit("#proposals button.message")
    page.type("f-body", "The audit scope is attached.")
    page.submit("#send-message")
    scope = tmp_path / "audit-scope.txt"
    scope.write_text(SCOPE)
    page.find("#f-file").send_keys(str(scope))
    page.submit("#upload-file")
    assert "audit-scope.txt" in page.text("#messages")
    too_big = sparse_file(tmp_path / "too-big.bin", MAX_UPLOAD_BYTES + 1)
    page.find("#f-file").send_keys(str(too_big))
    assert "larger than the limit" in page.find("#f-file").get_property("validationMessage")
    page.keep("client-attached-a-file")
    page.open(project_url.removeprefix(server.base))
    page.submit("#complete-project")
    assert page.text("#project-status") == "Completed"
    page.find('input[name="rating"][value="5"]').click()
    page.type("f-text", "Found two critical bugs before launch and explained them well.")
    page.submit("#review-submit")
    assert "Found two critical bugs" in page.text("#review-text")
    page.keep("client-reviewed")

    # The expert hears of each step, and the review is on the public profile.
    page.log_in(expert)
    assert page.unread() == 3
    server.mail(expert, f'Your proposal for "{TITLE}" was accepted')
    server.mail(expert, f'"{TITLE}" is complete')
    server.mail(expert, "You received a 5-star review")
    page.open("/conversations")
    page.click_link(f"Conversation about project {project_url.rsplit('/', 1)[-1]}")
    assert "The audit scope is attached." in page.text("#messages")
    link = page.find("#messages a[download]").get_attribute("href")
    downloaded = page.driver.execute_async_script(
        "fetch(arguments[0]).then(r => r.text()).then(arguments[arguments.length - 1]);", link
    )
    assert downloaded == SCOPE
    page.open("/account")
    page.click_link("Email settings: which emails you get")
    assert page.find('input[value="message_digest"]').is_selected()
    page.open("/account")
    page.click_link("Your public profile and reviews")
    assert "Found two critical bugs" in page.text("#reviews")

    # Weeks later the expert has forgotten the password: the login page leads to a mailed
    # link, which sets a new one; the old password no longer works, the new one does.
    page.driver.delete_all_cookies()
    page.open("/login")
    page.click_link("Forgot your password?")
    page.type("f-email", expert)
    page.submit("#forgot-submit")
    assert "we have emailed it a link" in page.text("#notice")
    page.follow(server.link(expert, RESET_SUBJECT, "/reset-password"))
    page.keep("expert-reset-page")
    page.type("f-new-password", NEW_PASSWORD)
    page.submit("#reset-submit")
    assert "Your password was changed" in page.text("#notice")
    server.mail(expert, "Your chainconsult password was changed")
    page.click_link("Log in")
    page.type("f-email", expert)
    page.type("f-password", PASSWORD)
    page.submit("#login-submit")
    assert "Wrong email or password" in page.text("#error-summary")
    page.log_in(expert, NEW_PASSWORD)
    assert page.text("#viewer-name") == "Ada Quillfeather"
    page.keep("expert-logged-in-again")
    page.driver.delete_all_cookies()
    page.open("/")
    page.type("home-q", "lending auditor")
    page.submit(".search button")
    assert "Ada Quillfeather" in page.text("#experts")
    assert page.find("#experts mark").text

    # The dark scheme is checked too (its contrast is its own).
    page.driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    page.checked.clear()
    for path in ("/", "/experts?q=lending", project_url.removeprefix(server.base), "/login"):
        page.open(path)
    assert page.violations == []
