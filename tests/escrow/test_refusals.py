"""What the API refuses, each with its problem: the steps out of order, the wrong caller,
the unverified payout wallet, and escrow not configured at all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from httpx import Response

from chainconsult.app import create_app
from tests.conftest import make_settings
from tests.escrow.conftest import Platform
from tests.escrow.scenario import PLAN, balance, milestone_rows, mint, planned_deal, sign_and_send
from tests.helpers import serving
from tests.market import client_account, project_body

# Due dates must lie between today and 5 years ahead: a fixed date would expire.
DUE = (dt.date.today() + dt.timedelta(days=90)).isoformat()


def problem(response: Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug), body
    return body


async def test_release_is_refused_unless_funded_by_the_caller_and_only_once(
    platform: Platform, database_url: str
) -> None:
    chain, http = platform.chain, platform.http
    deal = await planned_deal(platform, database_url, wallet=chain.expert)
    first, _second = deal.milestone_ids
    # Unfunded: a draft milestone has nothing to release.
    problem(
        await http.post(f"/api/v2/milestones/{first}/release", headers=deal.client),
        409,
        "milestone-state",
    )
    funding = await http.post(f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client)
    mint(platform, chain.client, 9_000_000_000)
    sign_and_send(platform, chain.client, funding.json()["transactions"])
    chain.rpc("evm_mine")
    await platform.follow()
    # Someone other than the depositor.
    for headers in (deal.expert, deal.admin):
        problem(
            await http.post(f"/api/v2/milestones/{first}/release", headers=headers),
            403,
            "forbidden",
        )
    # Funded milestones freeze the plan.
    replan = await http.put(
        f"/api/v2/projects/{deal.project_id}/milestones",
        json=[{"title": "All", "amount": "9000.00", "due_date": DUE}],
        headers=deal.client,
    )
    problem(replan, 409, "milestone-state")
    release = await http.post(f"/api/v2/milestones/{first}/release", headers=deal.client)
    sign_and_send(platform, chain.client, release.json()["transactions"])
    chain.rpc("evm_mine")
    await platform.follow()
    # Twice.
    twice = await http.post(f"/api/v2/milestones/{first}/release", headers=deal.client)
    assert problem(twice, 409, "milestone-state")["milestone_status"] == "released"
    # A resolution of an undisputed milestone, and by a non-admin.
    award = {"expert_share_bps": 5000, "note": "Split."}
    problem(
        await http.post(
            f"/api/v2/admin/milestones/{first}/resolution", json=award, headers=deal.admin
        ),
        409,
        "milestone-state",
    )
    refused = await http.post(
        f"/api/v2/admin/milestones/{first}/resolution", json=award, headers=deal.client
    )
    assert refused.status_code == 403, refused.text


@pytest.mark.parametrize("on_profile", [False, True], ids=["no-wallet", "wallet-not-proved"])
async def test_payout_to_an_expert_without_a_verified_wallet_is_refused(
    platform: Platform, database_url: str, on_profile: bool
) -> None:
    # A wallet on the profile that its expert never proved by SIWE is no payout address.
    wallet = platform.chain.expert if on_profile else None
    deal = await planned_deal(platform, database_url, wallet=wallet, linked=False)
    funding = await platform.http.post(
        f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client
    )
    problem(funding, 409, "wallet-unverified")
    assert [m["token_address"] for m in milestone_rows(database_url, deal.project_id)] == [
        None,
        None,
    ]


async def test_the_plan_must_add_up_to_the_accepted_price(
    platform: Platform, database_url: str
) -> None:
    deal = await planned_deal(platform, database_url, wallet=platform.chain.expert)
    short = await platform.http.put(
        f"/api/v2/projects/{deal.project_id}/milestones",
        json=[{"title": "Half", "amount": "4500.00", "due_date": DUE}],
        headers=deal.client,
    )
    problem(short, 422, "validation-error")
    plan = await platform.http.get(
        f"/api/v2/projects/{deal.project_id}/milestones", headers=deal.expert
    )
    assert [(m["title"], m["amount"]) for m in plan.json()["data"]] == PLAN
    assert plan.json()["total"] == "9000.00"


async def test_a_deposit_with_other_terms_does_not_fund_the_milestone(
    platform: Platform, database_url: str
) -> None:
    """A deposit under the milestone's key paying another payee is not its funding."""
    chain = platform.chain
    deal = await planned_deal(platform, database_url, wallet=chain.expert)
    funding = await platform.http.post(
        f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client
    )
    approve, deposit, _ = funding.json()["transactions"]
    args = list(platform.escrow.decode_function_input(deposit["data"])[1].values())
    args[3] = chain.stranger.address  # payee
    forged = platform.escrow.functions.deposit(*args)
    mint(platform, chain.client, 9_000_000_000)
    sign_and_send(platform, chain.client, [approve])
    before = balance(platform, platform.escrow.address)
    sign_and_send(
        platform,
        chain.client,
        [{"to": platform.escrow.address, "data": forged._encode_transaction_data(), "value": "0"}],
    )
    assert balance(platform, platform.escrow.address) == before + 3_000_000_000
    chain.rpc("evm_mine")
    await platform.follow()
    assert [m["status"] for m in milestone_rows(database_url, deal.project_id)] == [
        "draft",
        "draft",
    ]


async def test_escrow_routes_answer_503_when_no_chain_is_configured(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, ESCROW_RPC_URL=None)
    async with serving(create_app(settings)) as http:
        _account, headers = await client_account(http)
        project = await http.post("/api/v2/projects", json=project_body(), headers=headers)
        project_id = project.json()["id"]
        problem(
            await http.post(f"/api/v2/projects/{project_id}/escrow", headers=headers),
            503,
            "escrow-not-configured",
        )
        problem(
            await http.get(f"/api/v2/projects/{project_id}/escrow", headers=headers),
            503,
            "escrow-not-configured",
        )
