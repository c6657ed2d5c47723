"""The escrow pages over HTTP on the development chain: the owner edits the plan (refusals kept
beside their fields), nobody else can; funding and disputing render the transactions a wallet
sends (sent here as escrow.js would); the admin arbitrates a dispute on its page."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from httpx import AsyncClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from chainconsult.app import create_app
from tests.escrow.conftest import (  # noqa: F401 (fixtures)
    Platform,
    chain,
    escrow,
    platform,
    stablecoin,
)
from tests.escrow.scenario import Deal, milestone_rows, mint, planned_deal, sign_and_send
from tests.helpers import serving
from tests.market import Headers, client_account, query
from tests.web.browser import axe_violations, chromium, served
from tests.web.conftest import form_token, post_form

_STEP = re.compile(r'data-wallet-step="([^"]+)"')


@asynccontextmanager
async def page_client(on: Platform, headers: Headers) -> AsyncIterator[AsyncClient]:
    """A browser of the platform's pages, signed in with ``headers``' bearer token."""
    async with serving(create_app(on.settings), headers={"Accept": "text/html", **headers}) as http:
        yield http


def wallet_step(page: str) -> dict[str, Any]:
    """What escrow.js reads from the page: the chain and the transactions to send."""
    found = _STEP.search(page)
    assert found is not None, "no wallet step on the page"
    step: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return step


# An injected wallet as a browser extension provides it (EIP-1193), here forwarding to the
# development chain, whose deterministic accounts it unlocks (ganache signs for them).
_WALLET = """<script>
window.ethereum = {
  request: async ({ method, params }) => {
    if (method === "eth_requestAccounts") return [%(account)s];
    if (method === "eth_sendTransaction") {
      // As a wallet does: the gas limit from an estimate.
      const gas = await call("eth_estimateGas", params);
      params = [{ ...params[0], gas: "0x" + (BigInt(gas) * 6n / 5n).toString(16) }];
    }
    return call(method, params);
  },
};
async function call(method, params) {
    const answer = await fetch(%(url)s, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: params || [] }),
    });
    const body = await answer.json();
    if (body.error) throw new Error(body.error.message);
    return body.result;
}
</script>"""


def plan_form(deal: Deal, rows: list[tuple[str, str, str]]) -> dict[str, str]:
    data: dict[str, str] = {}
    for i, (title, amount, due) in enumerate(rows):
        data |= {f"m{i}.title": title, f"m{i}.amount": amount, f"m{i}.due_date": due}
    return data


async def test_the_owner_edits_the_plan_on_the_page(
    platform: Platform,  # noqa: F811 (the fixture)
    database_url: str,
    tmp_path: Path,
) -> None:
    deal = await planned_deal(platform, database_url, wallet=platform.chain.expert)
    path = f"/projects/{deal.project_id}/escrow"
    async with page_client(platform, deal.client) as browser:
        project = await browser.get(f"/projects/{deal.project_id}")
        assert f'href="{path}"' in project.text

        page = await browser.get(path)
        assert page.status_code == 200, page.text[:2000]
        assert "3,000.00 USD" in page.text
        assert "6,000.00 USD" in page.text
        assert 'id="plan-form"' in page.text
        assert 'value="Design review"' in page.text

        due = milestone_rows(database_url, deal.project_id)[0]["due_date"].isoformat()
        # Amounts that do not add up to the price: refused, with what was typed kept.
        wrong = plan_form(
            deal, [("Threat model", "2000.00", due), ("Audit", "6000.00", due), ("", "", "")]
        )
        refused = await post_form(browser, f"{path}/plan", wrong, token_from=path)
        assert refused.status_code == 422, refused.text[:2000]
        assert "the accepted price is 9000.00" in refused.text
        assert 'value="Threat model"' in refused.text
        # A field the schema refuses is said beside its row's field.
        bad = plan_form(deal, [("Threat model", "-5", due), ("Audit", "9005.00", due)])
        refused = await post_form(browser, f"{path}/plan", bad, token_from=path)
        assert refused.status_code == 422
        assert re.search(r'id="f-m0-amount-error">', refused.text)
        assert axe_violations({"plan-refused": refused.text}, tmp_path) == []

        # No milestone at all is no plan.
        empty = await post_form(browser, f"{path}/plan", plan_form(deal, []), token_from=path)
        assert empty.status_code == 422
        assert "The plan: List should have at least 1 item" in empty.text

        right = plan_form(
            deal,
            [("Threat model", "2000.00", due), ("Audit", "4000.00", due), ("Fixes", "3000", due)],
        )
        saved = await post_form(browser, f"{path}/plan", right, token_from=path)
        assert saved.status_code == 303, saved.text[:2000]
        assert saved.headers["location"] == f"{path}?notice=planned"
    assert [
        (m["title"], str(m["amount"])) for m in milestone_rows(database_url, deal.project_id)
    ] == [
        ("Threat model", "2000.00"),
        ("Audit", "4000.00"),
        ("Fixes", "3000.00"),
    ]


async def test_only_the_owner_may_change_the_plan(
    platform: Platform,  # noqa: F811 (the fixture)
    database_url: str,
) -> None:
    deal = await planned_deal(platform, database_url, wallet=platform.chain.expert)
    path = f"/projects/{deal.project_id}/escrow"
    due = milestone_rows(database_url, deal.project_id)[0]["due_date"].isoformat()
    plan = plan_form(deal, [("Everything", "9000.00", due)])

    async with page_client(platform, deal.expert) as browser:
        page = await browser.get(path)
        assert page.status_code == 200
        assert "Design review" in page.text
        assert 'id="plan-form"' not in page.text
        refused = await browser.post(f"{path}/plan", data={**plan, "csrf_token": form_token(page)})
        assert refused.status_code == 403, refused.text[:2000]
        assert refused.headers["content-type"].startswith("text/html")

    _account, stranger = await client_account(platform.http)
    async with page_client(platform, stranger) as browser:
        page = await browser.get(path)
        assert page.status_code in (403, 404)
        assert "Design review" not in page.text
    assert [m["title"] for m in milestone_rows(database_url, deal.project_id)] == [
        "Design review",
        "Full audit",
    ]


async def test_fund_dispute_and_arbitrate_through_the_pages(
    platform: Platform,  # noqa: F811 (the fixture)
    database_url: str,
    tmp_path: Path,
) -> None:
    dev = platform.chain
    deal = await planned_deal(platform, database_url, wallet=dev.expert)
    path = f"/projects/{deal.project_id}/escrow"
    async with page_client(platform, deal.client) as browser:
        funding = await post_form(browser, f"{path}/fund", {}, token_from=path)
        assert funding.status_code == 200, funding.text[:2000]
        assert "9,000.00 USDC" in funding.text
        step = wallet_step(funding.text)
        assert step["chain_id"] == 1337
        assert len(step["transactions"]) == 3
        mint(platform, dev.client, 9_000_000_000)
        sign_and_send(platform, dev.client, step["transactions"])
        dev.rpc("evm_mine")
        dev.rpc("evm_mine")
        await platform.follow()

        page = await browser.get(path)
        assert "3,000.00 USDC" in page.text
        assert "6,000.00 USDC" in page.text
        assert page.text.count('class="release"') == 2
        second = deal.milestone_ids[1]
        disputed = await post_form(
            browser, f"/milestones/{second}/dispute", {"reason": "Not delivered."}, token_from=path
        )
        assert disputed.status_code == 200, disputed.text[:2000]
        sign_and_send(platform, dev.client, wallet_step(disputed.text)["transactions"])
        dev.rpc("evm_mine")
        dev.rpc("evm_mine")
        await platform.follow()
        # A client is no arbiter.
        assert (await browser.get(f"/admin/milestones/{second}/resolution")).status_code == 403

    arbitration = f"/admin/milestones/{second}/resolution"
    async with page_client(platform, deal.admin) as admin:
        page = await admin.get(arbitration)
        assert page.status_code == 200, page.text[:2000]
        assert "6,000.00 USDC" in page.text
        assert "Not delivered." in page.text
        refused = await post_form(
            admin, arbitration, {"expert_share_bps": "20000", "note": "Split."}
        )
        assert refused.status_code == 422
        assert 'id="f-expert-share-bps-error"' in refused.text
        assert 'value="20000"' in refused.text
        pages = {"wallet-step": funding.text, "funded": page.text, "arbitration": refused.text}
        awarded = await post_form(
            admin, arbitration, {"expert_share_bps": "7000", "note": "Mostly delivered."}
        )
        assert awarded.status_code == 303, awarded.text[:2000]
        shown = await admin.get(awarded.headers["location"])
        assert "7000 bps to the expert" in shown.text
    assert axe_violations(pages, tmp_path) == []

    assert query(
        database_url,
        "SELECT args->>'milestone_id' FROM procrastinate_jobs "
        "WHERE task_name = 'escrow.send_resolution'",
    ) == [(second,)]
    assert query(
        database_url,
        "SELECT details->>'expert_share_bps' FROM audit_log "
        "WHERE action = 'escrow.resolution_requested' AND resource_id = %s",
        second,
    ) == [("7000",)]


async def test_the_page_sends_the_deposit_through_an_injected_wallet(
    platform: Platform,  # noqa: F811 (the fixture)
    database_url: str,
    tmp_path: Path,
) -> None:
    dev = platform.chain
    deal = await planned_deal(platform, database_url, wallet=dev.expert)
    path = f"/projects/{deal.project_id}/escrow"
    async with page_client(platform, deal.client) as browser:
        funding = await post_form(browser, f"{path}/fund", {}, token_from=path)
    assert funding.status_code == 200, funding.text[:2000]
    mint(platform, dev.client, 9_000_000_000)
    without = tmp_path / "without.html"
    without.write_text(served(funding.text))
    wallet = _WALLET % {"account": json.dumps(dev.client.address), "url": json.dumps(dev.url)}
    with_wallet = tmp_path / "with.html"
    with_wallet.write_text(served(funding.text, wallet))

    with chromium() as driver:
        # No wallet: the transactions stay as data, no button to press.
        driver.get(without.as_uri())
        assert driver.find_element(By.ID, "wallet-none").is_displayed()
        assert not driver.find_element(By.ID, "wallet-send").is_displayed()
        assert len(driver.find_elements(By.CSS_SELECTOR, ".calldata")) == 3

        driver.get(with_wallet.as_uri())
        button = WebDriverWait(driver, 10).until(
            expected_conditions.visibility_of_element_located((By.ID, "wallet-send"))
        )
        assert not driver.find_element(By.ID, "wallet-none").is_displayed()
        button.click()
        WebDriverWait(driver, 30).until(
            expected_conditions.text_to_be_present_in_element(
                (By.ID, "wallet-status"), "All 3 transaction(s) sent"
            )
        )
    dev.rpc("evm_mine")
    dev.rpc("evm_mine")
    await platform.follow()
    assert [m["status"] for m in milestone_rows(database_url, deal.project_id)] == [
        "funded",
        "funded",
    ]
