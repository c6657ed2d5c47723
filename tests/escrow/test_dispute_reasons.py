"""Each party's dispute reason is kept with its hash: asking for a dispute transaction that is
never sent does not replace the reason of the dispute the chain confirmed, and the arbiter sees
the reason whose hash is on chain. A reason is its party's personal data."""

from __future__ import annotations

from tests.escrow.conftest import Platform
from tests.escrow.scenario import Deal, mint, planned_deal, sign_and_send
from tests.helpers import PASSWORD
from tests.market import query

SENT = "The design review was never delivered."
NOT_SENT = "The design review was delivered in full."


async def funded_deal(platform: Platform, database_url: str) -> Deal:
    chain = platform.chain
    deal = await planned_deal(platform, database_url, wallet=chain.expert)
    funding = await platform.http.post(
        f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client
    )
    mint(platform, chain.client, 9_000_000_000)
    sign_and_send(platform, chain.client, funding.json()["transactions"])
    chain.rpc("evm_mine")
    chain.rpc("evm_mine")
    await platform.follow()
    return deal


async def arbiter_sees(platform: Platform, deal: Deal, milestone_id: str) -> str:
    page = await platform.http.get(
        f"/admin/milestones/{milestone_id}/resolution",
        headers={**deal.admin, "Accept": "text/html"},
    )
    assert page.status_code == 200, page.text[:2000]
    return page.text


async def test_the_arbiter_sees_the_reason_of_the_dispute_confirmed_on_chain(
    platform: Platform, database_url: str
) -> None:
    chain, http = platform.chain, platform.http
    deal = await funded_deal(platform, database_url)
    first = deal.milestone_ids[0]
    sent = await http.post(
        f"/api/v2/milestones/{first}/dispute", json={"reason": SENT}, headers=deal.client
    )
    assert sent.status_code == 200, sent.text
    # The expert asks too while the milestone is still funded, and never sends it.
    unsent = await http.post(
        f"/api/v2/milestones/{first}/dispute", json={"reason": NOT_SENT}, headers=deal.expert
    )
    assert unsent.status_code == 200, unsent.text
    sign_and_send(platform, chain.client, sent.json()["transactions"])
    chain.rpc("evm_mine")
    chain.rpc("evm_mine")
    await platform.follow()

    page = await arbiter_sees(platform, deal, first)
    assert SENT in page
    assert NOT_SENT not in page


async def test_an_erased_party_s_reason_is_gone_and_the_arbiter_is_told(
    platform: Platform, database_url: str
) -> None:
    chain, http = platform.chain, platform.http
    deal = await funded_deal(platform, database_url)
    first = deal.milestone_ids[0]
    sent = await http.post(
        f"/api/v2/milestones/{first}/dispute", json={"reason": SENT}, headers=deal.client
    )
    sign_and_send(platform, chain.client, sent.json()["transactions"])
    chain.rpc("evm_mine")
    chain.rpc("evm_mine")
    await platform.follow()
    export = await http.get("/api/v2/me/export", headers=deal.client)
    assert [r["reason"] for r in export.json()["tables"]["milestone_dispute_reasons"]] == [SENT]

    erased = await http.request(
        "DELETE", "/api/v2/me", json={"password": PASSWORD}, headers=deal.client
    )
    assert erased.status_code == 204, erased.text
    assert (
        query(
            database_url,
            "SELECT reason FROM milestone_dispute_reasons WHERE milestone_id = %s",
            first,
        )
        == []
    )
    page = await arbiter_sees(platform, deal, first)
    assert SENT not in page
    assert "none on record matches the dispute on chain" in page
